"""Hooks on Session, object lifecycle, attribute and instance events.

Each listener reads only SQLAlchemy's bookkeeping (``InstanceState``, ``SessionTransaction``,
``committed_state`` and ``state.dict``) and hands a small event to the inspector's thread. Per session
it keeps a ``Track``: what it needs to name the cause of the next statements (the flush in progress,
a commit under way) without asking the Session anything that could change it.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.orm.base import NO_VALUE, instance_state

from ..events import AttributeEvent, FlushEvent, LifecycleEvent, ObjRef, SessionEvent, SnapshotEvent
from . import callsite, runtime
from .runtime import emit, now, record_error, shield, thread_name, want
from .values import capture, changed_ref, ref

# The hottest listeners (lifecycle, attach, attribute edits) fire once per object or per edit: each is
# one plain function that checks the switch, catches everything itself (what ``shield`` does, without
# a second frame) and hands its event over inline (what ``emit`` does, without a call).
_queue = runtime.queue
_append = _queue.append

SESSION_ATTR = "_orm_inspector_session"
SITE_ATTR = "_orm_inspector_site"

LIFECYCLE = (
    "transient_to_pending",
    "pending_to_transient",
    "persistent_to_transient",
    "pending_to_persistent",
    "detached_to_persistent",
    "loaded_as_persistent",
    "persistent_to_deleted",
    "deleted_to_persistent",
    "deleted_to_detached",
    "persistent_to_detached",
)
# Transitions out of the session: Session.close() fires one per object (and nothing else when no
# transaction is open), so the first of them per identity map tells us about the close.
_TO_DETACHED = {"deleted_to_detached", "persistent_to_detached", "persistent_to_transient", "pending_to_transient"}


class Track:
    """What the hooks remember about one Session between its events (app thread only)."""

    __slots__ = ("sid", "on", "generation", "root", "flush", "in_flush", "flush_cause", "flush_site", "committing",
                 "bulk_expire", "detach_map", "deleted", "rekeyed", "__weakref__")

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.on = True  # inside the scope of instrument()
        self.generation = -1
        self.root: str | None = None  # id of the open root transaction
        self.flush: str | None = None  # id of the last flush begun
        # Inside the flush's own subtransaction: its statements belong to it. (before_flush also fires
        # for a flush that finds nothing to do, which then ends without any other event.)
        self.in_flush = 0
        self.flush_cause = "flush"
        self.flush_site: Any = None
        self.committing = False
        self.bulk_expire = False  # commit/rollback expiring everything: one event says it all
        self.rekeyed: list[Any] | None = None  # states whose primary key this flush changes (rare)
        # The identity map at the last detach (weakly): close() and expunge_all() replace the map
        # before they detach anything, so a new map means a new run of detaches, worth one stack walk.
        self.detach_map: Any = None
        self.deleted: dict[str, ObjRef] = {}  # inspector thread: last seen session._deleted


tracks: dict[int, Track] = {}


def track(session: Any) -> Track:
    t = tracks.get(session.hash_key)
    if t is None or t.generation != runtime.scope_generation:
        return _new_track(session)
    return t


def _new_track(session: Any) -> Track:
    key = session.hash_key
    t = tracks.get(key)
    if t is None:
        t = tracks[key] = Track(f"s{key}")
        weakref.finalize(session, _gone, key)
    if t.generation != runtime.scope_generation:
        t.generation = runtime.scope_generation
        t.on = runtime.scope is None or runtime.scope.covers_session(session)
    return t



# ---- session and transaction events -----------------------------------------------------------
_ORIGINS: dict[int, str] = {}  # id(SessionTransactionOrigin member, they live for good) -> our name


def _gone(key: int) -> None:
    """The Session was garbage-collected (maybe never closed): its objects and transaction go with it.
    Runs wherever the collection happens: append only."""
    t = tracks.pop(key, None)
    if t is not None and t.on and runtime.enabled and want.session:
        emit(SessionEvent(ts=now(), kind="session_gone", pid=runtime.pid, thread=thread_name(), session=t.sid))


def _txn_origin(transaction: Any) -> str:
    origin = getattr(transaction, "origin", None)
    if origin is None:  # SQLAlchemy releases without SessionTransaction.origin
        return "nested" if transaction.nested else ("begin" if transaction._parent is None else "subtransaction")
    name = _ORIGINS.get(id(origin))  # by id: an Enum member's hash is a Python-level call
    if name is None:
        name = _ORIGINS[id(origin)] = "nested" if origin.name == "BEGIN_NESTED" else origin.name.lower()
    return name


@shield("after_transaction_create")
def after_transaction_create(session: Any, transaction: Any) -> None:
    origin = _txn_origin(transaction)
    t = track(session)
    if origin == "subtransaction":  # the flush's internal transaction: folded into its flush
        t.in_flush += 1
        return
    if not t.on:
        return
    tid = runtime.id_of(transaction, "t")
    parent = transaction.parent
    if parent is None:
        t.root = tid
    if want.session:
        emit(SessionEvent(ts=now(), kind="after_transaction_create", pid=runtime.pid, thread=thread_name(), session=t.sid, transaction=tid,
                          parent=runtime.id_of(parent, "t") if parent is not None else None, origin=origin))


@shield("after_transaction_end")
def after_transaction_end(session: Any, transaction: Any) -> None:
    t = track(session)
    if _txn_origin(transaction) == "subtransaction":
        t.in_flush = max(0, t.in_flush - 1)
        return
    if not t.on:
        return
    tid = runtime.id_of(transaction, "t")
    root = transaction.parent is None
    if want.session:
        emit(SessionEvent(ts=now(), kind="after_transaction_end", pid=runtime.pid, thread=thread_name(), session=t.sid, transaction=tid))
    if root:
        t.root = None
        t.committing = t.bulk_expire = False
        t.flush, t.in_flush = None, 0
        if want.session and callsite.marker() == "close":
            _emit_close(t, callsite.walk()[0])
        for conn, *_ in set(transaction._connections.values()):
            conn.__dict__.pop(SESSION_ATTR, None)


def _emit_close(t: Track, site: Any) -> None:
    if want.session:
        emit(SessionEvent(ts=now(), kind="session_close", pid=runtime.pid, thread=thread_name(), session=t.sid, site=site))


@shield("after_begin")
def after_begin(session: Any, transaction: Any, connection: Any) -> None:
    t = track(session)
    if not t.on:
        return
    connection.__dict__[SESSION_ATTR] = t
    if want.session:
        rec = getattr(connection._dbapi_connection, "_connection_record", None)
        emit(SessionEvent(ts=now(), kind="after_begin", pid=runtime.pid, thread=thread_name(), session=t.sid,
                          transaction=runtime.id_of(transaction, "t"),
                          connection=runtime.id_of(rec, "c") if rec is not None else None,
                          site=rec.__dict__.get(SITE_ATTR) if rec is not None else None))  # the checkout's


def _current(session: Any) -> str | None:
    """The id of the session's innermost transaction: the one a commit or rollback is about."""
    txn = session._transaction
    while txn is not None and _txn_origin(txn) == "subtransaction":
        txn = txn._parent
    return runtime.id_of(txn, "t") if txn is not None else None


