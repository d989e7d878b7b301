"""One viewer follows every process of a program: `orm-inspector run --listen` makes its forked workers
and subprocesses serve too, each a source of its own named by pid; ``ProcessGroupSource`` finds them,
merges their events, and says when each one joins and ends."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import orm_inspector
from orm_inspector.transports import server as server_module
from orm_inspector.transports.client import LiveSource, SourceError
from orm_inspector.transports.server import parse_address
from orm_inspector.transports.sources import ProcessGroupSource

# Every process waits for the test to say "go-<pid>" (written once the viewer follows it), so that its
# statement arrives as an event and not only folded into the state of its hello. The forked worker
# exits hard (os._exit, as multiprocessing's workers do: no atexit, its socket file stays behind).
APP = textwrap.dedent("""
    import os, pathlib, subprocess, sys, time
    from sqlalchemy import create_engine, text
    here = pathlib.Path(sys.argv[1])

    def wait_for(name):
        deadline = time.monotonic() + 20
        while not (here / name).exists():
            if time.monotonic() > deadline:
                sys.exit(f"{os.getpid()}: no {name}")
            time.sleep(0.01)

    def work(label):
        wait_for(f"go-{os.getpid()}")
        with create_engine("sqlite://").connect() as c:
            c.execute(text(f"SELECT '{label}'"))

    work("root")
    pid = os.fork()
    if pid == 0:
        work("forked")
        wait_for(f"seen-{os.getpid()}")
        os._exit(0)
    sub = subprocess.Popen([sys.executable, str(here / "sub.py"), str(here)])
    os.waitpid(pid, 0)
    sub.wait()
    wait_for("stop")
