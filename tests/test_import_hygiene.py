"""The capture layer never imports a UI toolkit: it runs inside other people's apps."""

import subprocess
import sys


def test_importing_orm_inspector_imports_no_ui():
    code = "import sys, orm_inspector; orm_inspector.install(); print(','.join(m for m in ('textual', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_the_pure_logic_imports_no_ui():
    """What the screens render (the state, the view, the journal, the lessons' runner) is tested
    without a screen: none of it may need Textual."""
    code = ("import sys, orm_inspector.state.view, orm_inspector.learn.runner, orm_inspector.learn.explain, "
            "orm_inspector.transports.pump, orm_inspector.transports.sources; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