def _root_transaction(session: Any) -> bool:
    txn = session._transaction
    return txn is not None and txn._parent is None


@shield("before_commit")
def before_commit(session: Any) -> None:
    t = track(session)
    if not t.on:
        return
    t.committing = True
    # the flush of the commit, if any, happens here too: its events and statements reuse this
    t.flush_site = callsite.walk()[0] if _flush_watched() or want.session else None
    if want.session:
        emit(SessionEvent(ts=now(), kind="before_commit", pid=runtime.pid, thread=thread_name(), session=t.sid,
                          transaction=_current(session), site=t.flush_site))


@shield("after_commit")
def after_commit(session: Any) -> None:
    t = track(session)
    if not t.on:
        return
    t.committing = False
    # A root commit with expire_on_commit expires every object next: this event says so once,
    # instead of one "expire" event per object in the identity map.
    t.bulk_expire = bool(session.expire_on_commit and _root_transaction(session))
    if want.session:
        emit(SessionEvent(ts=now(), kind="after_commit", pid=runtime.pid, thread=thread_name(), session=t.sid,
                          transaction=_current(session),
                          expire_all=t.bulk_expire))


@shield("after_rollback")
def after_rollback(session: Any) -> None:
    t = track(session)
    if not t.on:
        return
    t.committing = False
    t.flush = None
    t.bulk_expire = _root_transaction(session)  # a root rollback expires everything, as a commit does
    if want.session:
        emit(SessionEvent(ts=now(), kind="after_rollback", pid=runtime.pid, thread=thread_name(), session=t.sid,
                          transaction=_current(session),
                          expire_all=t.bulk_expire))


