"""The capture layer never imports a UI toolkit: it runs inside other people's apps."""

import subprocess
import sys


def test_importing_orm_inspector_imports_no_ui():
    code = "import sys, orm_inspector; orm_inspector.install(); print(','.join(m for m in ('textual', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
