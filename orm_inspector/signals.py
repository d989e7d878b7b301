"""The blinker signals the instrumentation sends: one per event family.

Each signal is sent on the inspector's own thread, never on the application's, with the family name
as sender and one keyword argument, ``events``: a list of finished events of that family that are
consecutive in the stream. A receiver connected to several families therefore sees every event in
stream (``seq``) order. A receiver that raises is counted as an inspector error and disconnected
from nothing: the others still run. When no receiver is connected to a family, the hooks do not
even build its events.

    from orm_inspector import signals

    @signals.sql.connect
    def slow_statements(family, events):
        for e in events:
            if e.kind == "after_cursor_execute" and e.duration > 0.1:
                print(e.statement, e.site)

The recorder and the live server subscribe exactly this way. See docs/signals.md for each payload.
"""

from __future__ import annotations

from blinker import Namespace, Signal

_signals = Namespace()

session: Signal = _signals.signal("orm-inspector-session")
"""Session and transaction events (``SessionEvent``)."""
lifecycle: Signal = _signals.signal("orm-inspector-lifecycle")
"""Object lifecycle transitions (``LifecycleEvent``)."""
attribute: Signal = _signals.signal("orm-inspector-attribute")
"""Attribute edits, expiry and refresh of persistent objects (``AttributeEvent``)."""
flush: Signal = _signals.signal("orm-inspector-flush")
"""Unit of work: before/after flush with new/dirty/deleted and changes (``FlushEvent``)."""
sql: Signal = _signals.signal("orm-inspector-sql")
"""Statements, their cause and call site; DBAPI transaction events (``SQLEvent``)."""
pool: Signal = _signals.signal("orm-inspector-pool")
"""Pool and pooled-connection events (``PoolEvent``)."""
inspector: Signal = _signals.signal("orm-inspector-inspector")
"""The inspector's own reports: drops, errors, end of trace (``InspectorEvent``)."""

BY_FAMILY: dict[str, Signal] = {
    "session": session,
    "lifecycle": lifecycle,
    "attribute": attribute,
    "flush": flush,
    "sql": sql,
    "pool": pool,
    "inspector": inspector,
}