@shield("after_soft_rollback")
def after_soft_rollback(session: Any, previous_transaction: Any) -> None:
    if _txn_origin(previous_transaction) == "subtransaction":
        return  # folded into its flush, as its create and end are
    t = track(session)
    if not t.on:
        return
    t.bulk_expire = False
    if want.session:
        emit(SessionEvent(ts=now(), kind="after_soft_rollback", pid=runtime.pid, thread=thread_name(), session=t.sid,
                          transaction=runtime.id_of(previous_transaction, "t")))


def _attach(kind: str):
    def listener(session: Any, instance: Any) -> None:
        if runtime.enabled and want.session:
            try:
                t = track(session)
                if t.on:
                    # the state attribute SQLAlchemy itself reads at every step: no user code runs here
                    ev = SessionEvent(ts=now(), kind=kind, pid=runtime.pid, thread=thread_name(), session=t.sid,
                                      obj=ref(instance_state(instance)))
                    if len(_queue) < runtime.max_queue:
                        _append(ev)
                    else:
                        runtime.drop()
            except Exception as exc:  # noqa: BLE001 - the app must never see our failure
                record_error(kind, exc)

    listener.__name__ = listener.__qualname__ = f"orm_inspector_{kind}"
    return listener


# ---- object lifecycle ---------------------------------------------------------------------------
def _left_session(t: Track, session: Any) -> None:
    current = session.identity_map
    if t.detach_map is None or t.detach_map() is not current:  # the first of a run of detaches
        t.detach_map = weakref.ref(current)
        if t.root is None and want.session and callsite.marker() == "close":
            _emit_close(t, callsite.walk()[0])  # with a transaction open, its end reports the close


def _lifecycle(kind: str):
    to_detached = kind in _TO_DETACHED

    def listener(session: Any, state: Any) -> None:
        if runtime.enabled:
            try:
                t = tracks.get(session.hash_key)
                if t is None or t.generation != runtime.scope_generation:
                    t = _new_track(session)
                if not t.on:
                    return
                if to_detached:
                    _left_session(t, session)
                if want.lifecycle:
                    ev = LifecycleEvent(ts=now(), kind=kind, pid=runtime.pid, thread=thread_name(), session=t.sid,
                                        obj=ref(state), ikey=state.key)
                    if len(_queue) < runtime.max_queue:
                        _append(ev)
                    else:
                        runtime.drop()
            except Exception as exc:  # noqa: BLE001 - the app must never see our failure
                record_error(kind, exc)

    listener.__name__ = listener.__qualname__ = f"orm_inspector_{kind}"
    return listener


# ---- unit of work ---------------------------------------------------------------------------------
def _collection_delta(old: Any, new: Any) -> dict[str, list[Any]]:
    def members(c: Any) -> dict[int, Any]:
        if c is NO_VALUE or c is None or isinstance(c, str):
            return {}
        items = c.values() if isinstance(c, dict) else c
        return {id(v): v for v in items}

    before, after = members(old), members(new)
    return {"added": [capture(v) for k, v in after.items() if k not in before],
            "removed": [capture(v) for k, v in before.items() if k not in after]}


