"""What every hook shares: the on/off switch, the bounded hand-off queue, the shield, and ids.

Hooks run on the application's threads, inside its flushes and checkouts. Everything here is
O(1), takes no lock (a ``deque.append`` is atomic under the GIL and safe on re-entry, unlike
``queue.Queue``, whose lock can deadlock when a GC-driven pool event re-enters a hook), does no
I/O and never lets an exception out (sqlalchemy-events.md §0, §6).
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
from typing import Any, Callable

from .. import signals

#: False until ``install()``; ``uninstall()`` sets it back. Listeners stay registered for good
#: (removing one while another thread dispatches that event breaks the app, §6d): they check this.
enabled = False

#: Find the app's call site for statements, flushes, begins and checkouts (``install(callsites=)``).
callsites = True

#: None: everything (``install()``); else a ``hooks.Scope`` of the targets given to ``instrument()``.
scope: Any = None
scope_generation = 0

#: The hand-off to the inspector's thread, and its bound.
queue: collections.deque = collections.deque()
max_queue = 100_000
dropped = 0
"""Events not queued because the queue was full (approximate under races; never silent)."""

errors = 0
error_log: collections.deque = collections.deque(maxlen=100)
"""(hook name, "ExcType: message") of recent hook failures, reported as inspector_error events."""

pid = os.getpid()
now = time.time


def emit(event: Any) -> None:
    """Hand an event to the inspector's thread, or count it as dropped. Never blocks. (The hottest
    hooks do the same inline: ``if len(queue) < max_queue: queue.append(ev) else: drop()``.)"""
    global dropped
    if len(queue) < max_queue:
        queue.append(event)
    else:
        dropped += 1


def drop() -> None:
    global dropped
    dropped += 1


_all = signals.events


def wanted(signal) -> bool:
    """True when someone listens to this family: otherwise hooks do not build its events."""
    return bool(signal.receivers or _all.receivers)


class Wants:
    """Which families someone listens to, as plain attributes the hooks read in one step (``want.sql``).
    Set at once when a receiver connects (blinker's ``receiver_connected``), and recomputed by
    ``refresh()``, which the inspector's thread calls at every pump: a receiver that disconnects or is
    garbage-collected is noticed within one interval (meanwhile events are built for nobody, which is
    harmless; a new receiver is never missed)."""

    __slots__ = ("session", "lifecycle", "attribute", "flush", "sql", "pool")

    def __init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        # Under a lock: a pump's refresh that read the receivers just before a connect must not write
        # its stale answer after the connect's own refresh (the lock puts that one last).
        with _want_lock:
            every = bool(_all.receivers)
            for family in self.__slots__:
                setattr(self, family, every or bool(signals.BY_FAMILY[family].receivers))


_want_lock = threading.RLock()  # reentrant: a GC-run callback that disconnects may land inside
want = Wants()


def _on_connect(signal: Any, **_: Any) -> None:
    want.refresh()


for _signal in (_all, *signals.BY_FAMILY.values()):
    _signal.receiver_connected.connect(_on_connect, weak=False)
    _signal.receiver_disconnected.connect(_on_connect, weak=False)


def shield(name: str) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Wrap a listener so it does nothing when disabled, never raises, and always returns None
    (a non-None return from do_orm_execute or handle_error would change what the app gets)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., None]:
        def listener(*args: Any) -> None:  # SQLAlchemy calls listeners positionally
            if enabled:
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - the app must never see our failure
                    record_error(name, exc)
            return None

        listener.__name__ = listener.__qualname__ = f"orm_inspector_{name}"
        return listener

    return decorate


def record_error(name: str, exc: BaseException) -> None:
    global errors
    errors += 1
    try:
        error_log.append((name, f"{type(exc).__name__}: {exc}"[:500]))
    except Exception:  # noqa: BLE001 - even a failing __str__ must not escape
        error_log.append((name, type(exc).__name__))


# ---- thread names ---------------------------------------------------------------------------
_local = threading.local()


def thread_name() -> str:
    try:
        return _local.name
    except AttributeError:
        name = _local.name = threading.current_thread().name
        return name


# ---- ids ------------------------------------------------------------------------------------
# Ids are short strings, unique within a process ("o17", "c3", ...): a trace carries ``pid`` too.
# They live in an attribute of SQLAlchemy's own bookkeeping objects (InstanceState, the pool's
# connection record, SessionTransaction), never in the app's ``info`` dicts, and die with them.
_counters = {p: itertools.count(1) for p in "otcpef"}
ATTR = "_orm_inspector_id"


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_counters[prefix])}"


def id_of(obj: Any, prefix: str) -> str:
    """The id of a SQLAlchemy bookkeeping object, given on first sight."""
    d = obj.__dict__
    ident = d.get(ATTR)
    if ident is None:
        ident = d.setdefault(ATTR, new_id(prefix))  # atomic if two threads race
    return ident


def _after_fork_in_child() -> None:
    global pid, dropped, errors, _want_lock
    _want_lock = threading.RLock()  # another thread may have held it at the fork
    pid = os.getpid()
    queue.clear()  # the parent's events: the parent reports them
    dropped = errors = 0
    error_log.clear()
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["emit", "shield", "wanted", "signals"]
