"""The live server: late viewers get the state then the stream; bad input drops only that viewer; a
stuck viewer never slows the app."""

from __future__ import annotations

import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.transports.client import LiveSource, SourceError
from orm_inspector.transports.server import AddressError, parse_address

from .models import Author, Base


@pytest.fixture
def engine(sqlite_url):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def server():
    srv = orm_inspector.serve()
    yield srv
    orm_inspector.uninstall()


class Reader(threading.Thread):
    def __init__(self, source):
        super().__init__(daemon=True)
        self.source, self.events = source, []

    def run(self):
        for e in self.source:
            self.events.append(e)

    def wait_for(self, kind, count=1, within=5.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and sum(e["kind"] == kind for e in self.events) < count:
            time.sleep(0.01)
        return [e for e in self.events if e["kind"] == kind]


def raw(srv, payload: bytes) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(3)
    sock.connect(srv.address[5:])
    if payload:
        sock.sendall(payload)
    try:
        return sock.recv(4096)
    except OSError:
        return b""
    finally:
        sock.close()


def test_a_late_viewer_gets_the_state_then_the_stream(server, engine):
    with Session(engine) as s:
        s.add(Author(name="before"))
        s.commit()
        held = s.scalars(select(Author)).one()
        time.sleep(0.15)
        with LiveSource(server.address, server.token) as source:
            [session] = [x for x in source.hello["state"]["sessions"] if x["id"] == f"s{s.hash_key}"]
            assert [(o["cls"], o["identity"]) for o in session["identity_map"]] == [("Author", [held.id])]
            reader = Reader(source)
            reader.start()
            s.add(Author(name="after"))
            s.commit()
            [p2p] = reader.wait_for("pending_to_persistent")
            assert p2p["obj"]["identity"] == [held.id + 1]
            first = reader.events[0]["seq"]
            assert first == source.hello["state"]["seq"] + 1  # no gap, no repeat
            assert [e["seq"] for e in reader.events] == list(range(first, first + len(reader.events)))


def test_a_server_started_mid_session_knows_that_session(engine):
    """serve() while a session is in use: a viewer gets its state as SQLAlchemy holds it."""
    with Session(engine) as s:
        s.add(Author(name="before"))
        s.commit()
        held = s.scalars(select(Author)).one()
        held.name = "edited"
        srv = orm_inspector.serve()
        try:
            time.sleep(0.1)
            with LiveSource(srv.address, srv.token) as source:
                [session] = [x for x in source.hello["state"]["sessions"] if x["id"] == f"s{s.hash_key}"]
                assert [(o["cls"], o["identity"], o["modified"]) for o in session["identity_map"]] == [
                    ("Author", [held.id], ["name"])]
                assert [o["identity"] for o in session["dirty"]] == [[held.id]]
                assert session["transaction"] is not None
        finally:
            srv.close()
            orm_inspector.uninstall()


def test_undecodable_text_reaches_a_viewer_escaped(engine, monkeypatch):
    """A lone surrogate (undecodable bytes, as Python decodes them) in argv and in a value: the hello
    and the batch still go out, the text escaped."""
    monkeypatch.setattr(sys, "argv", [*sys.argv, os.fsdecode(b"caf\xe9.csv")])
    srv = orm_inspector.serve()
    try:
        with LiveSource(srv.address, srv.token) as source:
            assert source.hello["argv"][-1] == "caf\\udce9.csv"
            reader = Reader(source)
            reader.start()
            with Session(engine) as s:
                s.add(Author(name="ann"))
                s.commit()
                ann = s.scalars(select(Author)).one()
                ann.name = os.fsdecode(b"caf\xe9")
                s.rollback()
            [edit] = reader.wait_for("set")
            assert edit["value"] == "caf\\udce9"
            assert reader.wait_for("after_rollback")  # the rest of the batch came too
    finally:
        srv.close()
        orm_inspector.uninstall()


@pytest.mark.parametrize("payload, reason", [
    (b'{"hello": "orm-inspector", "version": 1, "token": "nope"}\n', b"wrong token"),
    (b'{"hello": "orm-inspector", "version": 99, "token": "x"}\n', b"protocol version"),
    (b"GET / HTTP/1.0\r\n\r\n", b"not a hello"),
    (b"\xff\xfe\x00garbage\n", b"not a hello"),
    (b"x" * 10000, b"hello too long"),
])
def test_bad_input_drops_that_viewer_with_a_reason(server, engine, payload, reason):
    assert reason in raw(server, payload)
    with LiveSource(server.address, server.token) as source:  # and the server goes on
        reader = Reader(source)
        reader.start()
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert reader.wait_for("before_cursor_execute")


def test_fuzz_and_vanishing_clients_leave_the_server_serving(server, engine):
    rnd = random.Random(5)
    for _ in range(40):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(server.address[5:])
        sock.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))))
        sock.close()  # mid-message, gone
    with LiveSource(server.address, server.token) as source:
        reader = Reader(source)
        reader.start()
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 2")
        assert reader.wait_for("before_cursor_execute")