def changes(state: Any) -> dict[str, Any]:
    """Old and new value of each attribute changed since the last flush: O(changed attributes)."""
    d, manager, out = state.dict, state.manager, {}
    for key, old in state.committed_state.items():
        attr = manager.get(key)
        if attr is None:
            continue
        if attr.impl.collection:
            out[key] = _collection_delta(old, d.get(key, NO_VALUE))
        elif getattr(attr.impl, "dynamic", False):  # write-only or dynamic: SQLAlchemy's own history
            out[key] = {"added": [capture(v) for v in old.added_items],
                        "removed": [capture(v) for v in old.deleted_items]}
        else:
            out[key] = [capture(old), capture(d.get(key, NO_VALUE))]
    return out




def _flush_watched() -> bool:
    """The flush's cause and site are read by flush events and by its statements' events."""
    return want.flush or want.sql


@shield("before_flush")
def before_flush(session: Any, flush_context: Any, instances: Any) -> None:
    t = track(session)
    if not t.on:
        return
    t.flush = runtime.new_id("f")
    if t.committing:
        t.flush_cause, site = "commit", t.flush_site
    elif not _flush_watched():
        t.flush_cause, site = "flush", None  # nobody will read the cause: no stack walk
    else:
        site, marker = callsite.walk()
        t.flush_cause = "autoflush" if marker and marker[0] == "autoflush" else "flush"
        t.flush_site = site
    if want.flush:
        deleted = session._deleted
        emit(FlushEvent(ts=now(), kind="before_flush", pid=runtime.pid, thread=thread_name(), session=t.sid, flush=t.flush, cause=t.flush_cause,
                        transaction=t.root, site=site,
                        new=[ref(s) for s in session._new],
                        dirty=[ref(s) for s in session.identity_map._modified if s not in deleted],
                        deleted=[ref(s) for s in deleted]))


@shield("after_flush")
def after_flush(session: Any, flush_context: Any) -> None:
    t = track(session)
    if not t.on:
        return
    if not want.flush:
        return
    new, dirty, deleted = [], [], []
    for state, (isdelete, listonly) in flush_context.states.items():
        if listonly:
            continue
        if isdelete:
            deleted.append(ref(state))
        elif state.key is None:
            new.append(ref(state))  # its values are in the INSERT's parameters
        else:
            changed = changes(state)
            dirty.append(changed_ref(state, changed))
            if changed and not changed.keys().isdisjoint(_primary_key_attrs(state)):
                (t.rekeyed if t.rekeyed is not None else _rekeyed(t)).append(state)
    emit(FlushEvent(ts=now(), kind="after_flush", pid=runtime.pid, thread=thread_name(), session=t.sid, flush=t.flush or "?", cause=t.flush_cause,
                    transaction=t.root, new=new, dirty=dirty, deleted=deleted))


@shield("after_flush_postexec")
def after_flush_postexec(session: Any, flush_context: Any) -> None:
    t = track(session)
    if not t.on:
        return
    if want.flush:
        emit(FlushEvent(ts=now(), kind="after_flush_postexec", pid=runtime.pid, thread=thread_name(), session=t.sid, flush=t.flush or "?",
                        cause=t.flush_cause, transaction=t.root))
    t.flush = None
    if t.rekeyed:  # the flush has put them under their new identity in the identity map: say so
        for state in t.rekeyed:
            if state.key is not None and want.lifecycle:
                emit(LifecycleEvent(ts=now(), kind="identity_changed", pid=runtime.pid, thread=thread_name(),
                                    session=t.sid, obj=ref(state), ikey=state.key))
    t.rekeyed = None


def _rekeyed(t: Track) -> list[Any]:
    t.rekeyed = []
    return t.rekeyed


