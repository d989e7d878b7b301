"""orm_inspector: see what the SQLAlchemy ORM does, as it does it.

    import orm_inspector
    with orm_inspector.record("trace.jsonl"):
        run_my_app()

``install()`` instruments every Session, Engine and Pool in the process; ``instrument(target)`` only
one; ``uninstall()`` stops everything. Events go out through ``orm_inspector.signals`` (blinker), on
the inspector's own thread; ``record()`` subscribes a trace-file writer to them. Nothing here imports
a UI toolkit.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__version__ = "0.1.0"

from . import signals  # noqa: E402
from .hooks import Scope, disable, enable, runtime, values  # noqa: E402
from .hooks.session import announce, live_sessions  # noqa: E402
from .transports.dispatcher import dispatcher  # noqa: E402
from .transports.recorder import Recorder  # noqa: E402

__all__ = ["install", "uninstall", "instrument", "record", "serve", "signals", "__version__"]

_lock = threading.RLock()
_UNSET: Any = object()


def _configure(redact: Any = _UNSET, callsites: bool | None = None, max_queue: int | None = None) -> None:
    if redact is not _UNSET:
        values.set_redaction(redact if redact is not True else values.DEFAULT_REDACT)
    if callsites is not None:
        runtime.callsites = bool(callsites)
    if max_queue is not None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        runtime.max_queue = int(max_queue)


def install(**options: Any) -> None:
    """Instrument every Session, Engine and Pool in the process, from now on. Idempotent.

    Options: ``redact`` (a regex of attribute and parameter names whose values are replaced by
    "<redacted>"; ``None`` or ``False`` turns redaction off; default: password, secret, token, api key
    and the like), ``callsites`` (find the app's file:line for statements, flushes, checkouts;
    default True; off also loses the lazy_load/refresh causes), ``max_queue`` (events waiting for the
    inspector's thread before new ones are dropped and counted; default 100,000).
    """
    with _lock:
        _configure(**options)
        enable(None)
        dispatcher.start()


def instrument(target: Any, **options: Any) -> None:
    """Instrument one target only: an Engine, AsyncEngine, Session, AsyncSession, sessionmaker,
    async_sessionmaker or scoped_session. Calls add up; ``install()`` widens to everything."""
    with _lock:
        _configure(**options)
        if runtime.enabled and runtime.scope is None:
            Scope().add(target)  # everything is instrumented already; still check the target's type
        else:
            scope = runtime.scope if runtime.enabled else Scope()
            scope.add(target)
            enable(scope)
        dispatcher.start()


def uninstall() -> None:
    """Stop all capture and the inspector's thread; open recordings are finished and closed.
    The listeners stay registered with SQLAlchemy but return at once (removing them is unsafe
    while other threads dispatch events)."""
    with _lock:
        for recorder in list(_recorders):
            _stop_recorder(recorder)  # a final pass while capture is still on: exact at the end
        if _servers:
            dispatcher.pump(final=True)  # and the viewers get it too
        for server in list(_servers):
            server.close()
        _servers.clear()
        dispatcher.interval = type(dispatcher).interval
        disable()
        dispatcher.stop()
        runtime.queue.clear()


_recorders: list[Recorder] = []
_servers: list[Any] = []
LIVE_INTERVAL = 0.02  # seconds between pumps while a live server runs (else 0.05)


def serve(address: str | None = None, *, token: str | None = None, allow_remote: bool = False,
          max_buffer: int = 8 << 20, **options: Any) -> Any:
    """Stream events to viewers (``orm-inspector connect``, or ``transports.client.LiveSource``) from a
    background thread. ``address``: None (a new private Unix socket), ``unix:PATH`` or ``HOST:PORT``
    (loopback only, unless ``allow_remote=True``). Returns a handle with ``.address``, ``.token`` and
    ``.close()``. Installs the instrumentation if needed; the same options as ``install()``."""
    from .transports.server import LiveServer

    unknown = set(options) - {"redact", "callsites", "max_queue"}
    if unknown:
        raise TypeError(f"serve() got unexpected options: {', '.join(sorted(unknown))}")
    with _lock:
        server = LiveServer(address, token=token, allow_remote=allow_remote, max_buffer=max_buffer)
        _servers.append(server)
        dispatcher.interval = LIVE_INTERVAL  # viewers watch as it happens: pump more often
        if not runtime.enabled:
            install(**options)
        else:
            _configure(**options)
        _announce_sessions()
        return server


def _announce_sessions() -> None:
    """Sessions already in use: their state now, so that what starts listening mid-session knows it."""
    if runtime.enabled and runtime.want.session:
        with dispatcher.paused():
            for session in live_sessions():
                announce(session)


def _stop_recorder(recorder: Recorder) -> None:
    dispatcher.pump(final=True)  # everything that happened until now goes in
    recorder.close()
    if recorder in _recorders:
        _recorders.remove(recorder)


@contextlib.contextmanager
def record(path: str | os.PathLike[str], **options: Any) -> Iterator[Recorder]:
    """Write every event to a trace file (JSON Lines; gzip when the name ends in .gz) until the block
    ends, also on an exception. Installs the instrumentation if needed (and uninstalls it at the end
    if it did). The same options as ``install()``."""
    with _lock:
        installed_here = not runtime.enabled
        dispatcher.pump()  # what happened before the recording is not part of it
        if not _recorders and not _servers:
            dispatcher.seq = 0  # no one else numbers from here: the file's seq starts at 1 as it is
        recorder = Recorder(path)  # (else it renumbers its own copy, and viewers keep theirs)
        recorder.start()
        _recorders.append(recorder)
        if installed_here:
            install(**options)
        else:
            _configure(**options)
        _announce_sessions()
    try:
        yield recorder
    finally:
        with _lock:
            if recorder in _recorders:  # not already closed at exit
                _stop_recorder(recorder)
                if installed_here and not _recorders:
                    uninstall()


def _at_exit() -> None:
    """Finish open recordings and stop the inspector's thread before the interpreter tears down."""
    try:
        for recorder in list(_recorders):
            _stop_recorder(recorder)
        dispatcher.pump(final=True)  # the last events reach the viewers too
        for server in list(_servers):
            server.close()
        dispatcher.stop()
    except Exception:  # noqa: BLE001 - never fail the app's exit
        pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at the fork
    for server in _servers:  # the parent's: its socket, its viewers. Let go, close nothing of theirs
        server.abandon()
    _servers.clear()
    # Registered after the runtime's, the dispatcher's and the recorders' own handlers (this module
    # imports them first): the thread restarts once the child's files are open.
    if dispatcher.was_running and runtime.enabled:
        dispatcher.start()
    # A forked multiprocessing child ends with os._exit(), which skips atexit: its last events and its
    # trace_end would be lost. It does run multiprocessing's own finalizers first, so ours goes there,
    # registered once multiprocessing has cleared the parent's finalizers. (A grandchild may register
    # twice: _at_exit is harmless the second time.)
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.register_after_fork(_at_exit, _finish_at_multiprocessing_exit)


def _finish_at_multiprocessing_exit(_: Any) -> None:
    sys.modules["multiprocessing.util"].Finalize(None, _at_exit, exitpriority=-(2**30))  # after the app's


import atexit  # noqa: E402

atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
