"""Reading objects and values without side effects.

Two halves. On the app's thread (``ref``, ``capture``): turn a mapped instance into an ``ObjRef`` and a
value into something safe to hand to another thread, reading only ``InstanceState`` fields and
``state.dict``: no attribute access through instrumented descriptors (no lazy load, no autoflush), no
``__repr__``/``__str__`` of anything (sqlalchemy-events.md §2). Immutable values pass through untouched;
containers are copied shallowly and only when small. On the inspector's thread (``finish``): truncate,
redact and make everything encodable.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import uuid
from typing import Any

from sqlalchemy.orm.base import NO_VALUE

from ..events import ObjRef
from . import runtime

try:  # PASSIVE_NO_RESULT can sit in committed_state for deferred-history relationships
    from sqlalchemy.orm.base import PASSIVE_NO_RESULT
except ImportError:  # pragma: no cover - every supported version has it
    PASSIVE_NO_RESULT = NO_VALUE

UNLOADED = "<unloaded>"
REDACTED = "<redacted>"

_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, decimal.Decimal, uuid.UUID,
     datetime.date, datetime.datetime, datetime.time, datetime.timedelta}
)
_SMALL = 20  # containers longer than this are summarised, not copied
MAX_STR = 200  # longer strings are cut


def ref(state: Any) -> ObjRef:
    """An ObjRef for an InstanceState. O(1): made once per identity of the instance and kept in the
    state's ``__dict__`` (one entry, not tracked by the garbage collector), so it is shared and must
    not be changed (``changed_ref`` makes one that may). Its ``key`` is the instance's for life."""
    key = state.key
    identity = key[1] if key is not None else None
    d = state.__dict__
    cached = d.get(runtime.ATTR)
    if cached is not None:
        if cached.identity is identity or d.get(RAW_KEY_ATTR, d) is identity:  # (d: a default never a key)
            return cached
        r = ObjRef(state.class_.__name__, _written(identity, d), cached.key)  # it got its primary key
        d[runtime.ATTR] = r
        return r
    r = ObjRef(state.class_.__name__, _written(identity, d), runtime.new_id("o"))
    return d.setdefault(runtime.ATTR, r)  # atomic: the inspector's thread may race us


RAW_KEY_ATTR = "_orm_inspector_raw_key"


def _written(identity: Any, d: dict[str, Any]) -> Any:
    """The identity with bytes in hex and an enum as ``Type.NAME``, as attribute values holding them
    are written. Nearly always the same tuple (``ref()`` knows it by ``is``); a converted one keeps
    the raw key next to it, for the same check."""
    if identity is None or type(identity[0]) is int and len(identity) == 1:  # the usual key, at once
        return identity
    if not any(type(v) is bytes or isinstance(v, enum.Enum) for v in identity):
        return identity
    d[RAW_KEY_ATTR] = identity
    return tuple(v.hex() if type(v) is bytes else f"{type(v).__name__}.{v.name}" if isinstance(v, enum.Enum)
                 else v for v in identity)


def changed_ref(state: Any, changes: dict[str, Any]) -> ObjRef:
    r = ref(state)
    return ObjRef(r.cls, r.identity, r.key, changes)


def state_of(value: Any) -> Any:
    """The InstanceState of a mapped instance, or None; reads the instance's __dict__ only."""
    if getattr(type(value), "_sa_class_manager", None) is None:
        return None
    try:
        return vars(value).get("_sa_instance_state")
    except TypeError:
        return None


def capture(value: Any, depth: int = 0) -> Any:
    """A value as it may cross to the inspector's thread and be written: never a mapped instance or a
    live container, never longer than MAX_STR."""
    t = type(value)
    if t is str:
        return value if len(value) <= MAX_STR else value[:MAX_STR] + "…"
    if t in _IMMUTABLE:
        return value if t is not bytes else _bytes(value)
    if value is NO_VALUE or value is PASSIVE_NO_RESULT:
        return UNLOADED
    st = state_of(value)
    if st is not None:
        return ref(st)
    if isinstance(value, enum.Enum):
        return f"{t.__name__}.{value.name}"
    if isinstance(value, (str, int, float)):  # a subclass (exact types returned above): its plain
        return capture(_plain(value), depth)  # value, without calling any method of its own
    if t in (list, tuple, set, frozenset):
        if len(value) > _SMALL or depth > 2:
            return f"<{t.__name__} of {len(value)}>"
        return [capture(v, depth + 1) for v in value]
    if t is dict:
        if len(value) > _SMALL or depth > 2:
            return f"<dict of {len(value)}>"
        return {str(k) if type(k) in _IMMUTABLE else f"<{type(k).__name__}>": capture(v, depth + 1)
                for k, v in value.items()}
    return f"<{t.__name__}>"


