"""The state events fold into: sessions, their identity maps and transactions, pooled connections.
Pure Python, no UI: the TUI and ``orm-inspector state`` render it."""

from .model import ConnectionState, ObjectState, SessionState, State, TransactionState, fold
from .timeline import Timeline

__all__ = ["State", "SessionState", "ObjectState", "TransactionState", "ConnectionState", "fold", "Timeline"]
