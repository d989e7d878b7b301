"""Trace files: what record() writes (header, events, trace_end; plain and gzip), how it survives
exceptions, crashes, interpreter exit and fork, how TraceReader reads (and rejects) files, and the
``orm-inspector summary`` command on good and bad files."""

from __future__ import annotations

import gzip
import inspect
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.transports.trace import TraceError, TraceReader

from .models import Author, Base, Book
from .scenarios import trap_scenario

REPO = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 9

# ---- helpers --------------------------------------------------------------------------------------


def raw_lines(path: Path) -> list[bytes]:
    """The file's lines, read without orm_inspector (gzip module for .gz)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def parse_all(path: Path) -> list[dict]:
    """Every line parsed with the json module; each must be a complete JSON object."""
    lines = raw_lines(path)
    out = []
    for n, line in enumerate(lines, 1):
        assert line.endswith(b"\n"), f"{path}: line {n} has no newline"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"{path}: line {n} is not an object"
        out.append(obj)
    return out


def check_header(header: dict, pid: int | None = None) -> None:
    assert header["kind"] == "trace_header"
    assert header["format"] == "orm-inspector-trace"
    assert header["version"] == 1 and type(header["version"]) is int
    assert isinstance(header["pid"], int)
    if pid is not None:
        assert header["pid"] == pid
    assert header["python"] == platform.python_version()
    assert header["sqlalchemy"] == sqlalchemy.__version__
    assert isinstance(header["started"], (int, float))
    assert abs(header["started"] - time.time()) < 3600


def check_events(events: list[dict], ended: bool = True) -> None:
    """seq strictly increasing from 1, the common fields on each; trace_end last (if ended) with the count."""
    assert events, "no events at all"
    last = 0
    for i, e in enumerate(events):
        for name in ("seq", "ts", "kind", "pid", "thread"):
            assert name in e, f"event {i} has no {name!r}: {e}"
        assert type(e["seq"]) is int
        assert e["seq"] > last, f"seq not strictly increasing at event {i}: {last} then {e['seq']}"
        if i == 0:
            assert e["seq"] == 1, f"first seq is {e['seq']}, not 1"
        last = e["seq"]
        assert isinstance(e["ts"], float)
        assert isinstance(e["kind"], str) and e["kind"]
        assert isinstance(e["pid"], int)
        assert isinstance(e["thread"], str)
        assert e["kind"] != "trace_header"
    kinds = [e["kind"] for e in events]
    if ended:
        assert kinds[-1] == "trace_end"
        assert kinds.count("trace_end") == 1
        assert events[-1]["events"] == len(events) - 1
    else:
        assert "trace_end" not in kinds


def check_file(path: Path, pid: int | None = None, ended: bool = True) -> tuple[dict, list[dict]]:
    lines = parse_all(path)
    assert len(lines) >= 2
    check_header(lines[0], pid)
    check_events(lines[1:], ended)
    return lines[0], lines[1:]


def make_engine(url: str):
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    return engine


def small_work(engine, n: int = 3) -> None:
    with Session(engine) as s:
        for i in range(n):
            s.add(Author(name=f"a{i}", books=[Book(title=f"b{i}")]))
        s.commit()
        for a in s.scalars(select(Author)):
            _ = a.books
        s.commit()


def run_script(script: str, *args: str, timeout: float = SUBPROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orm_inspector", *args], cwd=str(REPO),
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def write_trace(path: Path, events: list[dict | str | bytes], header: dict | None = None,
                final_newline: bool = True) -> None:
    """A hand-made trace: a header, then events (dicts are JSON-encoded, str/bytes written as is)."""
    if header is None:
        header = {"kind": "trace_header", "format": "orm-inspector-trace", "version": 1, "pid": 1,
                  "python": "3", "sqlalchemy": "2", "started": 1.0}
    chunks = [json.dumps(header).encode()]
    for e in events:
        if isinstance(e, dict):
            chunks.append(json.dumps(e).encode())
        elif isinstance(e, str):
            chunks.append(e.encode())
        else:
            chunks.append(e)
    data = b"\n".join(chunks) + (b"\n" if final_newline else b"")
    path.write_bytes(data)


def ev(seq: int, kind: str = "checkin", **extra) -> dict:
    return {"seq": seq, "ts": 1.0 + seq, "kind": kind, "pid": 1, "thread": "MainThread", **extra}


# ---- 1, 2: what record() writes ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_record_writes_header_events_and_trace_end(tmp_path, sqlite_url, name):
    path = tmp_path / name
    engine = make_engine(sqlite_url)
    try:
        with orm_inspector.record(path) as rec:
            trap_scenario(engine)
    finally:
        engine.dispose()

    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b", "a .gz trace must be gzip-compressed"
    else:
        assert path.read_bytes()[:1] == b"{", "a .jsonl trace must be plain text"

    header, events = check_file(path, pid=os.getpid())
    assert all(e["pid"] == os.getpid() for e in events)
    kinds = {e["kind"] for e in events}
    for kind in ("before_flush", "after_commit", "pending_to_persistent", "checkout", "checkin",
                 "before_cursor_execute"):
        assert kind in kinds, kind
    assert rec.events == len(events) - 1

    # TraceReader gives exactly the same events, with the header aside
    reader = TraceReader(path)
    read = list(reader)
    assert reader.header == header
    assert read == events
    assert reader.warnings == []


def test_gzip_trace_is_one_valid_gzip_stream(tmp_path, sqlite_url):
    path = tmp_path / "trace.jsonl.gz"
    engine = make_engine(sqlite_url)
    try:
        with orm_inspector.record(path):
            small_work(engine)
    finally:
        engine.dispose()
    # gzip.decompress insists on a complete stream (with its trailer)
    data = gzip.decompress(path.read_bytes())
    lines = data.splitlines()
    assert json.loads(lines[0])["kind"] == "trace_header"
    assert json.loads(lines[-1])["kind"] == "trace_end"
    assert data.endswith(b"\n")


def test_record_with_no_orm_work_is_still_a_valid_file(tmp_path):
    path = tmp_path / "trace.jsonl"
    with orm_inspector.record(path):
        pass
    lines = parse_all(path)
    check_header(lines[0], os.getpid())
    assert lines[-1]["kind"] == "trace_end"
    assert lines[-1]["events"] == len(lines) - 2
    assert list(TraceReader(path))[-1]["kind"] == "trace_end"


# ---- 3: exceptions ------------------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_record_closes_the_file_on_exception(tmp_path, sqlite_url, name):
    path = tmp_path / name
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(Boom):
            with orm_inspector.record(path) as rec:
                small_work(engine)
                raise Boom("in the block")
    finally:
        engine.dispose()
    assert rec._file is None, "the recorder's file is still open after the block"
    header, events = check_file(path, pid=os.getpid())
    assert "before_flush" in {e["kind"] for e in events}
    # recording really stopped: later work goes nowhere
    size = path.stat().st_size
    engine = make_engine(sqlite_url)
    try:
        small_work(engine)
    finally:
        engine.dispose()
    orm_inspector.uninstall()
    assert path.stat().st_size == size


# ---- 4: TraceReader ------------------------------------------------------------------------------


def test_an_undecodable_value_costs_no_event(tmp_path, sqlite_url, monkeypatch):
    """Python decodes undecodable bytes (a file name, an argument) to lone surrogates, which JSON
    cannot carry: the value is written escaped, and the other events of its batch are all there."""
    monkeypatch.setattr(sys, "argv", [*sys.argv, os.fsdecode(b"caf\xe9.csv")])
    engine = make_engine(sqlite_url)
    path = tmp_path / "trace.jsonl"
    try:
        with orm_inspector.record(path), Session(engine) as s:
            s.add(Author(name="ann"))
            s.commit()
            ann = s.scalars(select(Author)).one()
            ann.name = os.fsdecode(b"caf\xe9")
            s.rollback()
    finally:
        engine.dispose()
    header, events = check_file(path, pid=os.getpid())
    assert header["argv"][-1] == "caf\\udce9.csv"
    [edit] = [e for e in events if e["kind"] == "set" and e["attr"] == "name"]
    assert edit["value"] == "caf\\udce9" and edit["old"] == "ann"
    kinds = [e["kind"] for e in events]
    assert {"pending_to_persistent", "after_commit", "loaded_as_persistent", "after_rollback"} <= set(kinds)
    assert "inspector_error" not in kinds


def test_reader_malformed_line_in_the_middle_names_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_trace(path, [ev(1), ev(2), ev(3), '{"seq": 4, "kind": "checkin", oops', ev(5), ev(6)])
    reader = TraceReader(path)
    it = iter(reader)
    got = []
    with pytest.raises(TraceError) as info:
        for e in it:
            got.append(e)
    assert "line 5" in str(info.value)  # header is line 1, the bad event line 5
    assert [e["seq"] for e in got] == [1, 2, 3]
    assert "\n" not in str(info.value)


def test_reader_malformed_last_line_with_newline_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_trace(path, [ev(1), ev(2), "not json at all"])  # complete line: not a crash, a bad file
    with pytest.raises(TraceError, match="line 4"):
        list(TraceReader(path))


def test_reader_event_without_seq_or_kind_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_trace(path, [ev(1), {"ts": 2.0, "kind": "checkin"}, ev(3)])
    with pytest.raises(TraceError, match="line 3"):
        list(TraceReader(path))


def test_reader_skips_truncated_last_line_with_a_warning(tmp_path):
    path = tmp_path / "cut.jsonl"
    write_trace(path, [ev(1), ev(2), ev(3), '{"seq": 4, "ts": 5.0, "kind": "chec'], final_newline=False)
    reader = TraceReader(path)
    events = list(reader)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert len(reader.warnings) == 1
    assert "line 5" in reader.warnings[0]


def test_reader_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "nonl.jsonl"
    write_trace(path, [ev(1), ev(2)], final_newline=False)
    reader = TraceReader(path)
    assert [e["seq"] for e in reader] == [1, 2]
    assert reader.warnings == []


def test_reader_rejects_a_newer_version(tmp_path):
    path = tmp_path / "v2.jsonl"
    write_trace(path, [ev(1)], header={"kind": "trace_header", "format": "orm-inspector-trace", "version": 2,
                                       "pid": 1, "python": "3", "sqlalchemy": "2", "started": 1.0})
    with pytest.raises(TraceError, match="version") as info:
        list(TraceReader(path))
    assert "2" in str(info.value)


def test_reader_rejects_another_format(tmp_path):
    path = tmp_path / "other.jsonl"
    write_trace(path, [ev(1)], header={"kind": "trace_header", "format": "something-else", "version": 1})
    with pytest.raises(TraceError):
        list(TraceReader(path))


@pytest.mark.parametrize("first_line", ['{"hello": "world"}', '{"kind": "checkin", "seq": 1}', '[1, 2, 3]',
                                        '"a string"', 'plain text, not json'])
def test_reader_rejects_a_file_that_is_not_a_trace(tmp_path, first_line):
    path = tmp_path / "notatrace.jsonl"
    path.write_text(first_line + "\n" + json.dumps(ev(1)) + "\n")
    with pytest.raises(TraceError):
        list(TraceReader(path))


def test_reader_rejects_an_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(TraceError):
        list(TraceReader(path))


def test_reader_rejects_a_missing_file(tmp_path):
    with pytest.raises(TraceError):
        list(TraceReader(tmp_path / "nope.jsonl"))


def test_reader_rejects_a_directory(tmp_path):
    with pytest.raises(TraceError):
        list(TraceReader(tmp_path))


def test_reader_rejects_a_gz_name_that_is_not_gzip(tmp_path):
    path = tmp_path / "fake.jsonl.gz"
    write_trace(path, [ev(1)])
    with pytest.raises(TraceError):
        list(TraceReader(path))


def test_reader_reads_gzip_traces(tmp_path):
    plain = tmp_path / "t.jsonl"
    write_trace(plain, [ev(i) for i in range(1, 51)])
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(TraceReader(gz)) == list(TraceReader(plain))


def test_reader_streams_lazily(tmp_path):
    path = tmp_path / "big.jsonl"
    n = 200_000
    line = json.dumps(ev(1)).encode()
    with open(path, "wb") as f:
        f.write(json.dumps({"kind": "trace_header", "format": "orm-inspector-trace", "version": 1, "pid": 1,
                            "python": "3", "sqlalchemy": "2", "started": 1.0}).encode() + b"\n")
        for i in range(1, n + 1):
            if i == n - 10:  # a bad line far away: a reader that parses ahead would hit it
                f.write(b"this line is broken\n")
            else:
                f.write(line.replace(b'"seq": 1,', f'"seq": {i},'.encode()) + b"\n")
    assert path.stat().st_size > 10_000_000
    reader = TraceReader(path)
    it = iter(reader)
    assert isinstance(it, Iterator)
    assert inspect.isgenerator(it)
    tracemalloc.start()
    try:
        first = list(itertools.islice(it, 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"reading 10 events of a {path.stat().st_size} byte file took {peak} bytes"
    assert len(first) == 10
    assert [e["seq"] for e in first] == list(range(1, 11))
    assert all(isinstance(e, dict) for e in first)
    # going on to the end does reach the broken line, with its number
    with pytest.raises(TraceError, match=f"line {n - 10 + 1}"):
        for _ in it:
            pass


def test_reader_gzip_cut_off_keeps_what_was_written(tmp_path):
    """A .gz trace whose writer died: the sync-flushed part reads, the abrupt end is a warning."""
    path = tmp_path / "cut.jsonl.gz"
    import zlib

    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    header = {"kind": "trace_header", "format": "orm-inspector-trace", "version": 1, "pid": 1,
              "python": "3", "sqlalchemy": "2", "started": 1.0}
    data = comp.compress(json.dumps(header).encode() + b"\n") + comp.flush(zlib.Z_SYNC_FLUSH)
    for i in range(1, 6):
        data += comp.compress(json.dumps(ev(i)).encode() + b"\n") + comp.flush(zlib.Z_SYNC_FLUSH)
    path.write_bytes(data)  # no Z_FINISH: no trailer
    reader = TraceReader(path)
    assert [e["seq"] for e in reader] == [1, 2, 3, 4, 5]
    assert reader.warnings


# ---- 5: crash (SIGKILL) --------------------------------------------------------------------------

CRASH_SCRIPT = """
import sys, time
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
import orm_inspector
from tests.models import Base, Author, Book

