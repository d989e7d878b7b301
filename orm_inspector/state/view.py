"""What a viewer knows: one ``State`` per process, the journal of recent events, the rates, and how
each source is doing. Pure Python, fed by whoever reads the source; the TUI renders it.

A live view folds every event as it comes (``apply``). A replay view (``ReplayView``) moves over a
recorded trace with the timeline's checkpoints (``seek``, ``step``, ``jump``) and rebuilds the journal
from the events just before the point it shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .journal import Journal
from .model import SessionState, State
from .timeline import Timeline

RATE_SECONDS = 60  # per-second counts kept for the rate sparklines
_EVERYTHING = {"after_commit", "after_rollback", "after_soft_rollback", "session_close", "session_snapshot"}


@dataclass
class Process:
    pid: Any
    state: State = field(default_factory=State)
    argv: list[str] = field(default_factory=list)
    status: str = "live"  # live, ended (the app finished), lost (the connection broke)
    reason: str = ""
    last: float | None = None  # the time of its last event
    ended_at: float | None = None  # when it stopped talking: its ages stop there

    def now(self, now: float) -> float:
        """The clock its ages are counted with: ``now`` while it is live, its end after."""
        return self.ended_at if self.ended_at is not None else now


def session_status(s: SessionState) -> str:
    """idle, in transaction, flushing or closed: what a Session is doing right now."""
    if s.closed:
        return "closed"
    if s.flushing:
        return "flushing"
    if s.transactions:
        return "in transaction"
    return "idle"


class Rates:
    """Events and statements per second of event time (so that a replay shows the app's own pace)."""

    def __init__(self) -> None:
        self.events: deque[list[int]] = deque(maxlen=RATE_SECONDS)  # [second, events, statements]

    def add(self, e: dict[str, Any]) -> None:
        second = int(e.get("ts") or 0)
        if not self.events or self.events[-1][0] != second:
            if self.events and second < self.events[-1][0]:
                return  # another process's clock slightly behind: counted in the current second
            self.events.append([second, 0, 0])
        bucket = self.events[-1]
        bucket[1] += 1
        if e.get("kind") == "before_cursor_execute":
            bucket[2] += 1

    def per_second(self, column: int) -> list[int]:
        """Counts for the last seconds, oldest first, with quiet seconds as zeros."""
        if not self.events:
            return []
        last = self.events[-1][0]
        counts = {b[0]: b[column] for b in self.events}
        return [counts.get(second, 0) for second in range(last - RATE_SECONDS + 1, last + 1)]

    def current(self) -> tuple[int, int]:
        """Events and statements in the last complete second (the current one while it is the only one)."""
        if not self.events:
            return 0, 0
        b = self.events[-2] if len(self.events) > 1 else self.events[-1]
        return b[1], b[2]


class View:
    def __init__(self, journal_size: int = 20_000) -> None:
        self.processes: dict[Any, Process] = {}
        self.journal = Journal(journal_size)
        self.rates = Rates()
        self.version = 0  # moves on every change: the UI redraws when it differs from what it drew
        self.notes: deque[str] = deque(maxlen=100)  # what the watched program says (the demo's narration)
        # Objects changed since the UI last asked, per (pid, session); None: look at all of them.
        self._touched: dict[tuple[Any, str], set[str] | None] = {}
        self._all_touched = False

    def hello(self, hello: dict[str, Any]) -> Process:
        """A process starts talking: from its snapshot (``state``, a live app) or from nothing (a trace)."""
        pid = hello.get("pid")
        snapshot = hello.get("state")
        p = self.processes[pid] = Process(pid, State.from_json(snapshot) if snapshot else State(),
                                          list(hello.get("argv") or (hello.get("header") or {}).get("argv") or []))
        self.version += 1
        return p

    def apply(self, e: dict[str, Any]) -> None:
        pid = e.get("pid")
        p = self.processes.get(pid)
        if p is None:
            p = self.processes[pid] = Process(pid)
        kind = e.get("kind")
        if kind == "trace_end":
            p.status = "ended"
        p.last = e.get("ts", p.last)
        p.state.apply(e)
        self.journal.add(e)
        self.rates.add(e)
        self._touch(pid, kind, e)
        self.version += 1

    def _touch(self, pid: Any, kind: Any, e: dict[str, Any]) -> None:
        sid = e.get("session")
        if sid is None:
            return
        where = (pid, sid)
        if kind == "session_gone":  # nothing left to show: and the dict does not grow with every session
            self._touched.pop(where, None)
            return
        keys = self._touched.setdefault(where, set())
        if keys is None:
            return
        if kind in _EVERYTHING:
            self._touched[where] = None
        elif e.get("obj"):
            keys.add(e["obj"]["key"])
        elif kind in ("before_flush", "after_flush", "expire"):
            for name in ("new", "dirty", "deleted"):
                keys.update(ref["key"] for ref in e.get(name) or ())

    def take_touched(self, pid: Any, sid: str) -> set[str] | None:
        """The keys of the objects of a session changed since the last call (None: maybe all)."""
        if self._all_touched:
            self._all_touched = False
            self._touched.clear()
            return None
        return self._touched.pop((pid, sid), set())

    def end(self, pid: Any, status: str, reason: str = "") -> None:
        """The source of ``pid`` (None: every process) stopped: ``ended`` or ``lost``."""
        for p in self.processes.values() if pid is None else [self.processes.get(pid)]:
            if p is not None and p.status == "live":
                p.status, p.reason = status, "" if reason == status else reason.removeprefix(status + ": ")
                p.ended_at = p.last
        self.version += 1

    # ---- reading ---------------------------------------------------------------------------------
    def sessions(self) -> Iterator[tuple[Process, SessionState]]:
        for p in self.processes.values():
            for s in p.state.sessions.values():
                yield p, s

    def session(self, pid: Any, sid: str) -> SessionState | None:
        p = self.processes.get(pid)
        return p.state.sessions.get(sid) if p else None

    def counters(self) -> dict[str, int]:
        states = [p.state for p in self.processes.values()]
        return {"events": sum(s.events for s in states), "dropped": sum(s.dropped for s in states),
                "errors": sum(s.errors for s in states)}


class ReplayView(View):
    """A recorded trace, seen at one event at a time. ``window`` events before it fill the journal."""

    def __init__(self, timeline: Timeline, window: int = 5_000) -> None:
        super().__init__(journal_size=window)
        self.timeline = timeline
        self.window = window
        header = timeline.header
        self.pid = header.get("pid")
        self.argv = list(header.get("argv") or [])
        self.seek(timeline.last_seq)

    @property
    def seq(self) -> int:
        return self.timeline.state.seq

    @property
    def last_seq(self) -> int:
        return self.timeline.last_seq

    def seek(self, seq: int) -> None:
        before = self.timeline.state.seq if self.processes else None
        state = self.timeline.seek(seq)
        if before is not None and 0 <= state.seq - before < self.window:
            first = before + 1  # a step forward: the journal just takes the new events
        elif before is not None and 0 < before - state.seq < self.window // 2:
            first = state.seq + 1  # a step back: the journal forgets the last events
            self.journal.truncate(state.seq)
            self.rates = Rates()
            for e in self.journal.events:
                self.rates.add(e)
            self._all_touched = True
        else:
            first = max(1, state.seq - self.window + 1)
            self.journal = Journal(self.window)
            self.rates = Rates()
            self._all_touched = True
        for e in self.timeline.events(first, state.seq):
            self.journal.add(e)
            self.rates.add(e)
            self._touch(self.pid, e.get("kind"), e)
        self.processes = {self.pid: Process(self.pid, state, self.argv, status="recording")}
        self.version += 1

    def step(self, delta: int) -> None:
        self.seek(self.seq + delta)

    def jump(self, mark: str, direction: int, key: str | None = None) -> bool:
        """To the next (direction 1) or previous (-1) flush, commit, rollback or, with ``key``, event
        of that object. False when there is none."""
        seq = self.timeline.next_mark(mark, self.seq, direction, key)
        if seq is None:
            return False
        self.seek(seq)
        return True

    def story(self, key: str) -> list[dict[str, Any]]:
        """The object's whole lifecycle up to now (not just the journal's window); events the journal
        holds come from it, with the call sites it found for them."""
        known = {e.get("seq"): e for e in self.journal.story(self.pid, key)}
        return [known.get(e["seq"], e) for e in self.timeline.object_events(key, upto=self.seq)]
