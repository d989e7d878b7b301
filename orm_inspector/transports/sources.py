"""One interface over every way events arrive: a trace file, a live socket, this process.

A source has ``hello`` (who is speaking: ``pid``, and ``state``, the state-json of what happened
before its first event, or None when it starts from the beginning), is iterated for events (dicts in
the trace format, in ``seq`` order) and is closed with ``close()``. Consumers (``State``, the TUI)
do not know which kind they hold.

- ``FileSource(path)``: a recording, from its first event to its last.
- ``LiveSource(address, token)``: a running app (transports/client.py), from the moment of connection.
- ``FeedSource()``: this process, through ``signals.events``, with a bounded buffer whose overflow is
  announced as a ``dropped`` event, like a live viewer's.
- ``ProcessGroupSource(address, token)``: a running app and every process it forks or starts
  (``orm-inspector run --listen``), followed as they come and go. Its events come from several
  processes (each event's ``pid`` says which; each process numbers its own ``seq``), with two kinds of
  its own around each process's events: ``source_hello`` and ``source_end``. See its docstring.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from .. import signals
from .client import LiveSource, SourceError
from .trace import TraceReader

__all__ = ["Source", "FileSource", "LiveSource", "FeedSource", "ProcessGroupSource"]


class Source(Protocol):
    hello: dict[str, Any]

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class FileSource:
    def __init__(self, path: str | Path) -> None:
        self.reader = TraceReader(path)
        self._events = iter(self.reader)
        self._first = next(self._events, None)  # reads the header: a bad file fails here, at once
        self.hello = {"pid": self.reader.header.get("pid"), "state": None, "header": self.reader.header}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._events

    def close(self) -> None:
        self._events = iter(())


class FeedSource:
    """Events of this process, as they are sent. ``max_events`` bounds what waits to be read."""

    _END = object()

    def __init__(self, max_events: int = 100_000) -> None:
        import os

        self.hello = {"pid": os.getpid(), "state": None}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._room = threading.Semaphore(max_events)
        self._dropped = 0
        signals.events.connect(self._receive, weak=False)

    def _receive(self, sender: str, events: list[Any]) -> None:  # the inspector's thread
        kept: list[Any] = []
        for e in events:
            if not self._room.acquire(blocking=False):
                self._dropped += 1
                continue
            if self._dropped:  # the first event after a gap: say how many went missing
                if kept:
                    self._queue.put(msgspec.to_builtins(kept, enc_hook=str))
                    kept = []
                self._queue.put({"kind": "dropped", "count": self._dropped, "seq": e.seq - 1, "pid": e.pid,
                                 "ts": e.ts, "thread": "orm-inspector"})
                self._dropped = 0
            kept.append(e)
        if kept:
            self._queue.put(msgspec.to_builtins(kept, enc_hook=str))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, dict):
                yield item
                continue
            for e in item:
                self._room.release()
                yield e

    def close(self) -> None:
        signals.events.disconnect(self._receive)
        self._queue.put(self._END)


SIBLING_SOCKET = re.compile(r"live-(\d+)\.sock")  # how the group's other processes listen (server.group_dir)


class ProcessGroupSource:
    """Every process of one program at once: the one at ``address`` (the root) and the others of its
    process group (forked workers, subprocesses), followed as they appear and until each goes away.

    Iterating it yields dicts from all of them, merged in the order they arrive:

    - ``{"kind": "source_hello", "pid": P, "ppid": ..., "argv": [...], "address": "unix:...",
      "root": bool, "ts": ..., "state": {...}}`` when a process is joined: ``state`` is its state at
      that moment (state-json), which its next events continue (its ``seq`` + 1 onwards). It comes
      before any event of ``pid`` P. The root's comes first.
    - the events of each process, in the trace format: ``event["pid"]`` says whose. Each process
      numbers its own ``seq``; ``dropped`` events are per process too.
    - ``{"kind": "source_end", "pid": P, "ts": ..., "clean": bool, "reason": "ended" | "lost: ..."}``
      after the last event of P: its stream ended (it exited, or died: clean, ``ended``) or the
      connection broke (not clean, ``lost: <why>``).

    The iteration ends when the root and every other followed process have ended, or at ``close()``.
    So a viewer keeps one state per process::

        with ProcessGroupSource(address, token) as source:      # SourceError: cannot connect, wrong token
            states = {}
            for item in source:
                pid = item["pid"]
                if item["kind"] == "source_hello":
                    states[pid] = State.from_json(item["state"]) # or a fresh State() fed from here on
                elif item["kind"] == "source_end":
                    ...                                          # show pid as disconnected
                else:
                    states[pid].apply(item)

    ``hello`` is the root's hello (as ``LiveSource.hello``); ``hellos`` maps each pid joined so far to
    its hello (set just before its ``source_hello`` is yielded). The other processes are found in the
    private directory the root's hello names (``group``, see docs/wire-protocol.md), looked into every
    ``POLL`` seconds while iterating; a viewer that cannot read it (another machine, another user)
    follows the root alone. A server that is no group's (``orm_inspector.serve()``) is followed alone.

    Reading happens on one thread per process; at most ``max_batches`` batches wait to be iterated,
    beyond that the readers wait, and a process's server drops what its viewer (this) cannot take, as
    for any slow viewer. ``close()`` may be called from another thread.
    """

    POLL = 0.5  # seconds between looks for new processes
    ATTEMPTS = 3  # connections tried per socket file (one may be left by a process killed at once)

    def __init__(self, address: str, token: str, timeout: float = 5.0, max_batches: int = 256) -> None:
        self._token = token
        self._timeout = timeout
        root = LiveSource(address, token, timeout)  # raises SourceError: the caller hears at once
        self.hello: dict[str, Any] = root.hello
        self.group: str | None = root.hello.get("group")
        self.hellos: dict[int, dict[str, Any]] = {}
        self._queue: queue.Queue = queue.Queue(max_batches)
        self._lock = threading.Lock()  # _sources and _closed, against close() from another thread
        self._sources: list[LiveSource] = []
        self._closed = False
        # Below: the iterating thread's only.
        self._following: set[int] = {root.hello["pid"]}  # pids with a reader running
        self._attempts: dict[tuple[int, int], int] = {}  # (pid, inode) of a socket file -> tries
        self._root_ended = False
        self._next_look = 0.0
        self._start(address, None, root)

    def _start(self, address: str, key: tuple[int, int] | None, source: LiveSource | None = None) -> None:
        threading.Thread(target=self._follow, args=(address, key, source), daemon=True,
                         name=f"orm-inspector-viewer {address}").start()

    def _follow(self, address: str, key: tuple[int, int] | None, source: LiveSource | None) -> None:
        """On a reader thread: one process's hello, events and end, or a failed attempt to connect.
        Its last word is always ("done", key, end item or None)."""
        end = None
        try:
            if source is None:
                source = LiveSource(address, self._token, self._timeout)
            with self._lock:
                if self._closed:
                    source.close()
                    return
                self._sources.append(source)
            hello = source.hello
            pid = hello["pid"]
            self._put(("hello", hello, {"kind": "source_hello", "pid": pid, "ppid": hello.get("ppid"),
                                        "argv": hello.get("argv"), "address": address, "root": key is None,
                                        "ts": time.time(), "state": hello.get("state")}))
            reason = "ended"
            try:
                for batch in source.batches():
                    if not self._put(("events", batch)):
                        break
            except Exception as exc:  # noqa: BLE001 - this process's stream is over, the others go on
                reason = f"lost: {exc}"
            end = {"kind": "source_end", "pid": pid, "ts": time.time(), "clean": reason == "ended", "reason": reason}
        except SourceError:
            pass  # not listening (yet, or any more): tried again at the next looks, a few times
        finally:
            if source is not None:
                source.close()
                with self._lock:
                    if source in self._sources:
                        self._sources.remove(source)
            self._put(("done", key, end))

    def _put(self, entry: tuple[Any, ...]) -> bool:
        while not self._closed:  # waits while the iterating side is behind, but not past close()
            try:
                self._queue.put(entry, timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def _look(self) -> None:
        """Follow the processes that started listening in the group's directory since the last look."""
        self._next_look = time.monotonic() + self.POLL
        if self.group is None:
            return
        try:
            entries = list(os.scandir(self.group))
        except OSError:  # gone (the root has exited), or not ours to read
            return
        for entry in entries:
            match = SIBLING_SOCKET.fullmatch(entry.name)
            if match is None or int(match[1]) in self._following:
                continue
            try:
                key = (int(match[1]), entry.inode())  # a pid used again makes a new file
            except OSError:
                continue
            tries = self._attempts.get(key, 0)
            if tries < self.ATTEMPTS:
                self._attempts[key] = tries + 1
                self._following.add(key[0])
                self._start(f"unix:{entry.path}", key)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while not self._closed and not (self._root_ended and not self._following):
            if time.monotonic() >= self._next_look:
                self._look()
            try:
                entry = self._queue.get(timeout=max(0.0, self._next_look - time.monotonic()))
            except queue.Empty:
                continue
            if entry is None or self._closed:  # close() woke us
                continue
            if entry[0] == "events":
                yield from entry[1]
            elif entry[0] == "hello":
                self.hellos[entry[1]["pid"]] = entry[1]
                yield entry[2]
            else:
                _, key, end = entry
                if key is None:
                    self._root_ended = True
                    self._following.discard(self.hello["pid"])
                else:
                    self._following.discard(key[0])
                    if end is not None:
                        self._attempts[key] = self.ATTEMPTS  # followed to its end: never again
                if end is not None:
                    yield end

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sources = list(self._sources)
        for source in sources:
            source.close()
        try:
            self._queue.put_nowait(None)
        except queue.Full:  # the iterating side is not waiting, then
            pass

    def __enter__(self) -> ProcessGroupSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
