"""The inspector's thread: takes events from the hooks' queue, finishes them and sends the signals.

Every ``interval`` seconds (50 ms) it
1. reads the ``deleted`` set of each live session (an O(1) length check unless something is there):
   ``Session.delete()`` of a persistent object fires no event, so this is how it reaches the stream,
   never more than one interval late;
2. drains the queue, and reports drops and hook errors as events;
3. finishes each event: call sites become ``"file:line:function"``, values are truncated and redacted,
   parameters get their names; then gives it its ``seq``;
4. sends each run of consecutive same-family events through that family's signal.

All formatting and I/O of orm_inspector happens here or in the sinks it calls, never on the app's
threads.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from sqlalchemy.orm import session as _sa_session

from .. import signals
from ..events import (FAMILIES, AttributeEvent, Event, FlushEvent, InspectorEvent, LifecycleEvent,
                      ObjRef, PoolEvent, SessionEvent, SQLEvent)
from ..hooks import callsite, runtime, values
from ..hooks.session import tracks
from ..hooks.values import REDACTED, finish, redacts, ref

_LEAVES = {"persistent_to_deleted", "persistent_to_detached", "deleted_to_detached", "persistent_to_transient",
           "gc_evicted", "deleted_to_persistent"}


# ---- finishing ----------------------------------------------------------------------------------
def _params(captured: Any) -> Any:
    if captured is None:
        return None
    if captured[0] == "one":
        _, names, params = captured
        return _named(names, params)
    _, names, count, sets = captured
    return {"count": count, "first": [_named(names, p) for p in sets]}


def _named(names: Any, params: Any) -> Any:
    if isinstance(params, dict):
        return {k: (REDACTED if redacts(k) else finish(v)) for k, v in params.items()}
    if names is not None and len(names) == len(params):
        return {n: (REDACTED if redacts(n) else finish(v)) for n, v in zip(names, params)}
    return [finish(v) for v in params]


def _changes(refs: list[ObjRef] | None) -> None:
    for r in refs or ():
        if r.changes:
            r.changes = {k: (REDACTED if redacts(k) else finish(v)) for k, v in r.changes.items()}


def _finish(ev: Event) -> None:
    t = type(ev)
    if t is SQLEvent:
        ev.site = callsite.describe(ev.site)
        if ev.parameters is not None:
            ev.parameters = _params(ev.parameters)
    elif t is FlushEvent:
        ev.site = callsite.describe(ev.site)
        _changes(ev.new)
        _changes(ev.dirty)
    elif t is AttributeEvent:
        if ev.attr is not None and redacts(ev.attr):
            ev.value = ev.old = REDACTED
        else:
            ev.value, ev.old = finish(ev.value), finish(ev.old)
    elif t is SessionEvent or t is PoolEvent:
        ev.site = callsite.describe(ev.site)


def _own(kind: str, **fields: Any) -> InspectorEvent:
    return InspectorEvent(ts=time.time(), kind=kind, pid=runtime.pid, thread="orm-inspector", **fields)


# ---- the thread -------------------------------------------------------------------------------
class Dispatcher:
    interval = 0.05

    def __init__(self) -> None:
        self.seq = 0
        self._lock = threading.Lock()  # one pump at a time (the thread, or a stop() caller)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported_drops = 0
        self._reported_errors = 0

    # lifecycle
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="orm-inspector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self.pump()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.pump()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self.seq = 0
        self._reported_drops = self._reported_errors = 0

    # work
    def pump(self) -> None:
        with self._lock:
            try:
                self._pump()
            except Exception as exc:  # noqa: BLE001 - the inspector's thread must live on
                runtime.record_error("dispatcher", exc)

    def _pump(self) -> None:
        read_at = time.time()
        deleted_now = self._read_deleted() if runtime.enabled else {}
        batch = self._drain()
        if deleted_now:
            batch = self._merge_deleted(batch, deleted_now, read_at)
        if not batch:
            return
        seq = self.seq
        for ev in batch:
            seq += 1
            ev.seq = seq
            if type(ev) is not LifecycleEvent:
                _finish(ev)
        self.seq = seq
        self._send(batch)

    def _drain(self) -> list[Event]:
        q = runtime.queue
        batch = []
        pop = q.popleft
        for _ in range(len(q)):
            batch.append(pop())
        if runtime.dropped != self._reported_drops:
            total = runtime.dropped
            batch.append(_own("dropped", count=total - self._reported_drops, total=total))
            self._reported_drops = total
        while runtime.errors != self._reported_errors and runtime.error_log:
            hook, message = runtime.error_log.popleft()
            self._reported_errors += 1
            batch.append(_own("inspector_error", hook=hook, error=message, total=runtime.errors))
        self._reported_errors = runtime.errors
        return batch

    def _read_deleted(self) -> dict[Any, dict[str, Any]]:
        """Sessions whose ``deleted`` set differs from what we last saw: track -> {key: state}."""
        changed = {}
        for session in list(_sa_session._sessions.values()):
            t = tracks.get(session.hash_key)
            if t is None or not t.on:
                continue
            deleted = session._deleted
            if not deleted and not t.deleted:
                continue  # the common case: O(1)
            now = {runtime.id_of(st, "o"): st for st in list(deleted)}
            if now.keys() != t.deleted.keys():
                changed[t] = now
        return changed

    def _merge_deleted(self, batch: list[Event], deleted_now: dict[Any, dict[str, Any]], read_at: float) -> list[Event]:
        explained = {ev.obj.key for ev in batch if type(ev) is LifecycleEvent and ev.kind in _LEAVES}
        marks: list[Event] = []
        for t, now in deleted_now.items():
            before = t.deleted
            for key, st in now.items():
                if key not in before:
                    marks.append(LifecycleEvent(ts=read_at, kind="deleted_mark", pid=runtime.pid,
                                                thread="orm-inspector", session=t.sid, obj=ref(st)))
            for key, r in before.items():
                if key not in now and key not in explained:
                    marks.append(LifecycleEvent(ts=read_at, kind="deleted_unmark", pid=runtime.pid,
                                                thread="orm-inspector", session=t.sid, obj=r))
            t.deleted = {key: ref(st) for key, st in now.items()}
        if not marks or not signals.lifecycle.receivers:
            return batch
        # The marks happened before read_at: put them before the events that came later.
        at = len(batch)
        while at > 0 and batch[at - 1].ts > read_at:
            at -= 1
        return batch[:at] + marks + batch[at:]

    def _send(self, batch: list[Event]) -> None:
        start = 0
        family = FAMILIES[type(batch[0])]
        for i in range(1, len(batch) + 1):
            nxt = FAMILIES[type(batch[i])] if i < len(batch) else None
            if nxt != family:
                self._send_run(family, batch[start:i])
                start, family = i, nxt

    def _send_run(self, family: str, run: list[Event]) -> None:
        signal = signals.BY_FAMILY[family]
        for receiver in list(signal.receivers_for(family)):
            try:
                receiver(family, events=run)
            except Exception as exc:  # noqa: BLE001 - one bad receiver must not starve the others
                runtime.record_error(f"receiver {getattr(receiver, '__qualname__', receiver)!r}", exc)


dispatcher = Dispatcher()


def _after_fork_in_child() -> None:
    running = dispatcher._thread is not None
    dispatcher.after_fork_in_child()
    if running and runtime.enabled:
        dispatcher.start()


os.register_at_fork(after_in_child=_after_fork_in_child)
