"""`orm-inspector run --record FILE -- python app.py`: instrumentation with no change to the program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from orm_inspector.transports.trace import TraceReader

APP = textwrap.dedent("""
    import subprocess, sys
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session
    engine = create_engine(sys.argv[1])
    with Session(engine) as s:
        s.execute(text("SELECT 'parent'"))
        s.commit()
    child = "from sqlalchemy import create_engine, text\\n" \\
            "with create_engine('sqlite://').connect() as c: c.execute(text(\\"SELECT 'child'\\"))"
    subprocess.run([sys.executable, "-c", child], check=True)
    print("app done")
    sys.exit(3)
""")


def run(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "orm_inspector", "run", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)


def statements(path):
    return [e["statement"] for e in TraceReader(path) if e["kind"] == "before_cursor_execute"]


def test_records_the_program_and_its_subprocesses(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    trace = tmp_path / "trace.jsonl"
    r = run(tmp_path, "--record", str(trace), "--", sys.executable, "app.py", f"sqlite:///{tmp_path / 'db'}")
    assert r.returncode == 3, r.stderr  # the program's own exit status
    assert "app done" in r.stdout
    assert statements(trace) == ["SELECT 'parent'"]
    [child] = [p for p in tmp_path.glob("trace-*.jsonl")]
    assert statements(child) == ["SELECT 'child'"]
    assert [e["kind"] for e in TraceReader(child)][-1] == "trace_end"


def test_the_programs_own_sitecustomize_still_runs(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import pathlib\npathlib.Path('marker').write_text('ran')\n")
    (tmp_path / "app.py").write_text("from sqlalchemy import create_engine, text\n"
                                     "with create_engine('sqlite://').connect() as c: c.execute(text('SELECT 1'))\n")
    env = dict(os.environ, PYTHONPATH=str(own))
    trace = tmp_path / "t.jsonl"
    r = run(tmp_path, "--record", str(trace), "--", sys.executable, "app.py", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "marker").read_text() == "ran"
    assert statements(trace) == ["SELECT 1"]


def test_usage_errors_are_one_line(tmp_path):
    for args in (["--record", "t.jsonl"], ["--record", "t.jsonl", "--", "no-such-program-xyz"]):
        r = run(tmp_path, *args)
        assert r.returncode != 0
        assert r.stderr.startswith("orm-inspector:") and len(r.stderr.strip().splitlines()) == 1