path, db = sys.argv[1], sys.argv[2]
engine = create_engine("sqlite:///" + db)
Base.metadata.create_all(engine)
with orm_inspector.record(path) as rec:
    announced = False
    i = 0
    while True:
        i += 1
        with Session(engine) as s:
            s.add(Author(name="a%d" % i, books=[Book(title="b%d" % i)]))
            s.commit()
            s.scalars(select(Author).where(Author.id == i)).all()
        if not announced and rec.events >= 400:
            time.sleep(0.3)
            print("ready", rec.events, flush=True)
            announced = True
"""


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_sigkill_leaves_a_readable_trace(tmp_path, name):
    path = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(path), str(tmp_path / "crash.db")],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
        written = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    reader = TraceReader(path)
    events = list(reader)
    assert len(reader.warnings) <= 1
    check_header(reader.header, pid=proc.pid)
    check_events(events, ended=False)
    assert len(events) >= written  # what the recorder had written before "ready" is all there
    assert all(e["pid"] == proc.pid for e in events)
    assert "before_flush" in {e["kind"] for e in events}


# ---- 6: atexit -----------------------------------------------------------------------------------

ATEXIT_SCRIPT = """
import sys
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
import orm_inspector
from tests.models import Base, Author, Book

path, db = sys.argv[1], sys.argv[2]
engine = create_engine("sqlite:///" + db)
Base.metadata.create_all(engine)
cm = orm_inspector.record(path)
cm.__enter__()
for i in range(20):
    with Session(engine) as s:
        s.add(Author(name="a%d" % i, books=[Book(title="b%d" % i)]))
        s.commit()
        s.scalars(select(Author)).all()
