"""What the ORM looks like at one point of a trace: a pure fold of events into state.

No I/O, no threads, no UI: ``State.apply(event)`` takes one event (a dict, as the trace reader gives
it) and updates the model; ``State.to_json()`` gives the contract's ``state --json`` form. The rules
follow SQLAlchemy's own bookkeeping, event by event:

- ``identity_map`` holds persistent objects: they enter with pending_to_persistent,
  loaded_as_persistent, detached_to_persistent and deleted_to_persistent, and leave with
  persistent_to_deleted, persistent_to_detached, persistent_to_transient and gc_evicted;
- ``new`` is the pending objects (transient_to_pending in, pending_to_persistent/pending_to_transient
  out);
- ``dirty`` is the persistent objects modified since their last flush (an attribute event), not marked
  for deletion, until a flush, an expiry or their leaving;
- ``deleted`` is the objects marked by ``Session.delete()`` and not yet flushed (deleted_mark in;
  flushed, detached, or restored out). Objects deleted by a flush and not yet committed are in
  ``flushed_deleted``, which SQLAlchemy's ``session.deleted`` does not hold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

INTO_MAP = {"pending_to_persistent", "loaded_as_persistent", "detached_to_persistent", "deleted_to_persistent"}
OUT_OF_MAP = {"persistent_to_deleted", "persistent_to_detached", "persistent_to_transient", "gc_evicted"}
EDITS = {"set", "append", "remove", "modified"}
CLOSED_SHOWN = 20  # closed sessions listed by to_json(), the most recent ones
RECENT_SQL = 20  # statements each session keeps (its SQL, in a snapshot that does not grow)
SQL_TEXT = 500  # characters of each
INSPECTOR_THREAD = "orm-inspector"  # events the inspector reports itself (gc_evicted, ...): not the app's


@dataclass
class ObjectState:
    cls: str
    identity: list[Any] | None
    key: str
    state: str = "transient"
    modified: set[str] = field(default_factory=set)
    expired: bool = False
    # attr -> [old, new], or {"added": [...], "removed": [...]} for a collection: the edits since the
    # last flush, as attribute events told them (cleared with ``modified``), and what the last flush
    # of this object wrote (from after_flush).
    changes: dict[str, Any] = field(default_factory=dict)
    flushed: dict[str, Any] = field(default_factory=dict)

    def ref(self) -> dict[str, Any]:
        return {"cls": self.cls, "identity": self.identity, "key": self.key}


@dataclass
class TransactionState:
    id: str
    origin: str
    parent: str | None = None
    connections: list[str] = field(default_factory=list)
    since: float | None = None


@dataclass
class SessionState:
    id: str
    closed: bool = False
    identity_map: dict[str, ObjectState] = field(default_factory=dict)
    new: dict[str, ObjectState] = field(default_factory=dict)
    # Keys in the order they joined (dicts as ordered sets): a screen lists them the same way every time.
    dirty: dict[str, None] = field(default_factory=dict)
    deleted: dict[str, None] = field(default_factory=dict)
    flushed_deleted: dict[str, ObjectState] = field(default_factory=dict)
    transactions: dict[str, TransactionState] = field(default_factory=dict)  # open ones, in order
    thread: str | None = None  # of its last event
    since: float | None = None  # its first event
    last: float | None = None  # its last event
    flushing: str | None = None  # the flush under way, from before_flush to after_flush_postexec
    flushes: int = 0
    statements: int = 0  # how many it ran; the last RECENT_SQL of them in recent_sql
    recent_sql: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_SQL))

    def objects(self) -> dict[str, ObjectState]:
        return {**self.identity_map, **self.new, **self.flushed_deleted}


@dataclass
class ConnectionState:
    id: str
    pool: str
    status: str = "idle"
    session: str | None = None
    checkouts: int = 0
    thread: str | None = None  # while checked out: who took it, since when, from where
    since: float | None = None
    site: str | None = None
    invalidations: int = 0


class State:
    """Sessions and pooled connections of one process, as of the last event applied."""

    def __init__(self) -> None:
        self.seq = 0
        self.sessions: dict[str, SessionState] = {}
        # Closed sessions hold nothing: kept as id -> seq of the close, so that a long trace's state
        # (and each time-travel snapshot of it) does not grow with every session the app ever used.
        self.closed_sessions: dict[str, int] = {}
        self.closed_earlier = 0  # closed before a snapshot this state started from (from_json)
        self.connections: dict[str, ConnectionState] = {}
        self.closed_connections = 0  # closed or detached: gone from ``connections``
        self.pools: dict[str, dict[str, Any]] = {}
        self.events = 0
        self.dropped = 0
        self.errors = 0

    # ---- folding -------------------------------------------------------------------------------
    def skip(self, seq: int, count: int) -> None:
        """``count`` events up to ``seq`` that change nothing here (see FOLDED_KINDS) went by."""
        self.seq = seq
        self.events += count

    def apply(self, e: dict[str, Any]) -> None:
        self.seq = e.get("seq", self.seq)
        self.events += 1
        kind = e["kind"]
        sid = e.get("session")
        if sid is not None and e.get("thread") != INSPECTOR_THREAD:
            s = self.sessions.get(sid)
            if s is not None:
                s.thread, s.last = e.get("thread"), e.get("ts")
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, e)
        elif kind in INTO_MAP or kind in OUT_OF_MAP or kind in _LIFECYCLE_OTHERS:
            self._lifecycle(kind, e)
        elif kind in EDITS:
            self._edit(e)

    def session(self, sid: str) -> SessionState:
        s = self.sessions.get(sid)
        if s is None:
            s = self.sessions[sid] = SessionState(sid)
            self.closed_sessions.pop(sid, None)  # a closed Session used again
        return s

    def _noted(self, s: SessionState, e: dict[str, Any]) -> None:
        """First and last activity of a session created by this event."""
        if s.since is None:
            s.since = e.get("ts")
        if e.get("thread") != INSPECTOR_THREAD:
            s.thread, s.last = e.get("thread"), e.get("ts")

    def _obj(self, s: SessionState, ref: dict[str, Any]) -> ObjectState:
        key = ref["key"]
        o = s.identity_map.get(key) or s.new.get(key) or s.flushed_deleted.get(key)
        if o is None:
            o = ObjectState(ref["cls"], ref.get("identity"), key)
        o.identity = ref.get("identity")
        return o

    def _lifecycle(self, kind: str, e: dict[str, Any]) -> None:
        if kind == "transient_to_pending" or kind in INTO_MAP:
            s = self.session(e["session"])
            s.closed = False  # a closed Session can be used again
            self._noted(s, e)
        else:  # leaving, or marked: of a session we know, else nothing to undo
            s = self.sessions.get(e["session"])
            if s is None:
                return
        o = self._obj(s, e["obj"])
        key = o.key
        if kind == "transient_to_pending":
            o.state = "pending"
            s.new[key] = o
        elif kind == "pending_to_transient":
            o.state = "transient"
            s.new.pop(key, None)
        elif kind in INTO_MAP:
            s.new.pop(key, None)
            s.flushed_deleted.pop(key, None)
            s.deleted.pop(key, None)
            o.state = "persistent"
            if kind == "loaded_as_persistent":
                o.expired = False
                o.modified.clear(), o.changes.clear()
            s.identity_map[key] = o
        elif kind in OUT_OF_MAP:
            s.identity_map.pop(key, None)
            s.dirty.pop(key, None)
            s.deleted.pop(key, None)
            o.modified.clear(), o.changes.clear()
            if kind == "persistent_to_deleted":
                o.state = "deleted"
                s.flushed_deleted[key] = o
            else:
                o.state = "transient" if kind == "persistent_to_transient" else "detached"
        elif kind == "deleted_to_detached":
            s.flushed_deleted.pop(key, None)
            s.deleted.pop(key, None)
            o.state = "detached"
        elif kind == "deleted_mark":
            if key in s.identity_map:
                s.deleted[key] = None  # session.dirty leaves it out while it is marked (see to_json)
        elif kind == "deleted_unmark":
            s.deleted.pop(key, None)

    def _edit(self, e: dict[str, Any]) -> None:
        s = self.session(e["session"]) if e.get("session") else None
        if s is None:
            return
        o = s.identity_map.get(e["obj"]["key"])
        if o is None:
            return
        attr = e.get("attr")
        if attr:
            o.modified.add(attr)
            _note_change(o.changes, e["kind"], attr, e)
        s.dirty[o.key] = None

    # ---- json ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The contract's ``state --json`` form (version 1), with this project's added fields."""
        sessions = []
        for s in self.sessions.values():
            txns = list(s.transactions.values())
            root = next((t for t in txns if t.origin != "nested"), None)
            sessions.append({
                "id": s.id,
                "closed": s.closed,
                "identity_map": [
                    {**o.ref(), "state": o.state, "modified": sorted(o.modified), "expired": o.expired,
                     **({"changes": o.changes} if o.changes else {}),
                     **({"flushed": o.flushed} if o.flushed else {})}
                    for o in s.identity_map.values()],
                "new": [o.ref() for o in s.new.values()],
                "dirty": [s.identity_map[k].ref() for k in s.identity_map if k in s.dirty and k not in s.deleted],
                "deleted": [s.identity_map[k].ref() for k in s.identity_map if k in s.deleted],
                "flushed_deleted": [o.ref() for o in s.flushed_deleted.values()],
                "transaction": None if root is None else {
                    "id": root.id,
                    "nested": [t.id for t in txns if t.origin == "nested"],
                    "connections": list(dict.fromkeys(c for t in txns for c in t.connections)),
                },
                "transactions": [{"id": t.id, "origin": t.origin, "parent": t.parent, "since": t.since,
                                  "connections": t.connections} for t in txns],
                "thread": s.thread, "since": s.since, "last": s.last, "flushing": s.flushing,
                "flushes": s.flushes, "statements": s.statements, "recent_sql": list(s.recent_sql),
            })
        recent = list(self.closed_sessions)[-CLOSED_SHOWN:]
        sessions += [{"id": sid, "closed": True, "identity_map": [], "new": [], "dirty": [], "deleted": [],
                      "flushed_deleted": [], "transaction": None, "closed_at": self.closed_sessions[sid]}
                     for sid in recent]
        return {
            "seq": self.seq,
            "sessions": sessions,
            "connections": [{"id": c.id, "pool": c.pool, "status": c.status, "session": c.session,
                             "checkouts": c.checkouts, "thread": c.thread, "since": c.since, "site": c.site,
                             "invalidations": c.invalidations}
                            for c in self.connections.values()],
            "pools": self.pools,
            "counters": {"events": self.events, "dropped": self.dropped, "inspector_errors": self.errors,
                         "closed_sessions": len(self.closed_sessions) + self.closed_earlier,
                         "closed_connections": self.closed_connections},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        """The state that ``to_json()`` gave: how a live viewer starts from the server's snapshot.
        Closed sessions beyond the listed ones come back as a count only."""
        st = cls()
        st.seq = data.get("seq", 0)
        for sj in data.get("sessions", ()):
            if sj.get("closed") and not sj.get("transaction") and "closed_at" in sj:
                st.closed_sessions[sj["id"]] = sj["closed_at"]
                continue
            s = st.sessions[sj["id"]] = SessionState(sj["id"], closed=sj.get("closed", False))
            for name in ("thread", "since", "last", "flushing", "flushes", "statements"):
                if sj.get(name) is not None:
                    setattr(s, name, sj[name])
            s.recent_sql.extend(sj.get("recent_sql") or ())
            for oj in sj.get("identity_map", ()):
                s.identity_map[oj["key"]] = ObjectState(
                    oj["cls"], oj.get("identity"), oj["key"], oj.get("state", "persistent"),
                    set(oj.get("modified", ())), oj.get("expired", False), dict(oj.get("changes") or {}),
                    dict(oj.get("flushed") or {}))
            for oj in sj.get("new", ()):
                s.new[oj["key"]] = ObjectState(oj["cls"], oj.get("identity"), oj["key"], "pending")
            for oj in sj.get("flushed_deleted", ()):
                s.flushed_deleted[oj["key"]] = ObjectState(oj["cls"], oj.get("identity"), oj["key"], "deleted")
            s.dirty = dict.fromkeys(oj["key"] for oj in sj.get("dirty", ()))
            s.deleted = dict.fromkeys(oj["key"] for oj in sj.get("deleted", ()))
            for tj in sj.get("transactions", ()):
                s.transactions[tj["id"]] = TransactionState(tj["id"], tj.get("origin", "begin"), tj.get("parent"),
                                                            list(tj.get("connections", ())), tj.get("since"))
        for cj in data.get("connections", ()):
            st.connections[cj["id"]] = ConnectionState(
                cj["id"], cj.get("pool", "?"), cj.get("status", "idle"), cj.get("session"), cj.get("checkouts", 0),
                cj.get("thread"), cj.get("since"), cj.get("site"), cj.get("invalidations", 0))
        st.pools = {k: dict(v) for k, v in (data.get("pools") or {}).items()}
        counters = data.get("counters") or {}
        st.events = counters.get("events", 0)
        st.dropped = counters.get("dropped", 0)
        st.errors = counters.get("inspector_errors", 0)
        st.closed_connections = counters.get("closed_connections", 0)
        st.closed_earlier = max(0, counters.get("closed_sessions", 0) - len(st.closed_sessions))
        return st


def _note_change(changes: dict[str, Any], kind: str, attr: str, e: dict[str, Any]) -> None:
    """Fold one attribute event into the object's changes since its last flush: a scalar keeps its
    first old value and its last new one; a collection keeps what was added and removed."""
    if kind == "set":
        before = changes.get(attr)
        old = before[0] if isinstance(before, list) else e.get("old")
        changes[attr] = [old, e.get("value")]
    elif kind in ("append", "remove"):
        entry = changes.get(attr)
        if not isinstance(entry, dict):
            entry = changes[attr] = {"added": [], "removed": []}
        value = e.get("value")
        undo, do = ("removed", "added") if kind == "append" else ("added", "removed")
        if value in entry[undo]:
            entry[undo].remove(value)  # appended then removed again (or back): no change
        else:
            entry[do].append(value)


_LIFECYCLE_OTHERS = {"transient_to_pending", "pending_to_transient", "deleted_to_detached", "deleted_mark",
                     "deleted_unmark"}


# ---- session-level events ------------------------------------------------------------------------
def _txn_create(st: State, e: dict[str, Any]) -> None:
    s = st.session(e["session"])
    s.closed = False
    st._noted(s, e)
    s.transactions[e["transaction"]] = TransactionState(e["transaction"], e.get("origin", "begin"), e.get("parent"),
                                                        since=e.get("ts"))


def _txn_end(st: State, e: dict[str, Any]) -> None:
    sid = e["session"]
    s = st.sessions.get(sid)
    if s is None:
        return
    s.transactions.pop(e.get("transaction"), None)
    s.flushing = None  # a flush that failed ends with no after_flush_postexec: its transaction's end ends it
    if s.closed and not s.transactions:  # the end of a close
        del st.sessions[sid]
        st.closed_sessions[sid] = st.seq


def _after_begin(st: State, e: dict[str, Any]) -> None:
    s = st.session(e["session"])
    t = s.transactions.get(e.get("transaction"))
    conn = e.get("connection")
    if t is not None and conn and conn not in t.connections:
        t.connections.append(conn)
    c = st.connections.get(conn) if conn else None
    if c is not None:
        c.session = s.id


def _after_rollback(st: State, e: dict[str, Any]) -> None:
    s = st.sessions.get(e["session"])
    if s is not None:
        s.flushing = None  # a failed flush rolls back: it is over
    _expire_all(st, e)


def _soft_rollback(st: State, e: dict[str, Any]) -> None:
    s = st.sessions.get(e["session"])
    if s is not None:
        s.flushing = None


def _expire_all(st: State, e: dict[str, Any]) -> None:
    if e.get("expire_all"):
        s = st.session(e["session"])
        for o in s.identity_map.values():
            o.expired = True
            o.modified.clear(), o.changes.clear()
        s.dirty.clear()


def _before_flush(st: State, e: dict[str, Any]) -> None:
    # A flush with nothing to do fires before_flush and nothing after: it never starts flushing.
    if e.get("new") or e.get("dirty") or e.get("deleted"):
        st.session(e["session"]).flushing = e.get("flush")


def _after_flush(st: State, e: dict[str, Any]) -> None:
    s = st.session(e["session"])
    s.flushes += 1
    for ref in e.get("dirty") or ():
        o = s.identity_map.get(ref["key"])
        if o is not None:
            o.modified.clear(), o.changes.clear()
            o.flushed = ref.get("changes") or {}
        s.dirty.pop(ref["key"], None)


def _after_flush_postexec(st: State, e: dict[str, Any]) -> None:
    s = st.sessions.get(e["session"])
    if s is not None:
        s.flushing = None


def _statement(st: State, e: dict[str, Any]) -> None:
    s = st.sessions.get(e.get("session"))
    if s is not None:
        s.statements += 1
        s.recent_sql.append({"seq": e.get("seq"), "statement": (e.get("statement") or "")[:SQL_TEXT],
                             "cause": (e.get("cause") or {}).get("kind"), "transaction": e.get("transaction")})


def _expire(st: State, e: dict[str, Any]) -> None:
    s = st.session(e["session"]) if e.get("session") else None
    o = s.identity_map.get(e["obj"]["key"]) if s else None
    if o is None:
        return
    attrs = e.get("attrs")
    if attrs is None:  # the whole object: its changes are gone, it is no longer modified
        o.expired = True
        o.modified.clear(), o.changes.clear()
        s.dirty.pop(o.key, None)
    else:  # some attributes: their changes are gone, but SQLAlchemy still counts the object modified
        o.modified.difference_update(attrs)
        for attr in attrs:
            o.changes.pop(attr, None)


def _refresh(st: State, e: dict[str, Any]) -> None:
    s = st.session(e["session"]) if e.get("session") else None
    o = s.identity_map.get(e["obj"]["key"]) if s else None
    if o is None:
        return
    o.expired = False  # loaded again: SQLAlchemy's "expired" (the whole object) is over
    attrs = e.get("attrs")
    if attrs is None:  # loaded from a row as a whole (populate_existing): unmodified
        o.modified.clear(), o.changes.clear()
        s.dirty.pop(o.key, None)
    else:
        o.modified.difference_update(attrs)
        for attr in attrs:
            o.changes.pop(attr, None)


def _identity_changed(st: State, e: dict[str, Any]) -> None:
    """A flush changed its primary key: the same object, under its new identity."""
    s = st.sessions.get(e.get("session"))
    ref = e.get("obj") or {}
    o = s.identity_map.get(ref.get("key")) if s else None
    if o is not None:
        o.identity = ref.get("identity")


def _session_snapshot(st: State, e: dict[str, Any]) -> None:
    """A session in use before the recording began, as SQLAlchemy held it then: it replaces what
    the events so far have told of it."""
    if e.get("identity_map") is None:  # it could not be read: it says nothing
        return
    sid = e["session"]
    st.closed_sessions.pop(sid, None)
    known = st.sessions.get(sid)
    s = st.sessions[sid] = SessionState(sid, since=e.get("ts"))
    if known is not None:  # what the snapshot does not say: its history, kept
        s.since, s.thread, s.last, s.flushes = known.since, known.thread, known.last, known.flushes
        s.statements, s.recent_sql, s.flushed_deleted = known.statements, known.recent_sql, known.flushed_deleted
    expired = set(e.get("expired") or ())
    for ref in e.get("identity_map") or ():
        changes = dict(ref.get("changes") or {})
        s.identity_map[ref["key"]] = ObjectState(ref["cls"], ref.get("identity"), ref["key"], "persistent",
                                                 set(changes), ref["key"] in expired, changes)
    for ref in e.get("new") or ():
        s.new[ref["key"]] = ObjectState(ref["cls"], ref.get("identity"), ref["key"], "pending")
    s.dirty = dict.fromkeys(e.get("dirty") or ())
    s.deleted = dict.fromkeys(e.get("deleted") or ())
    for tj in e.get("transactions") or ():
        s.transactions[tj["id"]] = TransactionState(tj["id"], tj.get("origin", "begin"), tj.get("parent"),
                                                    list(tj.get("connections") or ()), e.get("ts"))


def _session_gone(st: State, e: dict[str, Any]) -> None:
    """Garbage-collected: whatever it held (objects, an open transaction) is gone with it."""
    sid = e["session"]
    if st.sessions.pop(sid, None) is not None:
        st.closed_sessions[sid] = st.seq


def _session_close(st: State, e: dict[str, Any]) -> None:
    # close() empties the session (expunge_all); objects it still held are detached by the events
    # around this one, and those garbage-collected unnoticed are gone with it.
    sid = e["session"]
    s = st.sessions.pop(sid, None)
    if s is not None and s.transactions:  # with a transaction open, its end comes after: keep it
        s.closed = True
        s.identity_map.clear(), s.new.clear(), s.flushed_deleted.clear(), s.dirty.clear(), s.deleted.clear()
        st.sessions[sid] = s
        return
    st.closed_sessions[sid] = st.seq


# ---- pool ------------------------------------------------------------------------------------------
def _conn(st: State, e: dict[str, Any]) -> ConnectionState | None:
    cid = e.get("connection")
    if not cid:
        return None
    c = st.connections.get(cid)
    if c is None:
        c = st.connections[cid] = ConnectionState(cid, e.get("pool", "?"))
    return c


def _pool_event(status: str | None, holder_cleared: bool = False):
    def handler(st: State, e: dict[str, Any]) -> None:
        c = _conn(st, e)
        if c is None:
            return
        if status is not None and not (status == "idle" and c.status == "invalidated"):
            c.status = status  # an invalidated connection checked in stays invalidated
        if holder_cleared:
            c.session = c.thread = c.since = c.site = None
        if e["kind"] == "invalidate":
            c.invalidations += 1
        if e["kind"] == "checkout":
            c.checkouts += 1
            c.thread, c.since, c.site = e.get("thread"), e.get("ts"), e.get("site")

    return handler


def _gone(st: State, e: dict[str, Any]) -> None:
    """The DBAPI connection was closed, or left the pool (detach): no longer the pool's."""
    if st.connections.pop(e.get("connection"), None) is not None:
        st.closed_connections += 1


def _pool_info(st: State, e: dict[str, Any]) -> None:
    st.pools[e["pool"]] = dict(e.get("info") or {})


def _dropped(st: State, e: dict[str, Any]) -> None:
    st.dropped += e.get("count") or 0


def _error(st: State, e: dict[str, Any]) -> None:
    st.errors += 1


_HANDLERS = {
    "after_transaction_create": _txn_create,
    "after_transaction_end": _txn_end,
    "after_begin": _after_begin,
    "after_commit": _expire_all,
    "after_rollback": _after_rollback,
    "after_soft_rollback": _soft_rollback,
    "before_flush": _before_flush,
    "after_flush": _after_flush,
    "after_flush_postexec": _after_flush_postexec,
    "before_cursor_execute": _statement,
    "expire": _expire,
    "refresh": _refresh,
    "session_close": _session_close,
    "session_snapshot": _session_snapshot,
    "identity_changed": _identity_changed,
    "session_gone": _session_gone,
    "pool_info": _pool_info,
    "connect": _pool_event("idle"),
    "checkout": _pool_event("checked_out"),
    "checkin": _pool_event("idle", holder_cleared=True),
    "invalidate": _pool_event("invalidated", holder_cleared=True),
    "close": _gone,
    "detach": _gone,
    "dropped": _dropped,
    "inspector_error": _error,
}


#: Every kind the fold does something with: other events (statements, most of a stream) only move seq.
FOLDED_KINDS = frozenset(_HANDLERS) | INTO_MAP | OUT_OF_MAP | _LIFECYCLE_OTHERS | EDITS


def fold(events, upto: int | None = None) -> State:
    """The state just after event ``upto`` (default: the end)."""
    state = State()
    for e in events:
        if upto is not None and e.get("seq", 0) > upto:
            break
        state.apply(e)
    return state
