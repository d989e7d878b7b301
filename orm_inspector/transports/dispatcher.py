"""The inspector's thread: takes events from the hooks' queue, finishes them and sends the signals.

Every ``interval`` seconds (50 ms) it
1. reads the ``deleted`` set of each live session (an O(1) length check unless something is there):
   ``Session.delete()`` of a persistent object fires no event, so this is how it reaches the stream,
   never more than one interval late;
2. drains the queue, and reports drops and hook errors as events;
3. finishes each event: call sites become ``"file:line:function"``, parameters get their names, and
   values are redacted (the hooks already made them safe and short); then gives it its ``seq``;
4. sends each run of consecutive same-family events through that family's signal.

All formatting and I/O of orm_inspector happens here or in the sinks it calls, never on the app's
threads.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import threading
import time
import uuid
from typing import Any


from .. import signals
from ..events import (FAMILIES, AttributeEvent, Event, FlushEvent, InspectorEvent, LifecycleEvent, ObjRef, SessionEvent,
                      SnapshotEvent, SQLEvent)
from ..hooks import callsite, runtime
from ..hooks.session import live_sessions, tracks
from ..hooks.values import MAX_STR, REDACTED, finish, names_redacted_in, redact_keys, redaction_mask, redacts, ref

_EDITS = frozenset({"set", "append", "remove", "modified"})
# After these, SQLAlchemy's ``_modified`` set of the session is empty: what was modified is written or
# expired. (after_commit and after_rollback of a savepoint expire nothing, but a flush came first.)
_CLEANS = frozenset({"after_flush", "after_commit", "after_rollback"})
_LEAVES = {"persistent_to_deleted", "persistent_to_detached", "deleted_to_detached", "persistent_to_transient",
           "gc_evicted", "deleted_to_persistent"}
_INTO_MAP = {"pending_to_persistent", "detached_to_persistent", "loaded_as_persistent", "deleted_to_persistent"}
_OUT_OF_MAP = {"persistent_to_deleted", "persistent_to_detached", "deleted_to_detached", "persistent_to_transient"}
# Seconds between two key comparisons of one identity map. An eviction is confirmed at the second
# comparison after it, so it is reported at most 2 x (SWEEP_EVERY + interval) = 240 ms late.
SWEEP_EVERY = 0.07
MAX_ROWS = 10  # parameter sets written for an executemany or a batched INSERT
_STRUCTURES = (dict, list)  # values whose dicts' keys may be redacted


class Membership:
    """What the inspector's thread knows of one identity map, from lifecycle events: identity key ->
    ObjRef. Compared with the map itself, it reveals objects that left it without an event."""

    __slots__ = ("refs", "keys", "suspects", "swept", "dirty")

    def __init__(self) -> None:
        self.refs: dict[Any, ObjRef] = {}  # SQLAlchemy identity key -> ObjRef
        self.keys: dict[str, Any] = {}  # our object key -> identity key
        self.suspects: set[Any] = set()  # missing at the last comparison: evicted if still missing
        self.swept = 0.0
        # Objects the stream has said are modified since their last flush: the identity map's own
        # ``_modified`` set holding more than these means a change without an event (flag_dirty()).
        self.dirty: set[str] = set()

    @classmethod
    def of(cls, ev: SnapshotEvent) -> Membership:
        m = cls()
        for ikey, r in zip(ev.ikeys or (), ev.identity_map or ()):
            m.refs[ikey] = ObjRef(r.cls, r.identity, r.key)  # without its changes: they pass
            m.keys[r.key] = ikey
        m.dirty.update(ev.modified or ())
        ev.ikeys = ev.modified = None  # never written
        return m

    def apply(self, ev: LifecycleEvent) -> ObjRef | None:
        """Follow one event; returns the object it shows was evicted unseen, if any: a map holds one
        object per identity, so a new one under an identity means the old one is gone."""
        kind = ev.kind
        if kind in _INTO_MAP and ev.ikey is not None:
            before = self.refs.get(ev.ikey)
            self.refs[ev.ikey] = ev.obj
            self.keys[ev.obj.key] = ev.ikey
            if before is not None and before.key != ev.obj.key:
                self.keys.pop(before.key, None)
                self.suspects.discard(ev.ikey)
                return before
        elif kind in _OUT_OF_MAP:
            ikey = self.keys.pop(ev.obj.key, None)
            self.refs.pop(ikey, None)
            self.dirty.discard(ev.obj.key)
        elif kind == "identity_changed" and ev.ikey is not None:  # its primary key changed: same object
            self.refs.pop(self.keys.get(ev.obj.key), None)
            self.refs[ev.ikey] = ev.obj
            self.keys[ev.obj.key] = ev.ikey
        return None

    def sweep(self, identity_map: Any, now: float, final: bool = False) -> list[ObjRef]:
        """Objects gone from the map without an event, seen missing twice in a row (a close or a
        rollback in progress removes objects before it reports them: the second look lets it finish)."""
        if len(identity_map) == len(self.refs) and not self.suspects:
            return []  # the common case: O(1)
        if now - self.swept < SWEEP_EVERY and not final:
            return []
        self.swept = now
        present = set(list(identity_map._dict))  # list() copies at once, safe against the app's thread
        missing = self.refs.keys() - present
        evicted = missing if final else missing & self.suspects
        self.suspects = missing - evicted
        gone = []
        for ikey in evicted:
            r = self.refs.pop(ikey)
            self.keys.pop(r.key, None)
            gone.append(r)
        for ikey in present - self.refs.keys():  # there before we looked (or its event is on the way)
            st = identity_map._dict.get(ikey)
            if st is not None:
                r = self.refs[ikey] = ref(st)
                self.keys[r.key] = ikey
        return gone


# ---- finishing ----------------------------------------------------------------------------------
def _params(captured: Any) -> Any:
    if captured is None:
        return None
    if captured[0] == "one":
        _, names, params = captured
        return _named(names, params)
    if captured[0] == "expanded":  # positional, with IN lists expanded: the names do not line up
        _, names, params = captured
        return _unaligned(names, params)
    _, names, count, sets = captured
    return {"count": count, "first": [_named(names, p) for p in sets]}


# Values a parameter can have that ``finish`` would give back unchanged: skipped without a call.
_AS_IS = frozenset({int, float, bool, type(None), decimal.Decimal, datetime.date, datetime.datetime,
                    datetime.time, datetime.timedelta, uuid.UUID})


def _value(v: Any) -> Any:
    t = type(v)
    if t is str:
        if v[:1] in ("{", "["):  # maybe a JSON column's value, serialized: its keys are names too
            v = _json_redacted(v)
        if len(v) <= MAX_STR:
            return v
    elif t is dict or t is list:  # a driver's own structure (hstore, arrays): its keys are names too
        return finish(redact_keys(v))
    return finish(v)


JSON_PARSED = 64 * 1024  # longer documents are not parsed (the app waits for our GIL): only their start is written


def _json_redacted(text: str) -> str:
    """A JSON document with the values under redacted keys replaced; any other text as it is."""
    if len(text) > JSON_PARSED:
        return REDACTED if names_redacted_in(text[:MAX_STR]) else text[:MAX_STR + 1]
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    hidden = redact_keys(doc)
    return text if hidden == doc else json.dumps(hidden)


def _named(names: Any, params: Any) -> Any:
    if isinstance(params, dict):
        return {k: (REDACTED if redacts(k) else v if type(v) in _AS_IS else _value(v)) for k, v in params.items()}
    if names:
        if len(names) == len(params):
            return {n: (REDACTED if hide else v if type(v) in _AS_IS else _value(v))
                    for n, hide, v in zip(names, redaction_mask(names), params)}
        if len(params) % len(names) == 0:  # a batched INSERT: one flat tuple of several rows
            rows = [params[i:i + len(names)] for i in range(0, len(params), len(names))]
            return {"count": len(rows), "first": [_named(names, row) for row in rows[:MAX_ROWS]]}
    return _unaligned(names, params)


def _unaligned(names: Any, params: Any) -> list:
    """Values whose names we cannot line up: a list; every value hidden if any name is redacted."""
    if names and any(redaction_mask(names)):
        return [REDACTED] * len(params)
    return [v if type(v) in _AS_IS else _value(v) for v in params]


def _redact_changes(refs: list[ObjRef] | None) -> None:
    for r in refs or ():
        changes = r.changes
        if changes and any(redacts(k) or _holds_structure(v) for k, v in changes.items()):
            r.changes = {k: (REDACTED if redacts(k) else redact_keys(v)) for k, v in changes.items()}


def _holds_structure(change: Any) -> bool:
    """A scalar change ``[old, new]`` where a value is a dict or a list (a JSON column): the keys of
    its dicts may be redacted. (A collection's change is a dict of ObjRefs: nothing to redact.)"""
    return type(change) is list and any(type(v) is dict or type(v) is list for v in change)


def _finish(ev: Event) -> None:
    """Values were made safe and short by the hooks; here: names for call sites and parameters,
    and redaction."""
    t = type(ev)
    if t is SnapshotEvent:
        _redact_changes(ev.identity_map)
        return
    if t is AttributeEvent:
        if ev.attr is not None and redacts(ev.attr):
            ev.value = ev.old = REDACTED
        elif type(ev.value) in _STRUCTURES or type(ev.old) in _STRUCTURES:
            ev.value, ev.old = redact_keys(ev.value), redact_keys(ev.old)
        return
    if t is InspectorEvent:
        return
    if ev.site is not None:
        ev.site = callsite.describe(ev.site)
    if t is SQLEvent:
        if ev.parameters is not None:
            ev.parameters = _params(ev.parameters)
    elif t is FlushEvent:
        _redact_changes(ev.dirty)


def _strip(ev: Event) -> None:
    """What is left of an event whose finishing failed: encodable for sure, and nothing unredacted."""
    for name in ("parameters", "value", "old", "new", "dirty", "deleted", "identity_map", "ikeys", "modified"):
        if hasattr(ev, name):
            setattr(ev, name, None)
    if hasattr(ev, "site") and type(ev.site) is not str:
        ev.site = None


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
        self.was_running = False
        self._reported_drops = 0
        self._reported_errors = 0
        self.members: dict[str, Membership] = {}  # session id -> its identity map, as events tell

    # lifecycle
    def paused(self) -> Any:
        """``with dispatcher.paused():`` nothing is drained meanwhile (what is queued stays queued)."""
        return self._lock

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
        self.pump(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.pump()

    def after_fork_in_child(self) -> None:
        """Reset; ``orm_inspector`` restarts the thread once the recorders have their child files."""
        self.was_running = self._thread is not None
        self._lock = threading.Lock()
        self._thread = None
        self.seq = 0
        self._reported_drops = self._reported_errors = 0
        self.members = {}

    # work
    def pump(self, final: bool = False) -> None:
        """Move what the hooks queued on to the signals. ``final``: recording stops, so settle what
        is pending (evictions are confirmed at once)."""
        # A bounded wait: at interpreter exit our daemon thread may be frozen inside a pump, lock held.
        if not self._lock.acquire(timeout=5):
            return
        try:
            self._pump(final)
        except Exception as exc:  # noqa: BLE001 - the inspector's thread must live on
            runtime.record_error("dispatcher", exc)
        finally:
            self._lock.release()

    def _pump(self, final: bool) -> None:
        runtime.want.refresh()  # a receiver gone since the last pump: its families stop being built
        read_at = time.time()
        live = self._live_sessions() if runtime.enabled else []
        deleted_now = self._read_deleted(live)
        modified_now = self._read_modified(live, final)
        drained = self._drain()
        try:
            batch = self._process(drained)
            if deleted_now:
                batch = self._merge_deleted(batch, deleted_now, read_at)
            if modified_now:
                batch = self._merge_modified(batch, modified_now, read_at)
            if final:  # no next time to look at the sessions a flush made it skip: look after it
                batch = self._merge_modified(batch, self._read_modified(live, final, settled=True), time.time(),
                                             after=True)
            if live:
                batch += self._evictions(live, final)
        except Exception as exc:  # noqa: BLE001 - what was drained still goes out
            runtime.record_error("dispatcher", exc)
            batch = drained
            for ev in batch:
                if type(ev) is LifecycleEvent:
                    ev.ikey = None
                elif type(ev) is not InspectorEvent:
                    _strip(ev)  # maybe unfinished: raw parameters and values must not go out
        # Drop our references to the app's sessions before the (slower) sending: a session the app
        # lets go meanwhile must not be finalized on this thread.
        del live, deleted_now, modified_now
        if not batch:
            return
        seq = self.seq
        for ev in batch:
            seq += 1
            ev.seq = seq
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

    def _process(self, batch: list[Event]) -> list[Event]:
        """Follow identity maps through lifecycle events; finish the other events."""
        members, out = self.members, []
        append = out.append
        sid, m = None, None  # the last session's Membership: runs of events of one session are usual
        for ev in batch:
            t = type(ev)
            if t is LifecycleEvent:
                if ev.session is not sid or m is None:
                    sid = ev.session
                    m = members.get(sid)
                    if m is None:
                        m = members[sid] = Membership()
                evicted = m.apply(ev)
                ev.ikey = None
                if evicted is not None:
                    append(LifecycleEvent(ts=ev.ts, kind="gc_evicted", pid=ev.pid, thread="orm-inspector",
                                          session=ev.session, obj=evicted))
            elif t is AttributeEvent:  # the common finishing steps inline, _finish for the rest
                attr = ev.attr
                if attr is not None and redacts(attr):
                    ev.value = ev.old = REDACTED
                elif type(ev.value) in _STRUCTURES or type(ev.old) in _STRUCTURES:
                    ev.value, ev.old = redact_keys(ev.value), redact_keys(ev.old)
                if ev.session is not sid or m is None:
                    sid = ev.session
                    m = members.get(sid)
                    if m is None:
                        m = members[sid] = Membership()
                if ev.kind in _EDITS:
                    m.dirty.add(ev.obj.key)
                elif ev.attrs is None:  # expire or refresh of the whole object: its changes are gone
                    m.dirty.discard(ev.obj.key)
            else:
                if ev.kind == "session_close":  # close() empties the map: nothing left to follow
                    members.pop(ev.session, None)
                    sid, m = None, None
                elif t is SnapshotEvent:  # the map as SQLAlchemy holds it: follow it from here
                    if ev.identity_map is not None:  # (None: it could not be read)
                        members[ev.session] = Membership.of(ev)
                    sid, m = None, None
                elif ev.kind in _CLEANS and getattr(ev, "session", None) in members:
                    members[ev.session].dirty.clear()  # a flush writes, a commit or rollback expires, all
                try:
                    _finish(ev)
                except Exception as exc:  # noqa: BLE001 - lose a detail, never the event
                    runtime.record_error(f"finish {ev.kind}", exc)
                    _strip(ev)
            append(ev)
        return out

    def _live_sessions(self) -> list[tuple[Any, Any]]:
        live = []
        for session in live_sessions():
            t = tracks.get(session.hash_key)
            if t is not None and t.on:
                live.append((t, session))
        if len(self.members) > len(live):  # forget the sessions that are gone
            alive = {t.sid for t, _ in live}
            for sid in [sid for sid in self.members if sid not in alive]:
                del self.members[sid]
        return live

    def _evictions(self, live: list[tuple[Any, Any]], final: bool) -> list[Event]:
        out: list[Event] = []
        if not runtime.wanted(signals.lifecycle):
            return out
        now = time.time()
        for t, session in live:
            m = self.members.get(t.sid)
            if m is None:
                continue
            for r in m.sweep(session.identity_map, now, final):
                out.append(LifecycleEvent(ts=now, kind="gc_evicted", pid=runtime.pid, thread="orm-inspector",
                                          session=t.sid, obj=r))
        return out

    def _read_deleted(self, live: list[tuple[Any, Any]]) -> dict[Any, dict[str, Any]]:
        """Sessions whose ``deleted`` set differs from what we last saw: track -> {key: state}."""
        changed = {}
        for t, session in live:
            deleted = session._deleted
            if not deleted and not t.deleted:
                continue  # the common case: O(1)
            now = {ref(st).key: st for st in list(deleted)}
            if now.keys() != t.deleted.keys():
                changed[t] = now
        return changed

    def _read_modified(self, live: list[tuple[Any, Any]], final: bool,
                       settled: bool = False) -> list[tuple[str, list[Any]]]:
        """Sessions whose identity map counts more modified objects than the stream has told of:
        (session id, the states modified now). O(1) for the others, nearly always all of them.
        ``settled``: leave out a session flushing right now (it empties the set when done)."""
        out = []
        for t, session in live:
            if settled and session._flushing:
                continue
            modified = session.identity_map._modified
            m = self.members.get(t.sid)
            if modified and (final or len(modified) > (len(m.dirty) if m is not None else 0)):
                out.append((t.sid, list(modified)))  # list() copies at once, safe against the app's thread
        return out

    def _merge_modified(self, batch: list[Event], modified_now: list[tuple[str, list[Any]]],
                        read_at: float, after: bool = False) -> list[Event]:
        """A ``modified`` event for each object modified without an event (``flag_dirty()``).
        ``after``: read after the batch's events were followed, so none of them can explain it."""
        if not runtime.wanted(signals.attribute):
            return batch
        # A flush, commit or rollback in this batch may have written what was read: look again next time.
        busy = set() if after else {ev.session for ev in batch
                                    if ev.kind in _CLEANS and type(ev) in (FlushEvent, SessionEvent)}
        found: list[Event] = []
        for sid, states in modified_now:
            m = self.members.get(sid)
            if sid in busy or m is None:
                continue
            for st in states:
                if st.key is None or st.session_id is None:
                    continue
                r = ref(st)
                if r.key not in m.dirty:
                    m.dirty.add(r.key)
                    found.append(AttributeEvent(ts=read_at, kind="modified", pid=runtime.pid, thread="orm-inspector",
                                                session=sid, obj=r))
        if not found:
            return batch
        at = len(batch)  # they happened before read_at: before the events that came later
        while at > 0 and batch[at - 1].ts > read_at:
            at -= 1
        return batch[:at] + found + batch[at:]

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
        if not marks or not runtime.wanted(signals.lifecycle):
            return batch
        # The marks happened before read_at: put them before the events that came later.
        at = len(batch)
        while at > 0 and batch[at - 1].ts > read_at:
            at -= 1
        return batch[:at] + marks + batch[at:]

    def _send(self, batch: list[Event]) -> None:
        if signals.events.receivers:
            self._send_to(signals.events, "all", batch)
        for family, signal in signals.BY_FAMILY.items():
            if signal.receivers:
                share = [ev for ev in batch if FAMILIES[type(ev)] == family]
                if share:
                    self._send_to(signal, family, share)

    def _send_to(self, signal: Any, sender: str, events: list[Event]) -> None:
        for receiver in list(signal.receivers_for(sender)):
            try:
                receiver(sender, events=events)
            except Exception as exc:  # noqa: BLE001 - one bad receiver must not starve the others
                runtime.record_error(f"receiver {getattr(receiver, '__qualname__', receiver)!r}", exc)


dispatcher = Dispatcher()

os.register_at_fork(after_in_child=dispatcher.after_fork_in_child)
