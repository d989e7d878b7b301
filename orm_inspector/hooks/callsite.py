"""Where in the application an event comes from, found cheaply (sqlalchemy-events.md §7).

``walk()`` climbs ``f_back`` from the hook to the first frame outside SQLAlchemy, greenlet and
orm_inspector, caching per code object whether it is library code, and hops from an asyncio
greenlet to the coroutine awaiting it. On the app's thread it keeps only ``(code, lineno)``; the
inspector's thread turns that into ``"file:line:function"`` (``describe``).

While climbing it also notes SQLAlchemy's own frames that tell *why* something runs: a lazy load,
the refresh of an expired attribute, an autoflush, a ``Session.close()``. Reading code objects and,
for those rare frames only, their locals, changes nothing in the app.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

import greenlet
import sqlalchemy

from . import runtime

_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP = (
    os.path.dirname(sqlalchemy.__file__) + os.sep,
    os.path.dirname(greenlet.__file__) + os.sep,
    _here + os.sep,
    "<sqlalchemy",  # code SQLAlchemy 2.1 generates at runtime
)
_LIBRARY_MODULES = ("sqlalchemy.", "greenlet", "orm_inspector.")
# id(code object) -> (code object, APP (the app's), LIBRARY, or the cause name of a marker frame): one
# lookup a frame. Keyed by id(), not by the code object: CPython does not cache a code object's hash
# but recomputes it from its bytecode, constants and names at every lookup (0.1 to 0.7 us for
# SQLAlchemy's larger functions, against 25 ns for an int). The entry keeps its code object, so its
# id cannot be reused by another while it is here; the `is` check makes sure of it anyway.
APP, LIBRARY = object(), object()
_kind_of: dict[int, tuple[Any, Any]] = {}


def _code(fn: Any) -> Any:
    try:
        return inspect.unwrap(fn).__code__
    except AttributeError:  # a SQLAlchemy release that moved the function (or fn is None)
        return None


def _markers() -> dict[Any, str]:
    """Code objects of SQLAlchemy functions whose presence on the stack names the cause."""
    from sqlalchemy.orm import loading, session, strategies

    # SQLAlchemy 2.1 made these private; 2.0 has the public names. A release without either loses
    # that cause (the statement is then reported as "execute"), never the import.
    lazy = getattr(strategies, "_LazyLoader", None) or getattr(strategies, "LazyLoader", None)
    scalar = getattr(loading, "_load_scalar_attributes", None) or getattr(loading, "load_scalar_attributes", None)
    found = {
        _code(getattr(lazy, "_load_for_state", None)): "lazy_load",
        _code(scalar): "refresh",
        _code(session.Session._autoflush): "autoflush",
        _code(session.Session._close_impl): "close",
    }
    found.pop(None, None)
    return found


MARKERS = _markers()
_MARKER_IDS = {id(code): name for code, name in MARKERS.items()}  # SQLAlchemy's functions: they live on


def walk(depth: int = 2, max_frames: int = 120) -> tuple[Any, Any]:
    """(site, marker): site is ``(code, lineno)`` of the app's frame or None; marker is
    ``(name, frame)`` of the innermost cause-naming SQLAlchemy frame met on the way, or None."""
    if not runtime.callsites:
        return None, None
    f = sys._getframe(depth)
    marker = None
    hopped = False
    for _ in range(max_frames):
        if f is None:
            # asyncio: SQLAlchemy runs sync code in a greenlet; the app's coroutine is in the parent.
            parent = None if hopped else greenlet.getcurrent().parent
            f = parent.gr_frame if parent is not None else None
            if f is None:
                return None, marker
            hopped = True
        code = f.f_code
        entry = _kind_of.get(id(code))
        if entry is not None and entry[0] is code:
            kind = entry[1]
        else:
            kind = _classify(code, f)
            _kind_of[id(code)] = (code, kind)
        if kind is APP:
            return (code, f.f_lineno), marker
        if kind is not LIBRARY and marker is None:
            marker = (kind, f)
        f = f.f_back
    return None, marker


def _classify(code: Any, frame: Any) -> Any:
    name = code.co_filename
    if name == "<string>":  # exec'd code: SQLAlchemy 2.0's decorators, or the app's (python -c)
        library = str(frame.f_globals.get("__name__", "")).startswith(_LIBRARY_MODULES)
    else:
        library = name.startswith(_SKIP)
    if not library:
        return APP
    return MARKERS.get(code, LIBRARY)


def marker(depth: int = 2, max_frames: int = 12) -> str | None:
    """The cause-naming SQLAlchemy frame within the next few frames, without looking for the app's
    frame: the markers sit a handful of frames above the hooks that ask, so this costs ~1 µs."""
    f = sys._getframe(depth)
    for _ in range(max_frames):
        if f is None:
            return None
        name = _MARKER_IDS.get(id(f.f_code))
        if name is not None:
            return name
        f = f.f_back
    return None


_described: dict[tuple[int, int], tuple[Any, str]] = {}


def describe(site: Any) -> str | None:
    """``"file:line:function"`` for a captured ``(code, lineno)``. Inspector's thread only. Cached by
    (id(code), line), for the reason ``_kind_of`` is."""
    if site is None or type(site) is str:
        return site
    code, line = site
    entry = _described.get((id(code), line))
    if entry is not None and entry[0] is code:
        return entry[1]
    if len(_described) > 50_000:
        _described.clear()
    text = f"{code.co_filename}:{line}:{code.co_name}"
    _described[(id(code), line)] = (code, text)
    return text
