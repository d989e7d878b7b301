"""How things look, in one place: one colour per lifecycle state, everywhere (tables, lists, the
lessons' diagram), and the small formatting helpers the panels share."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

STATE_COLORS = {
    "transient": "grey62",
    "pending": "yellow",
    "persistent": "green",
    "deleted": "red",
    "detached": "magenta",
}
STATUS_COLORS = {  # sessions and connections
    "idle": "grey62",
    "in transaction": "cyan",
    "flushing": "yellow",
    "closed": "grey42",
    "checked_out": "cyan",
    "invalidated": "red",
}
LONG_CHECKOUT = 5.0  # seconds: a connection held longer stands out


def state_text(state: str) -> Text:
    return Text(state, style=STATE_COLORS.get(state, ""))


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_COLORS.get(status, ""))


def ref_text(ref: dict[str, Any] | None, state: str | None = None) -> Text:
    from ..state.journal import describe

    return Text(describe(ref), style=STATE_COLORS.get(state or "", ""))


def age(since: float | None, now: float) -> str:
    if since is None:
        return ""
    seconds = max(0.0, now - since)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.0f}m"


def clock(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def value_text(value: Any) -> str:
    """A recorded value (already rendered by the recorder: JSON data only) in a few characters."""
    from ..state.journal import describe

    if isinstance(value, dict) and "cls" in value:
        return describe(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    return repr(value)


def change_lines(changes: dict[str, Any]) -> list[str]:
    """``name: 'x' -> 'y'`` or ``books: +Book(3) -Book(1)`` per changed attribute."""
    out = []
    for attr, change in changes.items():
        if isinstance(change, dict):
            added = " ".join("+" + value_text(v) for v in change.get("added") or ())
            removed = " ".join("-" + value_text(v) for v in change.get("removed") or ())
            out.append(f"{attr}: {' '.join(x for x in (added, removed) if x) or '(no net change)'}")
        elif isinstance(change, list) and len(change) == 2:
            out.append(f"{attr}: {value_text(change[0])} -> {value_text(change[1])}")
        else:
            out.append(f"{attr}: {value_text(change)}")
    return out


def gauge(used: int, size: int, width: int = 20) -> str:
    """``[#######.....]`` of ``used`` out of ``size`` (overflow beyond size shown as ``+``)."""
    size = max(size, 1)
    inside = min(used, size)
    filled = round(width * inside / size)
    over = "+" * min(width, max(0, used - size))
    return "[" + "#" * filled + "." * (width - filled) + "]" + over