print("done", flush=True)
{exit}
"""


@pytest.mark.parametrize("exit_how", ["", "sys.exit(0)", "raise SystemExit(3)"])
@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_exit_without_closing_the_recording_still_ends_the_trace(tmp_path, name, exit_how):
    path = tmp_path / name
    try:
        r = run_script(ATEXIT_SCRIPT.replace("{exit}", exit_how), str(path), str(tmp_path / "x.db"))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the process hung at exit (killed after {SUBPROCESS_TIMEOUT} s; it needs well under 2 s)")
    assert "done" in r.stdout, r.stderr
    assert r.returncode == (3 if "3" in exit_how else 0), r.stderr
    assert "Traceback" not in r.stderr
    header, events = check_file(path)
    assert all(e["pid"] == header["pid"] for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds.count("after_commit") >= 20
    # the last iteration's work is in: its author became persistent, its session was closed
    assert any(e["kind"] == "pending_to_persistent" and e["obj"]["cls"] == "Author" and e["obj"]["identity"] == [20]
               for e in events)
    assert kinds.count("session_close") >= 20


LATE_EXIT_SCRIPT = """
import atexit, sys, time
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from tests.models import Base, Author, Book

path, db = sys.argv[1], sys.argv[2]
engine = create_engine("sqlite:///" + db)
Base.metadata.create_all(engine)

