"""The instrumentation layer: SQLAlchemy listeners that turn what the ORM does into events.

Listeners are registered once, at class level (``Session``, ``Engine``, ``Pool``, ``Mapper`` and each
mapped attribute), and never removed: removing or adding a listener while another thread dispatches
that event raises inside the app's threads (sqlalchemy-events.md §6d). ``enable()``/``disable()``
flip a flag the listeners check first. A ``Scope`` narrows capture to the targets given to
``instrument()``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.pool import Pool

from . import runtime, values
from .engine import ENGINE_LISTENERS
from .pool import POOL_LISTENERS
from .session import (LIFECYCLE_LISTENERS, SESSION_LISTENERS, attribute_listeners, on_expire,
                      on_refresh)

_registered = False
_lock = threading.Lock()
_instrumented: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # mapped class -> attribute keys


class Scope:
    """The targets ``instrument()`` was given. A session is covered if it is one of them, an instance
    of a covered sessionmaker's class, or bound to a covered engine."""

    def __init__(self) -> None:
        self.sessions: set[int] = set()
        self.session_classes: set[type] = set()
        self.engines: weakref.WeakSet = weakref.WeakSet()
        self.pools: weakref.WeakSet = weakref.WeakSet()

    def add(self, target: Any) -> None:
        from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
        from sqlalchemy.orm import scoped_session, sessionmaker

        if isinstance(target, AsyncEngine):
            target = target.sync_engine
        if isinstance(target, Engine):
            self.engines.add(target)
            self.pools.add(target.pool)
        elif isinstance(target, AsyncSession):
            self.sessions.add(target.sync_session.hash_key)
        elif isinstance(target, Session):
            self.sessions.add(target.hash_key)
        elif isinstance(target, scoped_session):
            self.add(target.session_factory)
        elif isinstance(target, sessionmaker):
            self.session_classes.add(target.class_)
        elif isinstance(target, async_sessionmaker):
            sync_class = target.kw.get("sync_session_class")
            if sync_class is not None and sync_class is not Session:
                self.session_classes.add(sync_class)
            elif target.kw.get("bind") is not None:
                self.add(target.kw["bind"])
            else:
                raise TypeError("instrument(async_sessionmaker) needs its bind= or its own sync_session_class=")
        else:
            raise TypeError(f"instrument() takes an Engine, AsyncEngine, Session, AsyncSession, sessionmaker, "
                            f"async_sessionmaker or scoped_session, not {type(target).__name__}")
        runtime.scope_generation += 1

    def covers_session(self, session: Any) -> bool:
        if session.hash_key in self.sessions or type(session) in self.session_classes:
            return True
        bind = session.bind
        return bind is not None and getattr(bind, "engine", None) in self.engines

    def covers_engine(self, engine: Any) -> bool:
        return engine in self.engines

    def covers_pool(self, pool: Any) -> bool:
        return pool in self.pools


def _instrument_mapper(mapper: Any) -> None:
    """Attribute listeners on every mapped attribute of one mapped class (changes between flushes);
    and which columns hold attributes of another name, for redaction of their bind parameters."""
    for prop in mapper.column_attrs:
        for column in prop.columns:
            for name in {getattr(column, "key", None), getattr(column, "name", None)} - {None}:
                values.column_backs(name, prop.key)
    done = _instrumented.setdefault(mapper.class_, set())
    for key, attr in mapper.class_manager.items():
        impl = getattr(attr, "impl", None)
        if impl is None or key in done:
            continue
        done.add(key)
        fns = attribute_listeners(key)
        # write-only and dynamic relationships are collections too, kept apart (impl.dynamic)
        kinds = ("append", "remove", "modified") if impl.collection or getattr(impl, "dynamic", False) \
            else ("set", "modified")
        for kind in kinds:
            event.listen(attr, kind, fns[kind], raw=True)


def _on_mapper_configured(mapper: Any, class_: Any) -> None:
    # Not gated on ``enabled`` like the other listeners: a mapper configured while capture is off
    # must still have its attribute listeners when it is turned back on.
    try:
        _instrument_mapper(mapper)
    except Exception as exc:  # noqa: BLE001 - never into the app
        runtime.record_error("mapper_configured", exc)


def _existing_mappers() -> list[Any]:
    from sqlalchemy.orm import mapperlib

    return [m for reg in list(mapperlib._mapper_registries) for m in reg.mappers if m.configured]


def register() -> None:
    """Register every listener, once per process. Idempotent."""
    global _registered
    with _lock:
        if _registered:
            return
        for name, fn in SESSION_LISTENERS.items():
            event.listen(Session, name, fn)
        for name, fn in LIFECYCLE_LISTENERS.items():
            event.listen(Session, name, fn, raw=True)
        for name, fn in ENGINE_LISTENERS.items():
            event.listen(Engine, name, fn)
        for name, fn in POOL_LISTENERS.items():
            event.listen(Pool, name, fn)
        event.listen(Mapper, "expire", on_expire, raw=True)
        event.listen(Mapper, "refresh", on_refresh, raw=True)
        # mapper_configured fires once per mapper, even when the listener comes late; it is not
        # retroactive, so mappers configured already are done here.
        event.listen(Mapper, "mapper_configured", _on_mapper_configured)
        for mapper in _existing_mappers():
            _instrument_mapper(mapper)
        _registered = True


def enable(scope: Scope | None) -> None:
    register()
    runtime.scope = scope
    runtime.scope_generation += 1
    runtime.enabled = True


def disable() -> None:
    runtime.enabled = False