def _primary_key_attrs(state: Any) -> Any:
    """The attribute names of the mapper's primary key columns (a set SQLAlchemy keeps)."""
    return getattr(state.mapper, "_primary_key_propkeys", ())


# ---- sessions already in use when capture begins ----------------------------------------------------
def live_sessions() -> list[Any]:
    """Every Session alive in the process. list() of the underlying dict copies it at once: iterating
    the WeakValueDictionary itself runs Python code that a thread creating a Session can interrupt."""
    from sqlalchemy.orm import session as sa_session

    return [s for s in (r() for r in list(sa_session._sessions.data.values())) if s is not None]


def announce(session: Any) -> None:
    """Hand over a ``session_snapshot`` of a session in scope that holds something: what SQLAlchemy
    says of it now. The caller (``record()``, ``serve()``) keeps the inspector's thread from draining
    meanwhile: the event takes its place in the stream first and is filled in after, so that whatever
    another thread does to the session meanwhile comes after it, at worst told twice, never lost."""
    t = track(session)
    if not t.on or not (session.identity_map._dict or session._new or session._transaction is not None):
        return
    ev = SnapshotEvent(ts=now(), kind="session_snapshot", pid=runtime.pid, thread="orm-inspector", session=t.sid)
    emit(ev)
    for _ in range(3):  # a session another thread changes meanwhile may fail to read: again
        try:
            _fill(ev, session, t)
            return
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
        except Exception as exc:  # noqa: BLE001 - the app must never see our failure
            record_error("session_snapshot", exc)
            break
    ev.identity_map = ev.new = ev.dirty = ev.deleted = ev.expired = ev.transactions = None  # says nothing


def _fill(ev: SnapshotEvent, session: Any, t: Track) -> None:
    states = list(session.identity_map._dict.values())
    modified = set(session.identity_map._modified)
    deleted = set(session._deleted)
    refs, ikeys, dirty, expired = [], [], [], []
    for st in states:
        r = changed_ref(st, changes(st)) if st in modified else ref(st)
        refs.append(r)
        ikeys.append(st.key)
        if st in modified and st not in deleted:
            dirty.append(r.key)
        if st.expired:
            expired.append(r.key)
    chain = []  # the open transactions, innermost first; the flush's own are folded, as always
    txn = session._transaction
    while txn is not None:
        if _txn_origin(txn) != "subtransaction":
            chain.append(txn)
        txn = txn._parent
    transactions = []
    for txn in reversed(chain):
        connections = []
        for conn, *_ in set(txn._connections.values()):
            conn.__dict__[SESSION_ATTR] = t  # its next statements are this session's (as after_begin does)
            rec = getattr(conn.__dict__.get("_dbapi_connection"), "_connection_record", None)
            if rec is not None:
                connections.append(runtime.id_of(rec, "c"))
        parent = txn._parent
        transactions.append({"id": runtime.id_of(txn, "t"), "origin": _txn_origin(txn),
                             "parent": runtime.id_of(parent, "t") if parent is not None else None,
                             "connections": sorted(set(connections))})
    if chain:
        t.root = transactions[0]["id"]
    deleted_refs = {ref(st).key: ref(st) for st in deleted}
    t.deleted = deleted_refs  # what the inspector's thread compares session._deleted with: told here
    ev.identity_map, ev.ikeys, ev.new = refs, ikeys, [ref(st) for st in session._new]
    ev.dirty, ev.deleted, ev.expired, ev.transactions = dirty, list(deleted_refs), expired, transactions
    ev.modified = [ref(st).key for st in modified]