def cleanup():  # the app's own exit work; registered before orm_inspector's handler, so runs after it
    end = time.time() + 0.2
    while time.time() < end:
        with Session(engine) as s:
            s.add(Author(name="late"))
            s.commit()
atexit.register(cleanup)

import orm_inspector

ns = {"time": time}  # a signals subscriber (defined outside __main__'s globals) that takes its time
exec("def subscriber(sender, events):\\n    time.sleep(0.6)\\n", ns)
orm_inspector.signals.events.connect(ns["subscriber"], weak=False)

cm = orm_inspector.record(path)
cm.__enter__()
for i in range(5):
    with Session(engine) as s:
        s.add(Author(name="a%d" % i, books=[Book(title="b%d" % i)]))
        s.commit()
print("done", flush=True)
"""


def test_exit_without_closing_the_recording_does_not_hang(tmp_path):
    """A recording left open at exit, a signals subscriber, and ORM work in a later atexit handler:
    the process must still exit (and the trace end with trace_end)."""
    path = tmp_path / "trace.jsonl"
    try:
        r = run_script(LATE_EXIT_SCRIPT, str(path), str(tmp_path / "x.db"), timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung at exit (killed after 8 s; it needs about 3 s)")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    header, events = check_file(path)
    assert [e["kind"] for e in events].count("after_commit") >= 5


# ---- 7: fork -------------------------------------------------------------------------------------

FORK_SCRIPT = """
import os, sys
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
import orm_inspector
from tests.models import Base, Author, Book

