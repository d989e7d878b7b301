"""`orm-inspector run --record FILE -- python app.py`: instrumentation with no change to the program."""

from __future__ import annotations

import os
import shutil
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


def test_listen_streams_the_program_to_a_viewer(tmp_path):
    import re
    import time

    from orm_inspector.transports.client import LiveSource

    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import time
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session
        engine = create_engine("sqlite://")
        for _ in range(1000):
            with Session(engine) as s:
                s.execute(text("SELECT 'live'"))
            time.sleep(0.01)
    """))
    app = subprocess.Popen([sys.executable, "-m", "orm_inspector", "run", "--listen", "--", sys.executable, "app.py"],
                           cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    match = None
    try:
        line = app.stderr.readline()
        match = re.match(r"orm-inspector: listening on (\S+); token in (\S+)", line)
        assert match, line
        address, token_file = match.groups()
        assert os.stat(token_file).st_mode & 0o777 == 0o600
        deadline = time.monotonic() + 10
        while True:  # the program may not be listening yet
            try:
                source = LiveSource(address, open(token_file).read())
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with source:
            assert source.hello["pid"] == app.pid
            for event in source:
                if event["kind"] == "before_cursor_execute":
                    assert event["statement"] == "SELECT 'live'"
                    break
    finally:
        app.kill()
        app.wait()
        if match:  # killed: nothing removed its private directory
            shutil.rmtree(os.path.dirname(match[2]), ignore_errors=True)
