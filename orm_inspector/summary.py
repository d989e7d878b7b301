"""``orm-inspector summary``: a plain-text account of a trace, read in one streaming pass."""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .transports.trace import TraceError, TraceReader


@dataclass
class SessionStats:
    threads: set[str] = field(default_factory=set)
    transactions: int = 0
    savepoints: int = 0
    commits: int = 0
    rollbacks: int = 0
    flushes: int = 0
    statements: int = 0
    open_transaction: bool = False
    root: str | None = None
    closed: bool = False


@dataclass
class Summary:
    header: dict[str, Any]
    kinds: Counter = field(default_factory=Counter)
    events: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    pids: set[int] = field(default_factory=set)
    threads: set[tuple[int, str]] = field(default_factory=set)
    sessions: dict[str, SessionStats] = field(default_factory=lambda: defaultdict(SessionStats))
    causes: Counter = field(default_factory=Counter)
    sql_time: float = 0.0
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    sql_errors: list[str] = field(default_factory=list)
    running: dict[tuple[Any, Any], tuple[str, str]] = field(default_factory=dict)  # connection -> statement
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked_out: dict[str, str] = field(default_factory=dict)  # connection -> pool
    max_checked_out: int = 0
    connections: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    lazy_loads: Counter = field(default_factory=Counter)
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    error_events: int = 0
    ended: dict[str, Any] | None = None

    def add(self, e: dict[str, Any]) -> None:
        kind = e["kind"]
        self.kinds[kind] += 1
        self.events += 1
        ts = e.get("ts")
        if ts is not None:
            if not isinstance(ts, (int, float)):
                raise ValueError(f"ts is {ts!r}, not a number")
            self.first_ts = ts if self.first_ts is None else self.first_ts
            self.last_ts = ts
        if "pid" in e:
            self.pids.add(e["pid"])
            if e.get("thread") != "orm-inspector":
                self.threads.add((e["pid"], e.get("thread")))
        obj = e.get("obj")
        if isinstance(obj, dict) and "key" in obj:
            self.objects.add(f'{e.get("pid")}:{obj["key"]}')
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(e)

    def _session(self, e: dict[str, Any]) -> SessionStats:
        s = self.sessions[f'{e.get("pid")}:{e["session"]}']
        if e.get("thread") != "orm-inspector":
            s.threads.add(e.get("thread"))
        return s

    def _on_after_transaction_create(self, e: dict[str, Any]) -> None:
        s = self._session(e)
        if e.get("origin") == "nested":
            s.savepoints += 1
        else:
            s.transactions += 1
            s.open_transaction = True
            s.root = e.get("transaction")
        s.closed = False

    def _on_after_transaction_end(self, e: dict[str, Any]) -> None:
        s = self._session(e)
        if e.get("transaction") == s.root:
            s.open_transaction, s.root = False, None

    def _on_after_commit(self, e: dict[str, Any]) -> None:
        self._session(e).commits += 1

    def _on_after_soft_rollback(self, e: dict[str, Any]) -> None:
        self._session(e).rollbacks += 1

    def _on_session_close(self, e: dict[str, Any]) -> None:
        s = self._session(e)
        s.closed, s.open_transaction = True, False

    _on_session_gone = _on_session_close

    def _on_session_snapshot(self, e: dict[str, Any]) -> None:
        """A session in use before the recording began: its open transaction, as it was."""
        s = self._session(e)
        s.closed = False
        for t in e.get("transactions") or ():
            if t.get("origin") != "nested":
                s.open_transaction, s.root = True, t.get("id")

    def _on_before_flush(self, e: dict[str, Any]) -> None:
        self._session(e).flushes += 1

    def _on_before_cursor_execute(self, e: dict[str, Any]) -> None:
        cause = (e.get("cause") or {}).get("kind", "other")
        self.causes[cause] += 1
        if cause == "lazy_load":
            self.lazy_loads[e["cause"].get("attribute")] += 1
        if e.get("session"):
            self._session(e).statements += 1
        self.running[(e.get("pid"), e.get("connection"))] = (e.get("statement") or "", e.get("site") or "")

    def _on_after_cursor_execute(self, e: dict[str, Any]) -> None:
        d = e.get("duration") or 0.0
        self.sql_time += d
        statement, site = self.running.pop((e.get("pid"), e.get("connection")), ("", ""))
        self.slowest.append((d, statement, site))
        if len(self.slowest) > 20:
            self.slowest = sorted(self.slowest, reverse=True)[:3]

    def _on_handle_error(self, e: dict[str, Any]) -> None:
        self.sql_errors.append(f'{e.get("error")} ({e.get("site") or "no call site"})')

    def _on_pool_info(self, e: dict[str, Any]) -> None:
        self.pools[f'{e.get("pid")}:{e["pool"]}'] = dict(e.get("info") or {}, checkouts=0)

    def _on_connect(self, e: dict[str, Any]) -> None:
        self.connections.add(f'{e.get("pid")}:{e.get("connection")}')

    def _on_checkout(self, e: dict[str, Any]) -> None:
        conn = f'{e.get("pid")}:{e.get("connection")}'
        self.connections.add(conn)
        self.checked_out[conn] = e["pool"]
        self.max_checked_out = max(self.max_checked_out, len(self.checked_out))
        pool = self.pools.get(f'{e.get("pid")}:{e["pool"]}')
        if pool is not None:
            pool["checkouts"] += 1

    def _on_checkin(self, e: dict[str, Any]) -> None:
        self.checked_out.pop(f'{e.get("pid")}:{e.get("connection")}', None)

    _on_close_detached = _on_invalidate = _on_close = _on_checkin  # the connection is no longer held

    def _on_dropped(self, e: dict[str, Any]) -> None:
        self.dropped += e.get("count") or 0

    def _on_inspector_error(self, e: dict[str, Any]) -> None:
        self.error_events += 1
        if len(self.errors) < 10:
            self.errors.append(f'{e.get("hook")}: {e.get("error")}')

    def _on_trace_end(self, e: dict[str, Any]) -> None:
        self.ended = e


