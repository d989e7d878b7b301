"""The event model: what one SQLAlchemy happening becomes on its way to a trace, a socket or a signal.

Every event is a small msgspec ``Struct`` of primitives (not tracked by the cyclic GC: an event never
refers back to anything, and thousands of them in flight must not slow the app's collections), built on the application's thread by a hook
(``orm_inspector.hooks``) and finished (call site resolved, values redacted, ``seq`` assigned) on the
inspector's thread. Nothing here holds a mapped object, a Session or a connection: only ids, class
names, identities and copied values, so an event can never keep an object alive or run user code.

``kind`` is the SQLAlchemy event name where SQLAlchemy has one (``before_flush``, ``checkout``, ...);
the project's own kinds (for what SQLAlchemy fires no event) are listed in ``OWN_KINDS``. The full
field-by-field description of each kind is ``docs/trace-format.md``.
"""

from __future__ import annotations

from typing import Any

import msgspec

TRACE_FORMAT = "orm-inspector-trace"
TRACE_VERSION = 1


class ObjRef(msgspec.Struct, omit_defaults=True, gc=False):
    """A mapped instance, by reference: never the instance itself."""

    cls: str
    """The mapped class's ``__name__``."""
    identity: tuple[Any, ...] | None
    """The primary key tuple once the object has one (``InstanceState.key[1]``), else ``None``."""
    key: str
    """Unique per instance for its whole lifetime in this process (``o17``): stays the same when
    the object gets its primary key, so a pending object and the persistent one it becomes match."""
    changes: dict[str, Any] | None = None
    """Only in flush events: attribute name -> ``[old, new]`` for a changed scalar, or
    ``{"added": [...], "removed": [...]}`` (ObjRefs) for a collection. ``"<unloaded>"`` stands for an
    old value SQLAlchemy never loaded; redacted values are ``"<redacted>"``."""


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Fields every event has. ``seq`` is given by the inspector's thread, in hand-off order."""

    seq: int = 0
    ts: float
    kind: str
    pid: int
    thread: str


class SessionEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """Session and transaction events: after_transaction_create/end, after_begin, before/after_commit,
    after_rollback, after_soft_rollback, after_attach, and the project's ``session_close`` (SQLAlchemy has no event for
    ``Session.close()``; its pool's ``close`` is a PoolEvent)."""

    session: str
    transaction: str | None = None
    parent: str | None = None
    """For after_transaction_create: the enclosing transaction."""
    origin: str | None = None
    """autobegin, begin, nested or subtransaction (the flush's own, internal)."""
    connection: str | None = None
    """For after_begin: the pooled connection that joined the transaction."""
    obj: ObjRef | None = None
    """For after_attach."""
    expire_all: bool = False
    """after_commit / after_rollback: every object in the identity map is expired next (a root commit
    with ``expire_on_commit``, a root rollback). SQLAlchemy then fires ``expire`` once per object; the
    trace leaves those out and says it once, here."""
    site: Any = None
    """Application call site, ``"file:line:function"``."""


class SnapshotEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """The project's ``session_snapshot``: a session already in use when a recording or a live server
    starts, as SQLAlchemy holds it at that moment, so that a trace begun mid-session still
    reconstructs it. Its objects carry ``changes`` (old and new values) where they are modified."""

    session: str
    identity_map: list[ObjRef] | None = None
    """``None`` only if the session could not be read (it changed under us): then it says nothing."""
    new: list[ObjRef] | None = None
    dirty: list[str] | None = None
    """Keys of the objects in ``identity_map`` that SQLAlchemy's ``session.dirty`` holds."""
    deleted: list[str] | None = None
    """Keys of the objects ``Session.delete()`` marked (``session.deleted``)."""
    expired: list[str] | None = None
    """Keys of the objects expired as a whole."""
    transactions: list[dict[str, Any]] | None = None
    """The open transactions, root first: ``id``, ``origin``, ``parent``, ``connections``."""
    ikeys: list[Any] | None = None
    """Internal, never written: SQLAlchemy's identity keys of ``identity_map``, in its order."""
    modified: list[str] | None = None
    """Internal, never written: keys of every modified object, those marked deleted too."""


class LifecycleEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """The ten object lifecycle transitions (transient_to_pending ... loaded_as_persistent), and the
    project's own ``deleted_mark`` / ``deleted_unmark`` (``Session.delete()`` of a persistent object and
    its undoing, which SQLAlchemy fires no event for) and ``gc_evicted`` (an unmodified persistent
    object garbage-collected out of the identity map; found by the inspector's thread, which follows
    each identity map's membership and compares it with the map's size, and, when they differ, with
    its keys: reported at most about 250 ms late)."""

    session: str | None
    obj: ObjRef
    ikey: Any = None
    """Internal, never written: SQLAlchemy's identity key, which the inspector's thread uses to follow
    identity map membership (and so find garbage-collected evictions)."""


class AttributeEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """A change to a persistent object between flushes: SQLAlchemy's attribute events ``set``,
    ``append``, ``remove``, ``modified`` (flag_modified) and the instance events ``expire`` and
    ``refresh``. Only objects that belong to a session are reported."""

    session: str | None
    obj: ObjRef
    attr: str | None = None
    value: Any = None
    """``set``: the new value; ``append``/``remove``: the member (an ObjRef for a mapped object)."""
    old: Any = None
    """``set``: the value it replaced, ``"<unloaded>"`` if never loaded."""
    attrs: list[str] | None = None
    """``expire``/``refresh``: the attributes concerned (``None``: all of them)."""


class FlushEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """before_flush, after_flush and after_flush_postexec."""

    session: str
    flush: str
    """Id of this flush (``f3``), also found in the ``cause`` of every statement it emits."""
    cause: str
    """``flush`` (explicit ``Session.flush()``), ``autoflush`` (before a query) or ``commit``."""
    transaction: str | None = None
    new: list[ObjRef] | None = None
    dirty: list[ObjRef] | None = None
    deleted: list[ObjRef] | None = None
    site: Any = None


class SQLEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """before_cursor_execute / after_cursor_execute / handle_error, and the DBAPI-level transaction
    events begin, commit, rollback, savepoint, release_savepoint, rollback_savepoint."""

    connection: str | None = None
    session: str | None = None
    transaction: str | None = None
    engine: str | None = None
    statement: str | None = None
    parameters: Any = None
    executemany: bool = False
    duration: float | None = None
    """Seconds, on after_cursor_execute."""
    rows: int | None = None
    """DBAPI ``rowcount`` where the driver knows it (>= 0)."""
    cause: dict[str, Any] | None = None
    site: Any = None
    error: str | None = None
    name: str | None = None
    """Savepoint name."""


class PoolEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """connect, first_connect, checkout, checkin, reset, invalidate, soft_invalidate, close, detach,
    close_detached, and the project's ``pool_info`` (once per pool: its class and size)."""

    pool: str
    connection: str | None = None
    site: Any = None
    error: str | None = None
    info: dict[str, Any] | None = None


class InspectorEvent(Event, kw_only=True, omit_defaults=True, gc=False):
    """The inspector speaking for itself: ``dropped`` (events lost to a full hand-off queue; ``count``
    since the last such event), ``inspector_error`` (a hook failed; the app went on) and
    ``trace_end`` (the recorder closed the file cleanly)."""

    count: int | None = None
    """``dropped``: events lost since the previous ``dropped`` event."""
    total: int | None = None
    """``dropped``/``inspector_error``: the running total in this process."""
    error: str | None = None
    hook: str | None = None
    """``inspector_error``: which hook or receiver failed."""
    events: int | None = None
    """``trace_end``: events in the file (header and trace_end excluded)."""
    dropped: int | None = None
    errors: int | None = None


FAMILIES: dict[type[Event], str] = {
    SessionEvent: "session",
    SnapshotEvent: "session",
    LifecycleEvent: "lifecycle",
    AttributeEvent: "attribute",
    FlushEvent: "flush",
    SQLEvent: "sql",
    PoolEvent: "pool",
    InspectorEvent: "inspector",
}

OWN_KINDS = frozenset(
    {
        "session_close",
        "session_snapshot",
        "session_gone",
        "identity_changed",
        "deleted_mark",
        "deleted_unmark",
        "gc_evicted",
        "pool_info",
        "dropped",
        "inspector_error",
        "trace_end",
    }
)