""")
SUB = textwrap.dedent("""
    import os, pathlib, sys, time
    from sqlalchemy import create_engine, text
    here = pathlib.Path(sys.argv[1])
    deadline = time.monotonic() + 20
    while not (here / f"go-{os.getpid()}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with create_engine("sqlite://").connect() as c:
        c.execute(text("SELECT 'sub'"))
""")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def close_after(source, seconds):
    """A deadline for a test that iterates a source: closing it ends the iteration."""
    timer = threading.Timer(seconds, source.close)
    timer.daemon = True
    timer.start()
    return timer


@pytest.mark.parametrize("listen", ["auto", "ipv6"])
def test_a_viewer_follows_the_program_its_forked_worker_and_its_subprocess(tmp_path, listen):
    if listen == "ipv6":
        if not ipv6_loopback():
            pytest.skip("no IPv6 loopback here")
        listen = f"[::1]:{free_ipv6_port()}"
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "sub.py").write_text(SUB)
    args = ["--listen"] if listen == "auto" else ["--listen", listen]
    app = subprocess.Popen([sys.executable, "-m", "orm_inspector", "run", *args, "--", sys.executable, "app.py",
                            str(tmp_path)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        match = re.match(r"orm-inspector: listening on (\S+); token in (\S+)", app.stderr.readline())
        assert match
        address, token_file = match.groups()
        group = os.path.dirname(token_file)
        token = Path(token_file).read_text()
        deadline = time.monotonic() + 15
        while True:  # the program may not be listening yet
            try:
                source = ProcessGroupSource(address, token)
                break
            except SourceError:
                assert time.monotonic() < deadline and app.poll() is None
                time.sleep(0.02)
        source.POLL = 0.1
        timer = close_after(source, 30)
        items = []
        with source:
            assert source.hello["pid"] == app.pid and source.group == group
            for item in source:
                items.append(item)
                pid = item["pid"]
                if item["kind"] == "source_hello":
                    (tmp_path / f"go-{pid}").write_text("")
                elif item["kind"] == "before_cursor_execute" and item["statement"] == "SELECT 'forked'":
                    (tmp_path / f"seen-{pid}").write_text("")
                elif item["kind"] == "source_end" and pid != app.pid and \
                        sum(i["kind"] == "source_end" for i in items) == 2:
                    (tmp_path / "stop").write_text("")  # both workers are done: the program may end
        assert timer.is_alive(), "the deadline closed the source: the iteration did not end on its own"
        timer.cancel()
        hellos = {i["pid"]: i for i in items if i["kind"] == "source_hello"}
        assert len(hellos) == 3 and items[0] == hellos[app.pid] and hellos[app.pid]["root"]
        assert all(h["ppid"] == app.pid for pid, h in hellos.items() if pid != app.pid)
        statements = {pid: [i["statement"] for i in items if i["pid"] == pid and i["kind"] == "before_cursor_execute"]
                      for pid in hellos}
        assert sorted(statements.values()) == [["SELECT 'forked'"], ["SELECT 'root'"], ["SELECT 'sub'"]]
        assert statements[app.pid] == ["SELECT 'root'"]
        for pid in hellos:  # each process: its hello first, its end last
            mine = [i for i in items if i["pid"] == pid]
            assert mine[0]["kind"] == "source_hello" and mine[-1] == {**mine[-1], "kind": "source_end",
                                                                     "reason": "ended"}
            seqs = [i["seq"] for i in mine[1:-1]]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert items[-1]["kind"] == "source_end" and items[-1]["pid"] == app.pid
        assert source.hellos.keys() == hellos.keys()
        assert app.wait(timeout=15) == 0, app.stderr.read()
        assert not os.path.exists(group), os.listdir(group)  # token, sockets and the directory: gone
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def test_a_server_of_no_group_is_followed_alone_and_close_ends_the_iteration():
    srv = orm_inspector.serve()
    folder = os.path.dirname(srv.address[5:])
    with pytest.raises(SourceError, match="wrong token"):
        ProcessGroupSource(srv.address, "bad")
    source = ProcessGroupSource(srv.address, srv.token)
    assert source.group is None
    with create_engine("sqlite://").connect() as c:
        c.execute(text("SELECT 'alone'"))
    items = []
    for item in source:
        items.append(item)
        if item.get("statement") == "SELECT 'alone'":
            threading.Thread(target=source.close).start()
    assert items[0]["kind"] == "source_hello" and items[0]["pid"] == os.getpid()
    orm_inspector.uninstall()
    assert not os.path.exists(folder)  # serve() made it: close() removes it


def test_stale_sockets_in_the_group_directory_are_let_go(tmp_path, monkeypatch):
    """A process killed at once leaves its socket file: a few tries, then the viewer leaves it alone,
    and the iteration ends with the root."""
    monkeypatch.setattr(server_module, "group_dir", str(tmp_path))
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "live-999999.sock"))
    stale.close()  # the file stays, nobody listens
    srv = orm_inspector.serve(f"unix:{tmp_path / 'live.sock'}")
    source = ProcessGroupSource(srv.address, srv.token)
    source.POLL = 0.01
    timer = close_after(source, 10)
    stale_key = (999999, os.stat(tmp_path / "live-999999.sock").st_ino)

    def close_the_root_once_given_up():
        while source._attempts.get(stale_key) != source.ATTEMPTS and timer.is_alive():
            time.sleep(0.01)
        srv.close()

    threading.Thread(target=close_the_root_once_given_up, daemon=True).start()
    kinds = [item["kind"] for item in source]
    assert timer.is_alive(), "the iteration did not end with the root"
    timer.cancel()
    assert kinds[0] == "source_hello" and kinds[-1] == "source_end" and kinds.count("source_hello") == 1


def test_ipv6_loopback():
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    assert parse_address("[::1]:8000") == ("tcp", ("::1", 8000))
    srv = orm_inspector.serve("[::1]:0")
    assert srv.address.startswith("[::1]:")
    with LiveSource(srv.address, srv.token) as source:
        assert source.hello["pid"] == os.getpid()


def test_a_program_that_execs_itself_serves_again_and_cleans_up(tmp_path):
    """exec() keeps the pid and skips atexit: the new image finds its own socket file still there."""
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import os, sys
        import orm_inspector
        print(len(orm_inspector._servers), flush=True)
        if len(sys.argv) == 1:
            os.execv(sys.executable, [sys.executable, "app.py", "again"])
    """))
    r = subprocess.run([sys.executable, "-m", "orm_inspector", "run", "--listen", "--", sys.executable, "app.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["1", "1"], r.stderr
    group = os.path.dirname(re.search(r"token in (\S+)", r.stderr)[1])
    assert "not listening" not in r.stderr and not os.path.exists(group)


def test_sockets_of_workers_gone_without_closing_are_removed_when_the_next_one_comes(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import os
        group = os.environ["ORM_INSPECTOR_GROUP"]
        first = os.fork()
        if first == 0:
            os._exit(0)  # as multiprocessing's workers end: no atexit, the socket file stays
        os.waitpid(first, 0)
        print(f"live-{first}.sock" in os.listdir(group), flush=True)
        second = os.fork()
        if second == 0:
            print(sorted(os.listdir(group)) == ["live-%d.sock" % os.getpid(), "live.sock", "token"], flush=True)
            os._exit(0)
        os.waitpid(second, 0)
    """))
    r = subprocess.run([sys.executable, "-m", "orm_inspector", "run", "--listen", "--", sys.executable, "app.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["True", "True"], (r.stdout, r.stderr)
