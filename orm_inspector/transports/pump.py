"""Reads a source on a thread of its own, so that a viewer's screen never waits for the socket.

``SourcePump(source)`` starts reading at once; ``drain(view)`` (the viewer's thread) folds what has
arrived into a ``View``. The hand-off is bounded: when the viewer falls behind, the reading thread
waits, the socket fills, and the live server drops events for this viewer and says so (a ``dropped``
event), so that a slow screen costs the app nothing and is never silently wrong.

A source may also yield ``source_hello`` (a process joins: its hello) and ``source_end`` (a process
went away) items when it follows several processes; a plain source's end is the end of all of them.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from ..state.view import View

_END = object()


class SourcePump:
    def __init__(self, source: Any, max_waiting: int = 100_000) -> None:
        self.source = source
        self._queue: queue.Queue = queue.Queue(max_waiting)
        self.ended = False
        self.error: str | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._read, name="orm-inspector-pump", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.source:
                if self._closing:
                    return
                self._queue.put(event)
        except Exception as exc:  # noqa: BLE001 - a broken source is shown to the user, not raised
            if not self._closing:
                self.error = f"{type(exc).__name__}: {exc}"
        self._queue.put(_END)

    def drain(self, view: View, limit: int = 200_000) -> int:
        """Fold up to ``limit`` waiting events into ``view``; the number folded."""
        done = 0
        while done < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self.ended = True
                view.end(None, "lost" if self.error else "ended", self.error or "")
                break
            kind = item.get("kind")
            if kind == "source_hello":
                view.hello(item)
            elif kind == "source_end":
                view.end(item.get("pid"), "ended" if item.get("clean", True) else "lost", item.get("reason", ""))
            else:
                view.apply(item)
                done += 1
        return done

    def close(self) -> None:
        self._closing = True
        try:
            self.source.close()
        except Exception:  # noqa: BLE001 - closing a broken source: nothing more to do
            pass
        while True:  # unblock the reader if it waits for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