path, db, mode = sys.argv[1], sys.argv[2], sys.argv[3]
url = "sqlite:///" + db

def work(engine, tag, n=5):
    with Session(engine) as s:
        for i in range(n):
            s.add(Author(name="%s%d" % (tag, i), books=[Book(title="%s-b%d" % (tag, i))]))
        s.commit()
        for a in s.scalars(select(Author).where(Author.name.like(tag + "%"))):
            _ = a.books
        s.commit()

engine = create_engine(url)
Base.metadata.create_all(engine)
cm = orm_inspector.record(path)
cm.__enter__()
work(engine, "parent-before")
pid = os.fork()
if pid == 0:
    engine.dispose(close=False)
    child_engine = create_engine(url)
    work(child_engine, "child")
    child_engine.dispose()
    if mode == "uninstall":
        orm_inspector.uninstall()
        os._exit(0)
    sys.exit(0)  # through atexit
_, status = os.waitpid(pid, 0)
work(engine, "parent-after")
cm.__exit__(None, None, None)
print("child", pid, "status", status, flush=True)
"""


@pytest.mark.parametrize("mode", ["uninstall", "atexit"])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_fork_child_records_to_its_own_file(tmp_path, mode, suffix):
    path = tmp_path / f"trace{suffix}"
    r = run_script(FORK_SCRIPT, str(path), str(tmp_path / "fork.db"), mode)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[0] == "child" and out[2] == "status", r.stdout
    child_pid, status = int(out[1]), int(out[3])
    assert status == 0, r.stderr

    # the parent's file: whole, the parent's only
    p_header, p_events = check_file(path)
    parent_pid = p_header["pid"]
    assert parent_pid != child_pid
    assert all(e["pid"] == parent_pid for e in p_events)
    assert not any(e["pid"] == child_pid for e in p_events)
    p_kinds = [e["kind"] for e in p_events]
    assert p_kinds.count("after_commit") >= 4  # before and after the fork
    p_reader = TraceReader(path)
    assert len(list(p_reader)) == len(p_events) and p_reader.warnings == []

    # the child's file, next to it
    child_file = tmp_path / f"trace-{child_pid}{suffix}"
    assert child_file.exists(), sorted(p.name for p in tmp_path.iterdir())
    c_header, c_events = check_file(child_file, pid=child_pid)
    assert c_header["parent_pid"] == parent_pid
    assert all(e["pid"] == child_pid for e in c_events)
    c_kinds = [e["kind"] for e in c_events]
    assert "before_flush" in c_kinds and "after_commit" in c_kinds
    c_reader = TraceReader(child_file)
    assert len(list(c_reader)) == len(c_events) and c_reader.warnings == []

    # no other files were made
    names = {p.name for p in tmp_path.iterdir()} - {"fork.db"}
    assert names == {path.name, child_file.name}


MULTIPROCESSING_SCRIPT = """
import multiprocessing, sys
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
import orm_inspector
from tests.models import Base, Author

