"""The recent past of an event stream: the event log, the SQL log, and an object's story.

``State`` says how things are; the journal says what happened lately. It keeps the last
``max_events`` events (a bounded deque: a long-running app does not grow it) and pairs each
statement's ``before_cursor_execute`` with its ``after_cursor_execute`` or ``handle_error`` into one
``Statement``. Pure Python, no UI: the TUI renders from it and filters it.

Objects are named by ``(pid, key)``: keys are unique per process only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .model import EDITS, INTO_MAP, OUT_OF_MAP

LIFECYCLE = INTO_MAP | OUT_OF_MAP | {"transient_to_pending", "pending_to_transient", "deleted_to_detached",
                                     "deleted_mark", "deleted_unmark"}
STORY = LIFECYCLE | EDITS | {"expire", "refresh", "after_attach", "identity_changed"}  # what happens to one object
FLUSH_LISTS = ("new", "dirty", "deleted")


@dataclass(slots=True)
class Statement:
    seq: int
    ts: float
    pid: int | None
    thread: str | None
    session: str | None
    transaction: str | None
    connection: str | None
    statement: str
    parameters: Any
    executemany: bool
    cause: dict[str, Any]
    site: str | None
    duration: float | None = None  # None until it returns
    rows: int | None = None
    error: str | None = None
    done: int | None = None  # the seq of its after_cursor_execute or handle_error

    @property
    def cause_text(self) -> str:
        """The cause in a few words: "flush f3", "lazy load Author.books", "refresh Book(2)"."""
        c = self.cause or {}
        kind = c.get("kind", "other")
        if kind in ("flush", "autoflush", "commit"):
            via = {"flush": "flush", "autoflush": "autoflush", "commit": "flush at commit"}[kind]
            return f"{via} {c.get('flush', '')}".rstrip()
        if kind == "lazy_load":
            return f"lazy load {c.get('attribute', '?')}"
        if kind == "refresh":
            return f"refresh {describe(c['obj'])}" if c.get("obj") else "refresh"
        return kind


def describe(ref: dict[str, Any] | None) -> str:
    """``Book(2)``, or ``Book(pending o17)`` before it has an identity."""
    if not ref:
        return "?"
    identity = ref.get("identity")
    inside = ",".join(str(v) for v in identity) if identity else f"pending {ref.get('key')}"
    return f"{ref.get('cls')}({inside})"


class Journal:
    def __init__(self, max_events: int = 20_000) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.statements: deque[Statement] = deque(maxlen=max_events)
        self._running: dict[tuple[Any, Any], Statement] = {}  # (pid, connection) -> statement under way
        # Per (pid, session): the call sites of the flush and the commit under way, and of its last
        # statement. Lifecycle events carry no call site of their own; these say where they came from.
        self._sites: dict[tuple[Any, Any], dict[str, str]] = {}

    def add(self, e: dict[str, Any]) -> None:
        kind = e.get("kind")
        if kind == "before_cursor_execute":
            st = Statement(e.get("seq", 0), e.get("ts", 0.0), e.get("pid"), e.get("thread"), e.get("session"),
                           e.get("transaction"), e.get("connection"), e.get("statement") or "",
                           e.get("parameters"), bool(e.get("executemany")), e.get("cause") or {}, e.get("site"))
            self.statements.append(st)
            self._running[(st.pid, st.connection)] = st
        elif kind in ("after_cursor_execute", "handle_error"):
            st = self._running.pop((e.get("pid"), e.get("connection")), None)
            if st is not None:
                st.duration = e.get("duration")
                st.rows = e.get("rows")
                st.error = e.get("error")
                st.done = e.get("seq")
                if kind == "handle_error" and st.duration is None:
                    st.duration = e.get("ts", st.ts) - st.ts
        if e.get("session") is not None:
            self._locate(kind, e)
        self.events.append(e)

    def _locate(self, kind: Any, e: dict[str, Any], mark: bool = True) -> None:
        """Give a transition the call site it happened at, where that is known for certain: inside a
        flush (where the app flushed, committed or queried), a load (its SELECT), a commit."""
        where = (e.get("pid"), e["session"])
        sites = self._sites.get(where)
        if kind in ("before_flush", "before_commit", "before_cursor_execute") and e.get("site"):
            if sites is None:
                sites = self._sites[where] = {}
            sites[{"before_flush": "flush", "before_commit": "commit"}.get(kind, "statement")] = e["site"]
        elif sites is None:
            return
        elif kind == "after_flush_postexec":
            sites.pop("flush", None)
        elif kind in ("after_transaction_end", "session_close", "session_gone"):
            sites.pop("commit", None)
            if kind != "after_transaction_end":
                self._sites.pop(where, None)
        elif kind in LIFECYCLE and "site" not in e and mark:
            at = sites.get("flush") or (sites.get("statement") if kind == "loaded_as_persistent" else None) \
                or sites.get("commit")
            if at:
                e["at"] = at

    def extend(self, events: Iterable[dict[str, Any]]) -> None:
        for e in events:
            self.add(e)

    def truncate(self, seq: int) -> None:
        """Forget what came after ``seq``: a replay's step back, without reading anything again."""
        while self.events and self.events[-1].get("seq", 0) > seq:
            self.events.pop()
        while self.statements and self.statements[-1].seq > seq:
            st = self.statements.pop()
            self._running.pop((st.pid, st.connection), None)
        for st in self.statements:  # those still running at seq
            if st.done is not None and st.done > seq:
                st.duration = st.rows = st.error = st.done = None
                self._running[(st.pid, st.connection)] = st
        self._sites = {}  # the call sites in force at seq: as the events kept left them
        for e in self.events:
            if e.get("session") is not None:
                self._locate(e.get("kind"), e, mark=False)

    # ---- an object's story -------------------------------------------------------------------
    def story(self, pid: Any, key: str) -> list[dict[str, Any]]:
        """What happened to one object, oldest first: its transitions, edits, expiries and the
        flushes that wrote it (as far back as the journal goes)."""
        out = []
        for e in self.events:
            if e.get("pid") != pid:
                continue
            kind = e.get("kind")
            if kind in STORY:
                if (e.get("obj") or {}).get("key") == key:
                    out.append(e)
            elif kind == "after_flush" and _in_flush(e, key):
                out.append(e)
        return out

    def statements_for(self, pid: Any, key: str) -> list[Statement]:
        """Statements that touched the object: those of the flushes that wrote it, and the lazy loads
        and refreshes of it."""
        flushes = {e.get("flush") for e in self.events
                   if e.get("pid") == pid and e.get("kind") == "after_flush" and _in_flush(e, key)}
        return [st for st in self.statements
                if st.pid == pid and (((st.cause.get("obj") or {}).get("key") == key)
                                      or (st.cause.get("flush") is not None and st.cause.get("flush") in flushes))]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)


