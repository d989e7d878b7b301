"""Hooks on Pool events, for every pool class.

A pooled connection's id (``c3``) is given at ``connect``, so a reconnect on the same pool slot (after
an invalidation or a recycle) is a new id, as it is a new DBAPI connection. Records that existed
before ``install()`` get theirs at first sight. The pool classes differ (sqlalchemy-events.md §4):
NullPool connects and closes around each use; StaticPool shares one connection and does not balance
checkouts with checkins; SingletonThreadPool hands a thread's second session the connection it
already holds without a second checkout. The hooks report what each does, as it does it; ``pool_info``
(once per pool) says which kind it is, so a reader can make sense of it.
"""

from __future__ import annotations

from typing import Any

from ..events import PoolEvent
from . import callsite, runtime
from .session import SITE_ATTR
from .runtime import emit, now, shield, thread_name, want

_detached: dict[int, tuple[str, Any]] = {}  # id(dbapi connection) -> (connection id, pool), detach to close_detached
FIRST_ATTR = "_orm_inspector_first"


def _pool_info(pool: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"class": type(pool).__name__}
    size = getattr(pool, "size", None)
    if callable(size) and hasattr(pool, "_max_overflow"):  # QueuePool family: no lock taken here
        info.update(size=pool._pool.maxsize, max_overflow=pool._max_overflow, timeout=pool._timeout)
    elif hasattr(pool, "_pool_size"):  # SingletonThreadPool
        info["size"] = pool._pool_size
    return info


def _pool_id(pool: Any) -> str:
    pid = pool.__dict__.get(runtime.ATTR)
    if pid is None:
        mine = runtime.new_id("p")
        pid = pool.__dict__.setdefault(runtime.ATTR, mine)  # atomic: one thread announces the pool
        if pid is mine:
            emit(PoolEvent(ts=now(), kind="pool_info", pid=runtime.pid, thread=thread_name(), pool=pid, info=_pool_info(pool)))
    return pid


def _event(kind: str, rec: Any, pool: Any = None, connection: str | None = None, **fields: Any) -> None:
    if rec is not None:
        pool, connection = rec._ConnectionRecord__pool, runtime.id_of(rec, "c")
    if pool is None or (runtime.scope is not None and not runtime.scope.covers_pool(pool)):
        return
    emit(PoolEvent(ts=now(), kind=kind, pid=runtime.pid, thread=thread_name(), pool=_pool_id(pool),
                   connection=connection, **fields))


def _message(exc: Any) -> str | None:
    if exc is None:
        return None
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except Exception:  # noqa: BLE001
        return type(exc).__name__


def _new_connection(dbapi_connection: Any, rec: Any) -> None:
    """A new DBAPI connection, maybe in an old slot: a new id. first_connect and connect both fire
    for a pool's first connection: it gets one id, not two."""
    if rec.__dict__.pop(FIRST_ATTR, None) != id(dbapi_connection):
        rec.__dict__[runtime.ATTR] = runtime.new_id("c")


@shield("first_connect")
def on_first_connect(dbapi_connection: Any, rec: Any) -> None:
    _new_connection(dbapi_connection, rec)
    rec.__dict__[FIRST_ATTR] = id(dbapi_connection)
    if want.pool:
        _event("first_connect", rec)


@shield("connect")
def on_connect(dbapi_connection: Any, rec: Any) -> None:
    _new_connection(dbapi_connection, rec)
    if want.pool:
        _event("connect", rec)


@shield("checkout")
def on_checkout(dbapi_connection: Any, rec: Any, proxy: Any) -> None:
    if not (want.pool or want.session):
        return
    site = rec.__dict__[SITE_ATTR] = callsite.walk()[0]  # after_begin tells the same place
    if want.pool:
        _event("checkout", rec, site=site)


@shield("checkin")
def on_checkin(dbapi_connection: Any, rec: Any) -> None:
    if want.pool:
        _event("checkin", rec)


@shield("reset")
def on_reset(dbapi_connection: Any, rec: Any, reset_state: Any) -> None:
    if want.pool:
        if rec is None:  # a detached connection on its way out
            cid, pool = _detached.get(id(dbapi_connection), (None, None))
            _event("reset", None, pool=pool, connection=cid)
        else:
            _event("reset", rec)


@shield("invalidate")
def on_invalidate(dbapi_connection: Any, rec: Any, exception: Any) -> None:
    if want.pool:
        _event("invalidate", rec, error=_message(exception))


@shield("soft_invalidate")
def on_soft_invalidate(dbapi_connection: Any, rec: Any, exception: Any) -> None:
    if want.pool:
        _event("soft_invalidate", rec, error=_message(exception))


@shield("close")
def on_close(dbapi_connection: Any, rec: Any) -> None:
    if want.pool:
        _event("close", rec)


@shield("detach")
def on_detach(dbapi_connection: Any, rec: Any) -> None:
    _detached[id(dbapi_connection)] = (runtime.id_of(rec, "c"), rec._ConnectionRecord__pool)
    if want.pool:
        _event("detach", rec)


@shield("close_detached")
def on_close_detached(dbapi_connection: Any) -> None:
    cid, pool = _detached.pop(id(dbapi_connection), (None, None))
    if want.pool:
        _event("close_detached", None, pool=pool, connection=cid)


POOL_LISTENERS: dict[str, Any] = {
    "connect": on_connect,
    "first_connect": on_first_connect,
    "checkout": on_checkout,
    "checkin": on_checkin,
    "reset": on_reset,
    "invalidate": on_invalidate,
    "soft_invalidate": on_soft_invalidate,
    "close": on_close,
    "detach": on_detach,
    "close_detached": on_close_detached,
}