path, db = sys.argv[1], sys.argv[2]

def work(name):
    engine = create_engine("sqlite:///" + db)
    with Session(engine) as s:
        s.add(Author(name=name))
        s.commit()
    engine.dispose()

engine = create_engine("sqlite:///" + db)
Base.metadata.create_all(engine)
fork = multiprocessing.get_context("fork")
with orm_inspector.record(path):
    child = fork.Process(target=work, args=("process",))
    child.start()
    child.join()
    pool = fork.Pool(2)
    pool.map(work, ["pool-1", "pool-2", "pool-3"])
    pool.close()
    pool.join()
"""


def test_multiprocessing_children_finish_their_files(tmp_path):
    """A multiprocessing child ends with os._exit(), past atexit, often within a pump interval of its
    last commit: its file must still hold everything it did, and end with trace_end."""
    path = tmp_path / "trace.jsonl"
    r = run_script(MULTIPROCESSING_SCRIPT, str(path), str(tmp_path / "mp.db"))
    assert r.returncode == 0, r.stderr
    children = sorted(tmp_path.glob("trace-*.jsonl"))
    assert len(children) == 3, children  # the Process and the pool's two workers
    names = []
    for child in children:
        _, events = check_file(child, pid=int(child.name[len("trace-"):-len(".jsonl")]))
        assert events[-1]["kind"] == "trace_end"
        names += [e["parameters"]["name"] for e in events
                  if e["kind"] == "before_cursor_execute" and e["statement"].startswith("INSERT INTO author ")]
        kinds = [e["kind"] for e in events]
        assert kinds.count("after_commit") == kinds.count("before_commit")  # no commit cut off
    assert sorted(names) == ["pool-1", "pool-2", "pool-3", "process"]


# ---- 8: the summary command -----------------------------------------------------------------------


def recorded_trace(tmp_path, sqlite_url, name="trace.jsonl") -> Path:
    path = tmp_path / name
    engine = make_engine(sqlite_url)
    try:
        with orm_inspector.record(path):
            trap_scenario(engine)
    finally:
        engine.dispose()
    return path


@pytest.mark.parametrize("name", ["trace.jsonl", "trace.jsonl.gz"])
def test_summary_of_a_real_trace(tmp_path, sqlite_url, name):
    path = recorded_trace(tmp_path, sqlite_url, name)
    r = cli("summary", str(path))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    for section in ("Events by kind", "Sessions", "SQL", "Connections", "Warnings"):
        assert section in r.stdout, section
    assert "before_flush" in r.stdout
    assert "no trace_end" not in r.stdout


def test_summary_of_a_crashed_trace_warns(tmp_path, sqlite_url):
    path = recorded_trace(tmp_path, sqlite_url)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])  # cut in the middle of a line
    r = cli("summary", str(path))
    assert r.returncode == 0, r.stderr
    assert "truncated" in r.stdout
    assert "no trace_end" in r.stdout


def test_summary_warns_of_inspector_errors_counted_only_at_the_end(tmp_path):
    """A failure in the last moments is counted in trace_end but has no inspector_error line."""
    path = tmp_path / "t.jsonl"
    write_trace(path, [{"seq": 1, "ts": 1.0, "kind": "trace_end", "pid": 1, "thread": "orm-inspector",
                        "events": 0, "dropped": 0, "errors": 2}])
    r = cli("summary", str(path))
    assert r.returncode == 0, r.stderr
    assert "2 inspector error(s) happened" in r.stdout and "0 of them reported" in r.stdout
    write_trace(path, [{"seq": 1, "ts": 1.0, "kind": "trace_end", "pid": 1, "thread": "orm-inspector",
                        "events": 0, "dropped": 0, "errors": 2}], header={
        "kind": "trace_header", "format": "orm-inspector-trace", "version": 1, "pid": 1, "started": 1.0,
        "python": "3", "sqlalchemy": "2", "errors_at_start": 2})  # both before this recording began
    r = cli("summary", str(path))
    assert r.returncode == 0 and "inspector error" not in r.stdout, r.stdout


def assert_one_line_error(r: subprocess.CompletedProcess) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr
    err = r.stderr.strip("\n").splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith("orm-inspector:"), r.stderr


def test_summary_missing_file(tmp_path):
    r = cli("summary", str(tmp_path / "missing.jsonl"))
    assert_one_line_error(r)


def test_summary_malformed_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_trace(path, [ev(1), "{{{ broken", ev(3)])
    r = cli("summary", str(path))
    assert_one_line_error(r)
    assert "line 3" in r.stderr


def test_summary_newer_version(tmp_path):
    path = tmp_path / "v2.jsonl"
    write_trace(path, [ev(1)], header={"kind": "trace_header", "format": "orm-inspector-trace", "version": 2,
                                       "pid": 1, "python": "3", "sqlalchemy": "2", "started": 1.0})
    r = cli("summary", str(path))
    assert_one_line_error(r)
    assert "version" in r.stderr


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02 binary \xff\xfe\n", b'{"a": 1}\n'])
def test_summary_not_a_trace(tmp_path, content):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    assert_one_line_error(cli("summary", str(path)))


def test_summary_a_directory(tmp_path):
    assert_one_line_error(cli("summary", str(tmp_path)))


def test_summary_fake_gzip(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    write_trace(path, [ev(1)])
    assert_one_line_error(cli("summary", str(path)))


@pytest.mark.parametrize("event", [
    ev(1, "checkout"),  # a pool event without its pool
    ev(1, "after_transaction_create"),  # a session event without its session
    {"seq": 1, "ts": "yesterday", "kind": "checkin", "pid": 1, "thread": "t"},  # ts not a number
])
def test_summary_events_with_wrong_fields_are_a_clear_error_not_a_traceback(tmp_path, event):
    """A hand-edited or foreign trace whose lines parse but whose events lack their fields is a
    malformed trace too: the contract wants one line on stderr, never a traceback."""
    path = tmp_path / "odd.jsonl"
    write_trace(path, [event, ev(2)])
    r = cli("summary", str(path))
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    if r.returncode != 0:
        assert_one_line_error(r)


@pytest.mark.parametrize("args", [["--help"], ["summary", "--help"]])
def test_help(args):
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()
    assert "summary" in r.stdout
    assert r.stderr == ""


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "orm-inspector"
    if not script.exists():
        pytest.skip("no orm-inspector console script next to this interpreter")
    r = subprocess.run([str(script), "--help"], cwd=str(REPO), capture_output=True, text=True,
                       timeout=SUBPROCESS_TIMEOUT)
    assert r.returncode == 0 and "summary" in r.stdout


# ---- 9: seq numbering per file ---------------------------------------------------------------------


def test_consecutive_recordings_each_start_at_seq_1(tmp_path, sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        with orm_inspector.record(tmp_path / "one.jsonl"):
            small_work(engine)
        small_work(engine)  # between recordings: in neither file
        with orm_inspector.record(tmp_path / "two.jsonl.gz"):
            small_work(engine)
        with orm_inspector.record(tmp_path / "three.jsonl"):
            small_work(engine)
    finally:
        engine.dispose()
    for name in ("one.jsonl", "two.jsonl.gz", "three.jsonl"):
        _, events = check_file(tmp_path / name, pid=os.getpid())
        assert "before_flush" in {e["kind"] for e in events}, name


def test_consecutive_recordings_while_installed_each_start_at_seq_1(tmp_path, sqlite_url):
    engine = make_engine(sqlite_url)
    orm_inspector.install()
    try:
        small_work(engine)
        with orm_inspector.record(tmp_path / "one.jsonl"):
            small_work(engine)
        small_work(engine)
        with orm_inspector.record(tmp_path / "two.jsonl"):
            small_work(engine)
    finally:
        orm_inspector.uninstall()
        engine.dispose()
    one = check_file(tmp_path / "one.jsonl")[1]
    two = check_file(tmp_path / "two.jsonl")[1]
    # each file holds its own block's work, and only that: authors 4-6 in one, 10-12 in two
    def new_authors(events):
        return sorted(e["obj"]["identity"][0] for e in events
                      if e["kind"] == "pending_to_persistent" and e["obj"]["cls"] == "Author")

    assert new_authors(one) == [4, 5, 6]
    assert new_authors(two) == [10, 11, 12]


def test_nested_recordings_each_number_from_1(tmp_path, sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        with orm_inspector.record(tmp_path / "outer.jsonl") as outer:
            small_work(engine)
            with orm_inspector.record(tmp_path / "inner.jsonl.gz") as inner:
                small_work(engine)
            small_work(engine)
    finally:
        engine.dispose()
    _, out_events = check_file(tmp_path / "outer.jsonl", pid=os.getpid())
    _, in_events = check_file(tmp_path / "inner.jsonl.gz", pid=os.getpid())
    assert outer.events == len(out_events) - 1 and inner.events == len(in_events) - 1
    # the inner file holds the middle part of the outer one: same kinds, seq shifted by a constant
    body = in_events[:-1]
    assert body and "before_flush" in {e["kind"] for e in body}
    shift = None
    by_ts = [e for e in out_events[:-1]]
    for e in body:
        match = [o for o in by_ts if o["ts"] == e["ts"] and o["kind"] == e["kind"]]
        assert match, e
        d = match[0]["seq"] - e["seq"]
        shift = d if shift is None else shift
        assert d == shift and d > 0
    assert len(out_events) > len(in_events)


def test_overlapping_recordings_closed_out_of_order(tmp_path, sqlite_url):
    """Two recordings at once, the first one closed first: both files valid, each from seq 1."""
    engine = make_engine(sqlite_url)
    try:
        a = orm_inspector.record(tmp_path / "a.jsonl")
        a.__enter__()
        small_work(engine)
        b = orm_inspector.record(tmp_path / "b.jsonl")
        b.__enter__()
        small_work(engine)
        a.__exit__(None, None, None)
        small_work(engine)
        b.__exit__(None, None, None)
    finally:
        orm_inspector.uninstall()
        engine.dispose()
    _, a_events = check_file(tmp_path / "a.jsonl")
    _, b_events = check_file(tmp_path / "b.jsonl")
    assert [e["kind"] for e in a_events].count("after_commit") == 4  # a: the first two blocks
    assert [e["kind"] for e in b_events].count("after_commit") == 4  # b: the last two, after a closed too
