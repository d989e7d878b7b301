"""One interface over every way events arrive: a trace file, a live socket, this process.

A source has ``hello`` (who is speaking: ``pid``, and ``state``, the state-json of what happened
before its first event, or None when it starts from the beginning), is iterated for events (dicts in
the trace format, in ``seq`` order) and is closed with ``close()``. Consumers (``State``, the TUI)
do not know which kind they hold.

- ``FileSource(path)``: a recording, from its first event to its last.
- ``LiveSource(address, token)``: a running app (transports/client.py), from the moment of connection.
- ``FeedSource()``: this process, through ``signals.events``, with a bounded buffer whose overflow is
  announced as a ``dropped`` event, like a live viewer's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from .. import signals
from .client import LiveSource
from .trace import TraceReader

__all__ = ["Source", "FileSource", "LiveSource", "FeedSource"]


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
                self._queue.put({"kind": "dropped", "count": self._dropped, "seq": e.seq - 1})
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
