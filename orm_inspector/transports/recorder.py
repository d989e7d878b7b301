"""The recorder: a signal receiver that writes the event stream to a trace file (docs/trace-format.md).

It runs on the inspector's thread. Each batch is encoded by msgspec in one call and written with a
single ``write`` to an unbuffered file, so that a crash loses at most the last partial line; ``.gz``
files are compressed with a sync flush after each batch, so that they too can be read up to the crash.
After a fork, the child records to a file of its own, ``NAME-<pid>.jsonl[.gz]`` next to the parent's.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
import weakref
import zlib
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy

from .. import __version__, signals
from ..events import TRACE_FORMAT, TRACE_VERSION, Event, InspectorEvent
from ..hooks import runtime

def _unknown(value: Any) -> str:
    return f"<{type(value).__name__}>"  # an odd driver type in a parameter must not lose a batch


_encoder = msgspec.json.Encoder(enc_hook=_unknown)


def encodable(value: Any) -> Any:
    """``value`` (JSON data) with every string made writable as UTF-8: a lone surrogate, which
    ``os.fsdecode()`` makes of undecodable bytes (file names, argv), becomes its escape ``\\udce9``."""
    t = type(value)
    if t is str:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if t is dict:
        return {encodable(k): encodable(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [encodable(v) for v in value]
    return value


def encode_lines(events: list[Event]) -> bytes:
    """The events as JSON lines, in one call. msgspec refuses a string with a lone surrogate: then
    event by event, each refused one made encodable, so that one odd value never costs a batch."""
    try:
        return _encoder.encode_lines(events)
    except UnicodeEncodeError:
        pass
    lines = []
    for e in events:
        try:
            lines.append(_encoder.encode(e))
        except UnicodeEncodeError:
            lines.append(_encoder.encode(encodable(msgspec.to_builtins(e, enc_hook=_unknown))))
    return b"\n".join(lines) + b"\n"
_live: weakref.WeakSet = weakref.WeakSet()
_parents_files: list[Any] = []


def child_path(path: Path, pid: int) -> Path:
    """trace.jsonl.gz -> trace-1234.jsonl.gz"""
    name = path.name
    stem, dot, rest = name.partition(".")
    return path.with_name(f"{stem}-{pid}{dot}{rest}")


class Recorder:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.events = 0
        self._base: int | None = None  # the dispatcher's seq just before our first event
        self._lock = threading.Lock()
        self._open(parent_pid=None)
        _live.add(self)

    def _open(self, parent_pid: int | None) -> None:
        self._file = open(self.path, "wb", buffering=0)
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if self.path.suffix == ".gz" else None
        header: dict[str, Any] = {
            "kind": "trace_header", "format": TRACE_FORMAT, "version": TRACE_VERSION,
            "pid": os.getpid(), "started": time.time(), "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__, "orm_inspector": __version__,
            "argv": list(sys.argv), "hostname": platform.node(), "errors_at_start": runtime.errors,
        }
        if parent_pid is not None:
            header["parent_pid"] = parent_pid
        self._write(_encoder.encode(encodable(header)) + b"\n")  # argv may hold undecodable bytes

    def _write(self, data: bytes) -> None:
        if self._gzip is not None:
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        view = memoryview(data)
        while view:
            view = view[self._file.write(view):]

    # the signal receiver
    def __call__(self, family: str, events: list[Event]) -> None:
        with self._lock:
            if self._file is None:
                return
            if self._base is None:
                self._base = events[0].seq - 1
            base = self._base
            if base:  # the stream began before this file: number from 1 within the file
                for e in events:  # receivers run one after another on this thread: safe to
                    e.seq -= base  # renumber for the encoding and restore right after
                try:
                    data = encode_lines(events)
                finally:
                    for e in events:
                        e.seq += base
            else:
                data = encode_lines(events)
            self._write(data)
            self.events += len(events)

    def start(self) -> None:
        signals.events.connect(self, weak=False)

    def close(self) -> None:
        """Stop receiving, write ``trace_end`` and close. The caller pumps the dispatcher first."""
        signals.events.disconnect(self)
        with self._lock:
            if self._file is None:
                return
            end = InspectorEvent(seq=self.events + 1, ts=time.time(), kind="trace_end", pid=runtime.pid,
                                 thread="orm-inspector", events=self.events, dropped=runtime.dropped,
                                 errors=runtime.errors)
            self._write(_encoder.encode(end) + b"\n")
            if self._gzip is not None:
                self._file.write(self._gzip.flush(zlib.Z_FINISH))
            self._file.close()
            self._file = None

    def after_fork_in_child(self) -> None:
        # The parent's file is the parent's: drop our copy of it without writing a byte.
        # Keep its file object unclosed for the child's lifetime: closing it here, or letting the
        # garbage collector do it later, could close a descriptor number the child reuses.
        _parents_files.append(self._file)
        parent = self.path
        self._lock = threading.Lock()
        self.path = child_path(parent, os.getpid())
        self.events = 0
        self._base = None
        self._open(parent_pid=os.getppid())


def _after_fork_in_child() -> None:
    for recorder in list(_live):
        if recorder._file is not None:
            recorder.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