def summarize(reader: TraceReader | Iterable[dict[str, Any]]) -> Summary:
    events = iter(reader)
    summary = Summary(header={})
    for e in events:
        try:
            summary.add(e)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            where = f"line {reader.line}" if isinstance(reader, TraceReader) else f"seq {e.get('seq')}"
            name = getattr(reader, "path", "trace")
            raise TraceError(f"{name}: {where}: a malformed {e.get('kind')!r} event "
                             f"({type(exc).__name__}: {exc})") from None
    summary.header = getattr(reader, "header", {})
    return summary


def _when(ts: float | None) -> str:
    if ts is None:
        return "?"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(summary: Summary, name: str, warnings: list[str]) -> str:
    h = summary.header
    out = [f'{name}: orm-inspector trace v{h.get("version")}, pid {h.get("pid")}, Python {h.get("python")}, '
           f'SQLAlchemy {h.get("sqlalchemy")}, started {_when(h.get("started"))}']
    span = (summary.last_ts - summary.first_ts) if summary.first_ts is not None else 0.0
    out.append(f"{summary.events} events over {span:.2f} s, {len(summary.pids)} process(es), "
               f"{len(summary.threads)} application thread(s)")
    out.append("")
    out.append("Events by kind:")
    for kind, n in sorted(summary.kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {kind:<28} {n:>8}")

    sessions = summary.sessions
    txns = sum(s.transactions for s in sessions.values())
    out.append("")
    out.append(f"Sessions: {len(sessions)}; transactions: {txns} "
               f"({sum(s.commits for s in sessions.values())} commits, "
               f"{sum(s.rollbacks for s in sessions.values())} rollbacks incl. savepoints), "
               f"savepoints: {sum(s.savepoints for s in sessions.values())}, "
               f"flushes: {sum(s.flushes for s in sessions.values())}")
    def name(key: str) -> str:  # "pid:s3" -> "s3" when there is one process
        return key.split(":", 1)[1] if len(summary.pids) == 1 else key

    for sid, s in list(sessions.items())[:20]:
        state = "closed" if s.closed else ("in transaction" if s.open_transaction else "idle")
        out.append(f"  {name(sid):<14} {state:<15} threads: {', '.join(sorted(t for t in s.threads if t))}; "
                   f"{s.transactions} txn, {s.flushes} flushes, {s.statements} statements")
    if len(sessions) > 20:
        out.append(f"  ... and {len(sessions) - 20} more")

    statements = sum(summary.causes.values())
    out.append("")
    out.append(f"SQL: {statements} statements, {summary.sql_time * 1000:.1f} ms in the database; by cause: "
               + (", ".join(f"{k} {n}" for k, n in summary.causes.most_common()) or "none"))
    for d, statement, site in sorted(summary.slowest, reverse=True)[:3]:
        out.append(f"  slowest: {d * 1000:8.2f} ms  {' '.join(statement.split())[:70]}  at {site or '?'}")
    if summary.lazy_loads:
        out.append("  lazy loads: " + ", ".join(f"{a} x{n}" for a, n in summary.lazy_loads.most_common(5)))

    out.append("")
    out.append(f"Connections: {len(summary.connections)} pooled connection(s), at most "
               f"{summary.max_checked_out} checked out at once")
    for pid_pool, info in summary.pools.items():
        size = f', size {info["size"]}' if "size" in info else ""
        overflow = f', overflow {info["max_overflow"]}' if "max_overflow" in info else ""
        out.append(f'  pool {name(pid_pool)}: {info.get("class")}{size}{overflow}, {info["checkouts"]} checkouts')
    out.append(f"Objects: {len(summary.objects)} instances seen")

    warn = list(warnings)
    if summary.ended is None:
        warn.append("no trace_end: the recording did not finish cleanly (crash or still running)")
    if summary.dropped:
        warn.append(f"{summary.dropped} events dropped (the inspector's queue was full): the trace is incomplete")
    warn += [f"inspector error: {e}" for e in summary.errors]
    # trace_end counts the process's errors, the header those before the recording began
    counted = ((summary.ended or {}).get("errors") or 0) - (summary.header.get("errors_at_start") or 0)
    if counted > summary.error_events:  # failures of the last moments, after the last inspector_error line
        warn.append(f"{counted} inspector error(s) happened during the recording, "
                    f"{summary.error_events} of them reported in this trace")
    warn += [f"SQL error: {e}" for e in summary.sql_errors[:10]]
    if summary.checked_out:
        warn.append(f"{len(summary.checked_out)} connection(s) still checked out at the end: "
                    + ", ".join(name(c) for c in sorted(summary.checked_out)[:10]))
    open_txn = [sid for sid, s in sessions.items() if s.open_transaction]
    if open_txn:
        warn.append(f"{len(open_txn)} session(s) still in a transaction at the end: "
                    + ", ".join(name(sid) for sid in open_txn[:10]))
    for attr, n in summary.lazy_loads.items():
        if n >= 10:
            warn.append(f"{attr} was lazy-loaded {n} times: an N+1 pattern? (selectinload / joinedload)")
    out.append("")
    out.append("Warnings:" if warn else "Warnings: none")
    out += [f"  - {w}" for w in warn]
    return "\n".join(out) + "\n"
