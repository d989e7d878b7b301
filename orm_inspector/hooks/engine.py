"""Hooks on Engine/Connection events: each statement, its parameters, duration, rows, errors, call
site and ORM cause; DBAPI-level begin/commit/rollback and savepoints.

The cause comes from public events and a read of the stack only: a statement run while a flush of its
session is in progress belongs to that flush (explicit, autoflush or commit: decided at before_flush);
otherwise the stack says whether SQLAlchemy is lazy-loading a relationship or refreshing an expired
object; otherwise it is a statement the app ran itself. ``do_orm_execute`` is not used: a listener
on it moves every ORM execute onto another code path (sqlalchemy-events.md §1.2).
"""

from __future__ import annotations

import time
from typing import Any

from ..events import SQLEvent
from . import callsite, runtime
from .runtime import emit, now, record_error, shield, thread_name, want
from .session import SESSION_ATTR
from .values import ref

T0_ATTR = "_orm_inspector_t0"
MAX_PARAMETER_SETS = 10
perf = time.perf_counter


def _covered(conn: Any, track: Any) -> bool:
    scope = runtime.scope
    return scope is None or (track is not None and track.on) or scope.covers_engine(conn.engine)


def connection_id(conn: Any) -> str | None:
    fairy = conn.__dict__.get("_dbapi_connection")
    rec = getattr(fairy, "_connection_record", None)
    return runtime.id_of(rec, "c") if rec is not None else None


def _cause(track: Any, depth: int = 3) -> tuple[dict[str, Any], Any]:
    if track is not None and track.in_flush and track.flush is not None:
        return {"kind": track.flush_cause, "flush": track.flush}, track.flush_site
    site, marker = callsite.walk(depth)
    if marker is not None:
        name, frame = marker
        loc = frame.f_locals  # only for these rare frames: a read, nothing the app can see
        if name == "lazy_load":
            strategy, state = loc.get("self"), loc.get("state")
            attr = f"{strategy.parent.class_.__name__}.{strategy.key}" if strategy is not None else None
            return {"kind": "lazy_load", "attribute": attr, "obj": ref(state) if state is not None else None}, site
        if name == "refresh":
            state, names = loc.get("state"), loc.get("attribute_names")
            return {"kind": "refresh", "obj": ref(state) if state is not None else None,
                    "attributes": sorted(names) if names else None}, site
    return {"kind": "execute" if site is not None else "other"}, site


_queue = runtime.queue
_append = _queue.append


def before_cursor_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                          executemany: bool) -> None:
    """Shielded inline (one frame: it fires for every statement); returns nothing, like every hook."""
    if runtime.enabled and want.sql:
        try:
            _before(conn, statement, parameters, context, executemany)
        except Exception as exc:  # noqa: BLE001 - the app must never see our failure
            record_error("before_cursor_execute", exc)


def _before(conn: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    track = conn.__dict__.get(SESSION_ATTR)
    if runtime.scope is not None and not _covered(conn, track):
        return
    if track is not None and track.in_flush and track.flush is not None:  # a flush's: no stack walk
        cause, site = {"kind": track.flush_cause, "flush": track.flush}, track.flush_site
    else:
        cause, site = _cause(track, 4)
    names, one = None, "one"
    compiled = getattr(context, "compiled", None)
    if getattr(compiled, "positional", False):  # DDL compilers have no bind names
        names = compiled.positiontup
        if compiled.post_compile_params or compiled.literal_execute_params:
            one = "expanded"  # IN lists expanded at execution: the values no longer line up with names
    # insertmanyvalues calls this with executemany=True and one batch (a tuple, or a dict for psycopg)
    if executemany and isinstance(parameters, (list, tuple)) and parameters and \
            isinstance(parameters[0], (tuple, list, dict)):
        params: Any = ("many", names, len(parameters), parameters[:MAX_PARAMETER_SETS])
    else:
        params = (one, names, parameters)
    ev = SQLEvent(ts=now(), kind="before_cursor_execute", pid=runtime.pid, thread=thread_name(),
                  connection=connection_id(conn), session=track.sid if track is not None else None,
                  transaction=track.root if track is not None else None,
                  engine=runtime.id_of(conn.engine, "e"), statement=statement, parameters=params,
                  executemany=executemany, cause=cause, site=site)
    if len(_queue) < runtime.max_queue:
        _append(ev)
    else:
        runtime.drop()
    if context is not None:
        context.__dict__[T0_ATTR] = perf()


def after_cursor_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                         executemany: bool) -> None:
    if runtime.enabled and want.sql:
        try:
            t0 = context.__dict__.get(T0_ATTR) if context is not None else None
            track = conn.__dict__.get(SESSION_ATTR)
            if runtime.scope is not None and not _covered(conn, track):
                return
            rows = getattr(cursor, "rowcount", -1)
            ev = SQLEvent(ts=now(), kind="after_cursor_execute", pid=runtime.pid, thread=thread_name(),
                          connection=connection_id(conn), session=track.sid if track is not None else None,
                          duration=perf() - t0 if t0 is not None else None,
                          rows=rows if type(rows) is int and rows >= 0 else None)
            if len(_queue) < runtime.max_queue:
                _append(ev)
            else:
                runtime.drop()
        except Exception as exc:  # noqa: BLE001 - the app must never see our failure
            record_error("after_cursor_execute", exc)


@shield("handle_error")
def handle_error(ctx: Any) -> None:
    if not want.sql:
        return
    conn = ctx.connection
    exc = ctx.original_exception
    try:
        message = f"{type(exc).__name__}: {exc}"[:500]
    except Exception:  # noqa: BLE001 - a driver's broken __str__ is not our failure to report
        message = type(exc).__name__
    track = conn.__dict__.get(SESSION_ATTR) if conn is not None else None
    if conn is not None and not _covered(conn, track):
        return
    emit(SQLEvent(ts=now(), kind="handle_error", pid=runtime.pid, thread=thread_name(), connection=connection_id(conn) if conn is not None else None,
                  session=track.sid if track is not None else None, statement=ctx.statement,
                  error=message, site=callsite.walk()[0]))


def _tx(kind: str):
    @shield(kind)
    def listener(conn: Any, *args: Any) -> None:
        if not want.sql:
            return
        name = args[0] if kind in ("savepoint", "rollback_savepoint", "release_savepoint") else None
        if name is not None:
            name = str(name)  # SQLAlchemy's quoted_name, a str subclass: make it a plain str
        track = conn.__dict__.get(SESSION_ATTR)
        if not _covered(conn, track):
            return
        emit(SQLEvent(ts=now(), kind=kind, pid=runtime.pid, thread=thread_name(), connection=connection_id(conn),
                      session=track.sid if track is not None else None, name=name))

    return listener


ENGINE_LISTENERS: dict[str, Any] = {
    "before_cursor_execute": before_cursor_execute,
    "after_cursor_execute": after_cursor_execute,
    "handle_error": handle_error,
    **{k: _tx(k) for k in ("begin", "commit", "rollback", "savepoint", "rollback_savepoint", "release_savepoint")},
}