def test_a_stuck_viewer_loses_events_not_the_app(engine):
    from orm_inspector.transports.server import LiveServer

    srv = LiveServer(max_buffer=256 * 1024)
    orm_inspector.install()
    try:
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.connect(srv.address[5:])
        stuck.sendall(b'{"hello": "orm-inspector", "version": 1, "token": "%s"}\n' % srv.token.encode())
        with LiveSource(srv.address, srv.token) as good:
            reader = Reader(good)
            reader.start()
            with Session(engine) as s:  # megabytes of events: far more than the stuck one's buffer
                s.add_all([Author(name=f"a{i}") for i in range(3000)])
                s.commit()
            deadline = time.monotonic() + 20  # until the viewer has caught up with a last statement
            while not any(e.get("statement") == "SELECT 'end'" for e in reader.events):
                assert time.monotonic() < deadline
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 'end'")
                time.sleep(0.2)
            # A live viewer gets every event, or is told how many it lost: nothing goes missing silently.
            got = [e for e in reader.events if e["kind"] != "dropped"]
            lost = sum(e["count"] for e in reader.events if e["kind"] == "dropped")
            seqs = [e["seq"] for e in got]
            assert seqs == sorted(seqs) and len(seqs) + lost == seqs[-1] - seqs[0] + 1
        stuck.settimeout(5)
        data = b""
        while b'"kind":"dropped"' not in data:
            with Session(engine) as s:  # keep events coming so that a dropped notice follows
                s.add(Author(name="more"))
                s.commit()
            chunk = stuck.recv(1 << 20)
            assert chunk, "the server closed the stuck viewer"
            data += chunk
        stuck.close()
    finally:
        srv.close()
        orm_inspector.uninstall()


def test_addresses():
    family, path = parse_address(None)
    assert family == "unix" and stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    os.rmdir(os.path.dirname(path))
    assert parse_address("127.0.0.1:0") == ("tcp", ("127.0.0.1", 0))
    with pytest.raises(AddressError, match="loopback"):
        parse_address("8.8.8.8:9000")
    assert parse_address("8.8.8.8:9000", allow_remote=True)[0] == "tcp"
    with pytest.raises(AddressError):
        parse_address("nonsense")
    srv = orm_inspector.serve()
    try:
        assert stat.S_IMODE(os.stat(srv.address[5:]).st_mode) == 0o600
    finally:
        orm_inspector.uninstall()
    tcp = orm_inspector.serve("127.0.0.1:0")
    try:
        with LiveSource(tcp.address, tcp.token) as source:
            assert source.hello["pid"] == os.getpid()
        with pytest.raises(SourceError, match="wrong token"):
            LiveSource(tcp.address, "bad")
    finally:
        orm_inspector.uninstall()


APP = textwrap.dedent("""
    import sys, time, pathlib
    import orm_inspector
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session
    srv = orm_inspector.serve()
    pathlib.Path(sys.argv[1]).write_text(srv.address + "\\n" + srv.token)
    engine = create_engine("sqlite://")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not pathlib.Path(sys.argv[2]).exists():
        with Session(engine) as s:
            s.execute(text("SELECT 'from the app'"))
        time.sleep(0.01)
""")

VIEWER = textwrap.dedent("""
    import sys, pathlib
    from orm_inspector.transports.client import LiveSource
    address, token = pathlib.Path(sys.argv[1]).read_text().split("\\n")
    with LiveSource(address, token) as source:
        seen = 0
        for e in source:
            if e["kind"] == "before_cursor_execute":
                seen += 1
                if seen == 5:
                    print("viewer saw", e["statement"], "from pid", e["pid"])
                    break
    pathlib.Path(sys.argv[2]).write_text("stop")
""")


def test_end_to_end_app_and_viewer_processes(tmp_path):
    info, stop = tmp_path / "info", tmp_path / "stop"
    app = subprocess.Popen([sys.executable, "-c", APP, str(info), str(stop)])
    try:
        deadline = time.monotonic() + 10
        while not info.exists() or "\n" not in info.read_text():
            assert time.monotonic() < deadline and app.poll() is None
            time.sleep(0.05)
        viewer = subprocess.run([sys.executable, "-c", VIEWER, str(info), str(stop)], capture_output=True,
                                text=True, timeout=30)
        assert viewer.returncode == 0, viewer.stderr
        assert f"viewer saw SELECT 'from the app' from pid {app.pid}" in viewer.stdout
        assert app.wait(timeout=20) == 0
    finally:
        if app.poll() is None:
            app.kill()


FORK_APP = textwrap.dedent("""
    import os, sys, time, pathlib
    import orm_inspector
    from sqlalchemy import create_engine, text
    srv = orm_inspector.serve()
    pathlib.Path(sys.argv[1]).write_text(srv.address + "\\n" + srv.token)
    while not pathlib.Path(sys.argv[2]).exists():
        time.sleep(0.02)
    pid = os.fork()
    if pid == 0:  # a worker: its own work, a normal exit (atexit runs)
        with create_engine("sqlite://").connect() as c:
            c.execute(text("SELECT 'child'"))
        sys.exit(0)
    os.waitpid(pid, 0)
    print("socket still there:", os.path.exists(srv.address[5:]), flush=True)
    with create_engine("sqlite://").connect() as c:
        c.execute(text("SELECT 'parent after fork'"))
    time.sleep(1)
""")


def test_a_forked_child_leaves_the_parents_server_alone(tmp_path):
    info, go = tmp_path / "info", tmp_path / "go"
    app = subprocess.Popen([sys.executable, "-c", FORK_APP, str(info), str(go)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not info.exists() or "\n" not in info.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        address, token = info.read_text().split("\n")
        with LiveSource(address, token) as source:
            go.write_text("go")
            statements = []
            for event in source:
                if event["kind"] == "before_cursor_execute":
                    statements.append((event["statement"], event["pid"]))
                    if "parent after fork" in event["statement"]:
                        break
        assert statements == [("SELECT 'parent after fork'", app.pid)]
        assert "socket still there: True" in app.stdout.readline()
    finally:
        app.kill()
        app.wait()
        if info.exists():  # killed: nothing removed its private directory
            shutil.rmtree(os.path.dirname(info.read_text().split("\n")[0][5:]), ignore_errors=True)
