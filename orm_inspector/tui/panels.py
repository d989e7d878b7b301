"""The panes of the inspector. Each one renders a ``View`` and nothing else: ``show(view, now)``
draws it, reading the state, never changing it (but for taking the "touched" keys it has drawn)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Sparkline, Static

from ..state.journal import describe, matches, one_line, statement_matches
from ..state.model import ObjectState, SessionState
from ..state.view import ReplayView, View, session_status
from .look import (
    LONG_CHECKOUT,
    STATE_COLORS,
    age,
    change_lines,
    clock,
    gauge,
    ref_text,
    state_text,
    status_text,
    value_text,
)
from .tables import KeyedTable

LOG_ROWS = 200  # rows the event and SQL logs show: the most recent that match the filter
CLOSED_ROWS = 5  # closed sessions listed in the overview, per process
MAX_OBJECT_ROWS = 2000  # objects in the session table at once (see SessionPane)
SET_ROWS = 8  # objects listed under new, dirty and deleted


def _session_key(pid: Any, sid: str) -> str:
    return f"{pid}/{sid}"


def split_session_key(key: str) -> tuple[Any, str]:
    pid, _, sid = key.partition("/")
    return (int(pid) if pid.isdigit() else (None if pid == "None" else pid)), sid


class Overview(Vertical):
    """Processes and their sessions, the pools, and how busy the app is."""

    class SessionChosen(Message):
        def __init__(self, key: str) -> None:
            self.key = key
            super().__init__()

    def compose(self) -> ComposeResult:
        yield Static(id="processes")
        yield KeyedTable(("pid", "pid"), ("session", "session"), ("thread", "thread"), ("status", "status"),
                         ("age", "age"), ("objects", "objects"), ("new", "new"), ("dirty", "dirty"),
                         ("deleted", "deleted"), ("txn", "transaction"), ("sql", "SQL"), id="sessions")
        with Horizontal(id="pulse"):
            with VerticalScroll(id="pools-scroll"):  # a pre-fork server's workers have a pool each
                yield Static(id="pools")
            with Vertical(id="rates"):
                yield Static("events/s", id="events-rate-label")
                yield Sparkline([], id="events-rate")
                yield Static("SQL/s", id="sql-rate-label")
                yield Sparkline([], id="sql-rate")

    def show(self, view: View, now: float) -> None:
        procs = []
        for p in view.processes.values():
            status = Text(p.status, style={"live": "green", "ended": "grey62", "lost": "bold red",
                                           "recording": "cyan"}.get(p.status, ""))
            line = Text.assemble(f"pid {p.pid} ", status, f" {p.reason}" if p.reason else "",
                                 f"  {' '.join(p.argv)[:80]}" if p.argv else "")
            procs.append(line)
        closed = [sid for p in view.processes.values() for sid in list(p.state.closed_sessions)[-CLOSED_ROWS:]]
        closed_total = sum(len(p.state.closed_sessions) + p.state.closed_earlier for p in view.processes.values())
        if closed_total:
            procs.append(Text(f"closed sessions: {closed_total} (latest: {', '.join(closed[-CLOSED_ROWS:])})",
                              style="grey62"))
        if view.notes:
            procs.append(Text(f"app: {view.notes[-1]}", style="italic"))
        self.query_one("#processes", Static).update(Text("\n").join(procs) if procs else "waiting for events...")
        rows = []
        for p, s in view.sessions():
            counts = _counts(s)
            txn = next((t for t in s.transactions.values() if t.origin != "nested"), None)
            nested = sum(1 for t in s.transactions.values() if t.origin == "nested")
            txn_text = "" if txn is None else txn.id + (f" +{nested} savepoint(s)" if nested else "")
            rows.append((_session_key(p.pid, s.id), (
                str(p.pid), s.id, s.thread or "", status_text(session_status(s)), age(s.since, p.now(now)),
                str(len(s.identity_map)), *counts, txn_text, str(s.statements))))
        self.query_one("#sessions", KeyedTable).sync(rows)
        self.query_one("#pools", Static).update(pool_summary(view, now))
        rates = view.rates
        ev, sql = rates.current()
        self.query_one("#events-rate-label", Static).update(f"events/s: {ev}")
        self.query_one("#sql-rate-label", Static).update(f"SQL/s: {sql}")
        self.query_one("#events-rate", Sparkline).data = rates.per_second(1)[-40:]
        self.query_one("#sql-rate", Sparkline).data = rates.per_second(2)[-40:]

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        if event.data_table.id == "sessions":
            self.post_message(self.SessionChosen(event.row_key.value))


def _counts(s: SessionState) -> tuple[str, str, str]:
    dirty = len(s.dirty) - sum(1 for k in s.deleted if k in s.dirty)  # marked deleted: not dirty (to_json)
    return str(len(s.new)), str(dirty), str(len(s.deleted))


def pool_summary(view: View, wall: float) -> Text:
    out = Text()
    for p in view.processes.values():
        now = p.now(wall)
        st = p.state
        pools = dict(st.pools)
        for c in st.connections.values():
            pools.setdefault(c.pool, {})
        for pool_id, info in pools.items():
            conns = [c for c in st.connections.values() if c.pool == pool_id]
            out_now = sum(1 for c in conns if c.status == "checked_out")
            size = info.get("size")
            overflow = info.get("max_overflow")
            out.append(f"{pool_id} {info.get('class', '?')} pid {p.pid}\n", style="bold")
            if isinstance(size, int) and size > 0:
                out.append(f"  {gauge(out_now, size, 12)} {out_now}/{size} out")
                if overflow:
                    out.append(f" (+{overflow} overflow)")
            else:
                out.append(f"  {out_now} out")
            idle = sum(1 for c in conns if c.status == "idle")
            bad = sum(1 for c in conns if c.status == "invalidated")
            out.append(f", {idle} idle" + (f", {bad} invalidated" if bad else "") + "\n")
            longest = max((c for c in conns if c.status == "checked_out" and c.since), key=lambda c: now - c.since,
                          default=None)
            if longest is not None:
                held = now - longest.since
                holder = longest.session or longest.thread
                out.append(f"  longest held: {longest.id} by {holder} for {age(longest.since, now)}\n",
                           style="bold red" if held >= LONG_CHECKOUT else "")
    return out if out.plain else Text("no pool yet")


class SessionPane(Vertical):
    """One session: its identity map, new/dirty/deleted, transactions, and the selected object.

    The table holds at most ``MAX_OBJECT_ROWS`` objects: the session's changes first (new, dirty,
    deleted), then the rest of the identity map; a filter finds any other. A screen of a hundred
    thousand rows helps nobody, and costs seconds to lay out."""

    def compose(self) -> ComposeResult:
        yield Static(id="session-title")
        with Horizontal(id="session-body"):
            with Vertical(id="session-main"):
                yield Input(placeholder="filter objects: class, identity, key or state (e.g. Book 42)",
                            id="object-filter", classes="filter")
                yield KeyedTable(("key", "key"), ("cls", "class"), ("identity", "identity"), ("state", "state"),
                                 ("marks", "marks"), id="objects")
            with VerticalScroll(id="session-side"):
                yield Static(id="sets")
                yield Static(id="transactions")
        yield Static(id="object-detail")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: tuple[str, str] | None = None  # the session key and the filter the table shows

    def show(self, view: View, key: str | None, now: float) -> None:
        table = self.query_one("#objects", KeyedTable)
        title = self.query_one("#session-title", Static)
        s = view.session(*split_session_key(key)) if key else None
        if s is None:
            title.update("no open session: choose one in the overview (1), with enter or a click"
                         if key is None else f"session {split_session_key(key)[1]} is closed: nothing left to show. "
                                             "a: follow the busiest open session; 1: choose another")
            table.reset()
            self.shown = None
            self.query_one("#sets", Static).update("")
            self.query_one("#transactions", Static).update("")
            self.query_one("#object-detail", Static).update("")
            return
        pid, sid = split_session_key(key)
        now = view.processes[pid].now(now)
        query = self.query_one("#object-filter", Input).value.strip()
        touched = view.take_touched(pid, sid)
        if self.shown is None or self.shown[0] != key:
            table.reset()
        if self.shown != (key, query) or touched is None or touched or table.behind:
            picked = pick_objects(s, query, keep=table.keys if self.shown == (key, query) else ())
            table.sync((o.key, object_cells(o, s)) for o in picked)
            shown = len(picked)
        else:
            shown = len(table.keys)
        self.shown = (key, query)
        total = len(s.identity_map) + len(s.new) + len(s.flushed_deleted)
        listing = f"{total} objects" if shown == total and not query else f"{shown} of {total} objects shown" + (
            f" (the first {MAX_OBJECT_ROWS}: filter to find others)" if shown == MAX_OBJECT_ROWS else "")
        title.update(Text.assemble((f"session {sid}", "bold"), f" · pid {pid} · {s.thread or '?'} · ",
                                   status_text(session_status(s)), f" · {age(s.since, now)} old",
                                   f" · {s.flushes} flushes · {s.statements} SQL · {listing}"))
        self.query_one("#sets", Static).update(sets_text(s))
        self.query_one("#transactions", Static).update(transactions_text(s, now))
        self.show_detail(view)

    def show_detail(self, view: View) -> None:
        """The selected object: on every frame, and at once when the cursor moves."""
        if self.shown is None:
            return
        pid, sid = split_session_key(self.shown[0])
        s = view.session(pid, sid)
        selected = self.query_one("#objects", KeyedTable).selected_key()
        obj = s.objects().get(selected) if s is not None and selected else None
        self.query_one("#object-detail", Static).update(object_detail(view, pid, s, obj) if obj else
                                                        "select an object to see its changes, story and SQL")


def pick_objects(s: SessionState, query: str, keep: Iterable[str] = ()) -> list[ObjectState]:
    """What the objects table shows, at most MAX_OBJECT_ROWS matching ``query`` (every word in the
    class, identity, key, state or new/dirty/deleted): those it shows already (``keep``: rows stay
    put), then the changes (new, dirty, deleted), then the rest of the identity map."""
    words = query.lower().split()
    picked: dict[str, ObjectState] = {}
    objects = s.objects()
    groups = ((objects[k] for k in keep if k in objects), s.new.values(),
              (s.identity_map[k] for k in s.dirty if k in s.identity_map),
              (s.identity_map[k] for k in s.deleted if k in s.identity_map), s.flushed_deleted.values(),
              s.identity_map.values())
    for group in groups:
        for o in group:
            if o.key in picked:
                continue
            if words:
                marks = " ".join(name for name, keys in (("new", s.new), ("dirty", s.dirty), ("deleted", s.deleted))
                                 if o.key in keys)
                text = f"{o.cls} {' '.join(map(str, o.identity or ()))} {o.key} {o.state} {marks}".lower()
                if not all(w in text for w in words):
                    continue
            picked[o.key] = o
            if len(picked) >= MAX_OBJECT_ROWS:
                return list(picked.values())
    return list(picked.values())


def object_cells(o: ObjectState, s: SessionState) -> tuple:
    marks = []
    if o.key in s.deleted:
        marks.append("marked deleted")
    elif o.modified:
        marks.append("modified: " + ",".join(sorted(o.modified)))
    if o.expired:
        marks.append("expired")
    identity = ",".join(str(v) for v in o.identity) if o.identity else "-"
    return (o.key, o.cls, identity, state_text(o.state), " ".join(marks))


def sets_text(s: SessionState) -> Text:
    out = Text()
    dirty = len(s.dirty) - sum(1 for k in s.deleted if k in s.dirty)  # marked deleted: not dirty (to_json)
    groups = (("new", len(s.new), s.new.values(), "pending"),
              ("dirty", dirty, (s.identity_map[k] for k in s.dirty if k in s.identity_map and k not in s.deleted),
               "persistent"),
              ("deleted", len(s.deleted), (s.identity_map[k] for k in s.deleted if k in s.identity_map), "persistent"),
              ("deleted by flush, not yet committed", len(s.flushed_deleted), s.flushed_deleted.values(), "deleted"))
    for name, count, objs, state in groups:
        if not count and name.startswith("deleted by"):
            continue
        out.append(f"{name} ({count})\n", style="bold")
        for o in islice(objs, SET_ROWS):
            out.append("  ")
            out.append_text(ref_text(o.ref(), state))
            out.append("\n")
        if count > SET_ROWS:
            out.append(f"  ... {count - SET_ROWS} more\n")
    return out


def transactions_text(s: SessionState, now: float) -> Text:
    out = Text("transactions\n", style="bold")
    if not s.transactions:
        out.append("  none open (a new one begins at first use)\n")
        return out
    depth: dict[str, int] = {}
    for t in s.transactions.values():
        level = depth.get(t.parent or "", -1) + 1 if t.parent in depth else 0
        depth[t.id] = level
        kind = "savepoint" if t.origin == "nested" else t.origin
        conns = ", ".join(t.connections) or "no connection yet"
        out.append("  " + "  " * level + f"{t.id} {kind} ({conns}) for {age(t.since, now)}\n")
    return out


def object_detail(view: View, pid: Any, s: SessionState, o: ObjectState) -> Text:
    out = Text()
    out.append(f"{describe(o.ref())}  {o.key}  ", style="bold")
    out.append_text(state_text(o.state))
    out.append("\n")
    if o.changes:
        out.append("changes not yet flushed (old -> new):\n", style="bold")
        for line in change_lines(o.changes):
            out.append(f"  {line}\n")
    if o.flushed:
        out.append("written by its last flush (old -> new):\n", style="bold")
        for line in change_lines(o.flushed):
            out.append(f"  {line}\n")
    if o.expired:
        out.append("expired: the next attribute read loads it again (a refresh)\n")
    story = view.story(o.key) if isinstance(view, ReplayView) else view.journal.story(pid, o.key)
    out.append("story:\n", style="bold")
    for e in story[-12:]:
        where = short_site(e.get("site") or e.get("at"))
        what = e["kind"]
        if e.get("attr"):
            what += f" {e['attr']}"
            if e["kind"] == "set":
                what += f" = {value_text(e.get('value'))}"
        if e["kind"] == "after_flush":
            what = f"written by flush {e.get('flush')}"
        out.append(f"  {e.get('seq')} {clock(e.get('ts'))} {what} [{e.get('thread')}] {where}\n",
                   style=STATE_COLORS.get(_to_state(e["kind"]), ""))
    statements = view.journal.statements_for(pid, o.key)
    if statements:
        out.append("SQL that touched it:\n", style="bold")
        for st in statements[-6:]:
            out.append(f"  {st.seq} {st.cause_text}: {' '.join(st.statement.split())[:90]}\n")
    return out


def _to_state(kind: str) -> str:
    return kind.rpartition("_to_")[2] if "_to_" in kind else ""


class ConnectionsPane(Vertical):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pool-summary-scroll"):
            yield Static(id="pool-summary")
        yield KeyedTable(("id", "connection"), ("pool", "pool"), ("pid", "pid"), ("status", "status"),
                         ("session", "session"), ("thread", "thread"), ("held", "held for"),
                         ("checkouts", "checkouts"), ("invalidations", "invalidated"), ("site", "checkout site"),
                         id="connections")

    def show(self, view: View, now: float) -> None:
        self.query_one("#pool-summary", Static).update(pool_summary(view, now))
        rows = []
        wall = now
        for p in view.processes.values():
            now = p.now(wall)
            for c in p.state.connections.values():
                held = ""
                if c.status == "checked_out" and c.since:
                    held = Text(age(c.since, now), style="bold red" if now - c.since >= LONG_CHECKOUT else "")
                rows.append((f"{p.pid}/{c.id}", (c.id, c.pool, str(p.pid), status_text(c.status), c.session or "",
                                                 c.thread or "", held, str(c.checkouts), str(c.invalidations),
                                                 short_site(c.site))))
        self.query_one("#connections", KeyedTable).sync(rows)


def short_site(site: str | None) -> str:
    """``app.py:42:handler`` from a full path."""
    return (site or "").rsplit("/", 1)[-1]


class EventLog(Vertical):
    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words, kind:flush session:s3 cls:Book thread:clerk-1 pid:42",
                    id="event-filter", classes="filter")
        yield KeyedTable(("seq", "seq"), ("time", "time"), ("kind", "kind"), ("session", "session"),
                         ("thread", "thread"), ("what", "what"), id="event-log")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_text = ""
        self.drawn_end = 0  # the seq of the last event when the log was last drawn

    def show(self, view: View, now: float) -> None:
        query = self.query_one("#event-filter", Input).value.strip()
        table = self.query_one("#event-log", KeyedTable)
        if not log_moves(self, table, query, view):
            return
        picked = latest(view.journal.events, lambda e: matches(e, query))
        table.sync(((f"{e.get('pid')}/{e.get('seq')}", event_cells(e)) for e in picked), follow=True)


def log_moves(pane: Any, table: KeyedTable, query: str, view: View) -> bool:
    """Whether a log is redrawn. Live, it follows its end while the cursor is on its last row (or it
    is empty); when the reader moves up, it stays still until they go back. In a replay it always
    shows the events up to the one replayed, afresh after a step back. A new filter starts it anew."""
    end = view.journal.events[-1].get("seq", 0) if view.journal.events else 0
    back = end < pane.drawn_end
    pane.drawn_end = end
    if query != pane.query_text or back:
        table.reset()
        pane.query_text = query
        return True
    return isinstance(view, ReplayView) or table.row_count == 0 or table.cursor_row >= table.row_count - 1


def latest(items: Any, keep: Any, limit: int = LOG_ROWS) -> list[Any]:
    """The last ``limit`` items that ``keep`` accepts, oldest first."""
    picked = []
    for item in reversed(items):
        if keep(item):
            picked.append(item)
            if len(picked) >= limit:
                break
    picked.reverse()
    return picked


def event_cells(e: dict[str, Any]) -> tuple:
    kind = e.get("kind", "")
    return (str(e.get("seq", "")), clock(e.get("ts")), Text(kind, style=STATE_COLORS.get(_to_state(kind), "")),
            e.get("session") or "", e.get("thread") or "", one_line(e)[:160])


class SQLLog(Vertical):
    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words, kind:lazy_load (the cause) session:s3 cls:Book conn:c1",
                    id="sql-filter", classes="filter")
        yield KeyedTable(("seq", "seq"), ("session", "session"), ("cause", "cause"), ("ms", "ms"), ("rows", "rows"),
                         ("statement", "statement"), id="statements")
        yield Static(id="sql-detail")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_text = ""
        self.drawn_end = 0  # the seq of the last event when the log was last drawn
        self.by_key: dict[str, Any] = {}

    def show(self, view: View, now: float) -> None:
        query = self.query_one("#sql-filter", Input).value.strip()
        table = self.query_one("#statements", KeyedTable)
        if not log_moves(self, table, query, view):
            self.show_detail()
            return
        picked = latest(view.journal.statements, lambda st: statement_matches(st, query))
        self.by_key = {f"{st.pid}/{st.seq}": st for st in picked}
        table.sync(((key, statement_cells(st)) for key, st in self.by_key.items()), follow=True)
        self.show_detail()

    def show_detail(self) -> None:
        selected = self.by_key.get(self.query_one("#statements", KeyedTable).selected_key() or "")
        self.query_one("#sql-detail", Static).update(statement_detail(selected) if selected else "")


def statement_cells(st: Any) -> tuple:
    ms = "" if st.duration is None else f"{st.duration * 1000:.2f}"
    if st.error:
        ms = Text("error", style="bold red")
    cause_style = {"lazy_load": "magenta", "autoflush": "yellow", "refresh": "cyan"}.get(st.cause.get("kind"), "")
    return (str(st.seq), st.session or "", Text(st.cause_text, style=cause_style), ms,
            "" if st.rows is None or st.rows < 0 else str(st.rows), " ".join(st.statement.split())[:200])


def statement_detail(st: Any) -> Text:
    out = Text()
    out.append(f"{st.statement.strip()}\n", style="bold")
    out.append(f"parameters: {st.parameters!r}{' (executemany)' if st.executemany else ''}\n")
    out.append(f"cause: {st.cause_text}   session {st.session or '-'}  transaction {st.transaction or '-'}  "
               f"connection {st.connection or '-'}  thread {st.thread}\n")
    out.append(f"from: {st.site or 'unknown'}\n")
    if st.duration is not None:
        rows = f", {st.rows} row(s)" if st.rows not in (None, -1) else ""
        out.append(f"took {st.duration * 1000:.3f} ms{rows}\n")
    if st.error:
        out.append(f"error: {st.error}\n", style="bold red")
    return out