# ---- attribute and instance events (changes between flushes) ------------------------------------
def _attr_event(kind: str, state: Any, attr: str | None = None, value: Any = None, old: Any = None,
                attrs: list[str] | None = None) -> None:
    """Hand over an edit of a persistent object that belongs to a session (the caller checked)."""
    sid = state.session_id
    t = tracks.get(sid)
    if t is not None and not t.on:
        return
    ev = AttributeEvent(ts=now(), kind=kind, pid=runtime.pid, thread=thread_name(),
                        session=t.sid if t is not None else f"s{sid}", obj=ref(state), attr=attr, value=value,
                        old=old, attrs=attrs)
    if len(_queue) < runtime.max_queue:
        _append(ev)
    else:
        runtime.drop()


def attribute_listeners(key: str) -> dict[str, Any]:
    """Listeners for one mapped attribute; the key is bound here so each call is O(1).

    Shielded inline, one frame each (they fire for every edit), returning nothing like every hook.
    Most calls are edits of transient or pending objects (a constructor's assignments), whose values
    arrive with the INSERT: the first test (``state.key``) sends them back at once."""

    def on_set(state: Any, value: Any, oldvalue: Any, initiator: Any, **_: Any) -> None:
        if state.key is not None and runtime.enabled and want.attribute and state.session_id is not None:
            try:
                _attr_event("set", state, key, capture(value), capture(oldvalue))
            except Exception as exc:  # noqa: BLE001 - the app must never see our failure
                record_error("set", exc)

    def on_append(state: Any, value: Any, initiator: Any, **_: Any) -> None:
        if state.key is not None and runtime.enabled and want.attribute and state.session_id is not None:
            try:
                _attr_event("append", state, key, capture(value))
            except Exception as exc:  # noqa: BLE001
                record_error("append", exc)

    def on_remove(state: Any, value: Any, initiator: Any, **_: Any) -> None:
        if state.key is not None and runtime.enabled and want.attribute and state.session_id is not None:
            try:
                _attr_event("remove", state, key, capture(value))
            except Exception as exc:  # noqa: BLE001
                record_error("remove", exc)

    def on_modified(state: Any, initiator: Any, **_: Any) -> None:
        if state.key is not None and runtime.enabled and want.attribute and state.session_id is not None:
            try:
                _attr_event("modified", state, key)
            except Exception as exc:  # noqa: BLE001
                record_error("modified", exc)

    for fn in (on_set, on_append, on_remove, on_modified):
        fn.__name__ = fn.__qualname__ = f"orm_inspector_{fn.__name__}_{key}"
    return {"set": on_set, "append": on_append, "remove": on_remove, "modified": on_modified}


def on_expire(state: Any, attrs: Any) -> None:
    if runtime.enabled:
        try:
            sid = state.session_id
            if sid is None or state.key is None or not want.attribute:
                return  # transient or pending objects: their values arrive with the flush
            if attrs is None:
                t = tracks.get(sid)
                if t is not None and t.bulk_expire:
                    return  # after_commit / after_rollback already said "everything expired"
            _attr_event("expire", state, attrs=sorted(attrs) if attrs is not None else None)
        except Exception as exc:  # noqa: BLE001 - the app must never see our failure
            record_error("expire", exc)


def on_refresh(state: Any, context: Any, attrs: Any) -> None:
    if runtime.enabled:
        try:
            if state.session_id is None or state.key is None or not want.attribute:
                return
            _attr_event("refresh", state, attrs=sorted(attrs) if attrs is not None else None)
        except Exception as exc:  # noqa: BLE001
            record_error("refresh", exc)


SESSION_LISTENERS: dict[str, Any] = {
    "after_transaction_create": after_transaction_create,
    "after_transaction_end": after_transaction_end,
    "after_begin": after_begin,
    "before_commit": before_commit,
    "after_commit": after_commit,
    "after_rollback": after_rollback,
    "after_soft_rollback": after_soft_rollback,
    "after_attach": _attach("after_attach"),
    "before_flush": before_flush,
    "after_flush": after_flush,
    "after_flush_postexec": after_flush_postexec,
}
LIFECYCLE_LISTENERS: dict[str, Any] = {kind: _lifecycle(kind) for kind in LIFECYCLE}
