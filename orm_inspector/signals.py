"""The blinker signals the instrumentation sends: one per event family, and ``events`` for all.

Every signal is sent on the inspector's own thread, never on the application's, about twenty times a
second while events flow, with the family name as sender (``"all"`` for ``events``) and one keyword
argument, ``events``: a list of finished events in stream (``seq``) order. ``events`` gets every event
of the batch; a family signal gets that family's share of it. A receiver that raises is counted as an
inspector error and the others still run. When nobody listens to a family (nor to ``events``), the
hooks do not even build its events.

    from orm_inspector import signals

    @signals.sql.connect
    def slow_statements(family, events):
        for e in events:
            if e.kind == "after_cursor_execute" and (e.duration or 0) > 0.1:
                print(e.statement, e.site)

The recorder subscribes the same way, to ``events``. See docs/signals.md for each payload.
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

events: Signal = _signals.signal("orm-inspector-events")
"""Every event, all families together, in order: what the recorder and the live server listen to."""

BY_FAMILY: dict[str, Signal] = {
    "session": session,
    "lifecycle": lifecycle,
    "attribute": attribute,
    "flush": flush,
    "sql": sql,
    "pool": pool,
    "inspector": inspector,
}