def _in_flush(e: dict[str, Any], key: str) -> bool:
    return any(ref.get("key") == key for name in FLUSH_LISTS for ref in e.get(name) or ())


# ---- the logs' one-line form and their filter --------------------------------------------------------
def one_line(e: dict[str, Any]) -> str:
    """What an event says, in one line: its object, statement, connection or transaction."""
    kind = e.get("kind")
    if e.get("obj"):
        text = describe(e["obj"])
        if e.get("attr"):
            value = e.get("value")
            shown = describe(value) if isinstance(value, dict) and "cls" in value else repr(value)
            text += f".{e['attr']} = {shown}" if kind == "set" else f".{e['attr']} {kind} {shown}"
        return text
    if e.get("statement"):
        return " ".join(e["statement"].split())
    if kind in ("before_flush", "after_flush"):
        return ", ".join(f"{len(e.get(n) or ())} {n}" for n in FLUSH_LISTS) + f" ({e.get('cause', 'flush')})"
    if kind == "session_snapshot":
        return f"as it was: {len(e.get('identity_map') or ())} in the identity map, " + ", ".join(
            f"{len(e.get(n) or ())} {n}" for n in FLUSH_LISTS)
    if e.get("transaction"):
        return f"{e['transaction']} {e.get('origin', '')}".rstrip()
    if e.get("connection"):
        return f"connection {e['connection']}" + (f" pool {e['pool']}" if e.get("pool") else "")
    if kind == "dropped":
        return f"{e.get('count')} events dropped"
    return ""


FILTER_FIELDS = {"kind": "kind", "session": "session", "thread": "thread", "pid": "pid", "conn": "connection"}


def matches(e: dict[str, Any], query: str) -> bool:
    """The logs' filter: words, all of which must match. ``kind:flush`` (part of the kind),
    ``session:s3``, ``thread:clerk-1``, ``pid:42``, ``conn:c2`` and ``cls:Book`` (exact); any other
    word is looked for in the kind and the one-line form, ignoring case."""
    if not query:
        return True
    text = None
    for word in query.split():
        name, sep, wanted = word.partition(":")
        if sep and name == "cls":
            cause = e.get("cause")
            about = cause.get("obj") if isinstance(cause, dict) else None  # a lazy load's or refresh's object
            if (e.get("obj") or {}).get("cls") != wanted and (about or {}).get("cls") != wanted:
                return False
        elif sep and name in FILTER_FIELDS:
            value = str(e.get(FILTER_FIELDS[name], ""))
            if (wanted.lower() not in value.lower()) if name == "kind" else value != wanted:
                return False
        else:
            if text is None:
                text = f"{e.get('kind', '')} {one_line(e)}".lower()
            if word.lower() not in text:
                return False
    return True


def statement_matches(st: Statement, query: str) -> bool:
    """The SQL log's filter: the same words, on a statement (``kind:`` is its cause)."""
    return matches({"kind": st.cause.get("kind", ""), "session": st.session, "thread": st.thread, "pid": st.pid,
                    "connection": st.connection, "statement": st.statement, "cause": st.cause}, query)