def _plain(value: Any) -> Any:
    """The builtin value of a str/int/float subclass instance, through the builtin's own method
    (``str.__str__`` etc. called on the class: a subclass's override never runs)."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    return float.__float__(value)


def _bytes(value: bytes) -> str:
    return f"<{len(value)} bytes>" if len(value) > 32 else value.hex()


# ---- inspector's thread ------------------------------------------------------------------------

DEFAULT_REDACT = r"pass(word|wd)?|secret|token|api_?key|private_?key|credential"
_redact = re.compile(DEFAULT_REDACT, re.I)


def set_redaction(pattern: str | None) -> None:
    """Names (attributes, bind parameters) matching ``pattern`` (a regex searched case-insensitively)
    have their values replaced by "<redacted>". ``None`` turns redaction off."""
    global _redact, _generation
    _redact = re.compile(pattern, re.I) if pattern else None
    _generation += 1
    _redacts.clear()
    _masks.clear()


_redacts: dict[str, bool] = {}
# A column's name <-> the name of the mapped attribute it holds, where they differ (``password:
# Mapped[str] = mapped_column("pw")``): statements name values by the column, events by the attribute.
_other_names: dict[str, set[str]] = {}
# pw_1, pw_1_2, pw__0: the names SQLAlchemy makes for a column's binds (insertmanyvalues adds "__N")
_BIND_SUFFIX = re.compile(r"(_+\d+)+$")
_generation = 0  # bumped when the answers may change: an answer worked out before that is not kept


def redacts(name: str) -> bool:
    """Whether values named ``name`` (an attribute, a key, a bind parameter) are redacted."""
    try:
        return _redacts[name]
    except KeyError:
        generation = _generation
        if _redact is None:
            answer = False
        else:
            answer = _redact.search(name) is not None or any(
                _redact.search(other) is not None for other in _other_names.get(_BIND_SUFFIX.sub("", name), ()))
        if generation == _generation:  # else the rule or the names changed meanwhile (another thread)
            _redacts[name] = answer
        return answer


def column_backs(column_name: str, attribute: str) -> None:
    """Note that the column named ``column_name`` holds the mapped attribute ``attribute``."""
    global _generation
    if column_name != attribute and attribute not in _other_names.get(column_name, ()):
        _other_names.setdefault(column_name, set()).add(attribute)
        _other_names.setdefault(attribute, set()).add(column_name)
        _generation += 1
        _redacts.clear()  # answers given before may change
        _masks.clear()


def names_redacted_in(text: str) -> bool:
    """Whether ``text`` mentions a name the rule redacts (for a document too long to be parsed)."""
    return _redact is not None and _redact.search(text) is not None


def redact_keys(value: Any) -> Any:
    """A captured value with the values under redacted keys of its dicts replaced, at any depth
    (a JSON column's ``{"smtp_password": ...}``)."""
    if type(value) is dict:
        return {k: REDACTED if redacts(k) else redact_keys(v) for k, v in value.items()}
    if type(value) is list:
        return [redact_keys(v) for v in value]
    return value


# id(names tuple) -> (names, which of them are redacted). A cached compiled statement hands the same
# ``positiontup`` to every execution, so its names are looked at once, not at every row.
_masks: dict[int, tuple[Any, tuple[bool, ...]]] = {}


def redaction_mask(names: Any) -> tuple[bool, ...]:
    """``redacts(n)`` for each name of a statement's bind names, cached per names tuple."""
    entry = _masks.get(id(names))
    if entry is not None and entry[0] is names:
        return entry[1]
    if len(_masks) > 10_000:
        _masks.clear()
    generation = _generation
    mask = tuple(redacts(n) for n in names)
    if generation == _generation:  # (see redacts)
        _masks[id(names)] = (names, mask)  # keeps the tuple alive: its id cannot be reused meanwhile
    return mask


def finish(value: Any) -> Any:
    """Make a DBAPI parameter value short and encodable (the encoder's fallback names any other type)."""
    t = type(value)
    if t is str:
        return value if len(value) <= MAX_STR else value[:MAX_STR] + "…"
    if t is bytes or t is bytearray or t is memoryview:
        return _bytes(bytes(value))
    if t is list or t is tuple:
        return [finish(v) for v in value[:_SMALL]]
    if t not in _IMMUTABLE and isinstance(value, (str, int, float)) and not isinstance(value, enum.Enum):
        return finish(_plain(value))  # e.g. SQLAlchemy's quoted_name, a str subclass
    return value
