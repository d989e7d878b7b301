"""The inspector's screen: one app for ``demo``, ``connect`` and ``replay``.

Live, events arrive on a pump's thread and are folded into the ``View`` a few times a second on
this one; the visible pane is redrawn at most ``FRAMES_PER_SECOND`` times a second, and only when
something changed. Replay moves a ``ReplayView`` over the trace's timeline. Either way the panes
render the view and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Label, Static, TabbedContent, TabPane

from ..state.view import ReplayView, View
from ..transports.pump import SourcePump
from .panels import ConnectionsPane, EventLog, Overview, SessionPane, SQLLog
from .tables import KeyedTable

FRAMES_PER_SECOND = 4
FOLDS_PER_SECOND = 20
FOLD_SLICE = 2_000  # events folded at a time (about 25 ms): up to 40,000 a second
SPEEDS = (1, 10, 100, 1000, 10000)  # replay: events per second when playing


class GoTo(ModalScreen[int | None]):
    """Asks for a seq to go to."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        yield Label("go to event (seq):")
        yield Input(placeholder="a number", id="goto", type="integer")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(int(event.value) if event.value.strip().lstrip("-").isdigit() else None)


class InspectorApp(App):
    TITLE = "orm-inspector"
    CSS_PATH = Path(__file__).with_name("inspector.tcss")  # absolute: subclasses elsewhere find it too
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("1", "show_tab('overview')", "overview"),
        Binding("2", "show_tab('session')", "session"),
        Binding("3", "show_tab('pool')", "pool"),
        Binding("4", "show_tab('events')", "events"),
        Binding("5", "show_tab('sql')", "SQL"),
        Binding("slash", "filter", "filter"),
        Binding("a", "follow_busiest", "busiest session", show=False),
        Binding("escape", "leave_filter", "back to the table", show=False),
    ]
    LIVE_BINDINGS = [Binding("space", "pause", "pause/resume")]
    REPLAY_BINDINGS = [
        Binding("comma", "step(-1)", "back"),
        Binding("full_stop", "step(1)", "next"),
        Binding("left_square_bracket", "jump('flush', -1)", "prev flush"),
        Binding("right_square_bracket", "jump('flush', 1)", "next flush"),
        Binding("c", "jump('commit', 1)", "next commit"),
        Binding("C", "jump('commit', -1)", "prev commit", show=False),
        Binding("r", "jump('rollback', 1)", "next rollback"),
        Binding("R", "jump('rollback', -1)", "prev rollback", show=False),
        Binding("o", "jump('object', 1)", "object's next"),
        Binding("O", "jump('object', -1)", "object's prev", show=False),
        Binding("g", "goto", "go to seq"),
        Binding("space", "play", "play/stop"),
        Binding("plus", "speed(1)", "faster", show=False),
        Binding("minus", "speed(-1)", "slower", show=False),
        Binding("less_than_sign", "step(-100)", "back 100", show=False),
        Binding("greater_than_sign", "step(100)", "next 100", show=False),
    ]

    def __init__(self, view: View, *, pump: SourcePump | None = None, title: str = "",
                 on_exit: Callable[[], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.view = view
        self.pump = pump
        self.replay = isinstance(view, ReplayView)
        self.sub_title = title
        self.on_exit_hook = on_exit
        self.clock = clock
        self.hints = True  # a first-look notification of the keys (tests turn it off)
        self.warnings: list[str] = []  # said when the screen opens: a trace cut off, say
        self.paused = False
        self.playing = False
        self.play_debt = 0.0  # events owed to the playing speed, carried from frame to frame
        self.speed_index = 1
        self.selected_session: str | None = None
        self.chosen = False  # the user chose the session shown; else it follows the busiest open one
        self.drawn: tuple[Any, ...] | None = None  # what the visible pane last showed
        self.frames = 0
        for binding in self.REPLAY_BINDINGS if self.replay else self.LIVE_BINDINGS:
            self._bindings.bind(binding.key, binding.action, binding.description, show=binding.show)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="overview"):
            with TabPane("1 Overview", id="overview"):
                yield Overview()
            with TabPane("2 Session", id="session"):
                yield SessionPane()
            with TabPane("3 Pool", id="pool"):
                yield ConnectionsPane()
            with TabPane("4 Events", id="events"):
                yield EventLog()
            with TabPane("5 SQL", id="sql"):
                yield SQLLog()
        with Horizontal(id="bottom"):
            yield Static(id="status")
        if self.replay:
            yield Static(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1 / FRAMES_PER_SECOND, self.tick)
        if self.pump is not None:
            self.set_interval(1 / FOLDS_PER_SECOND, self.take)
        self.refresh_screen(force=True)
        for warning in self.warnings:
            self.notify(warning, severity="warning", timeout=10)
        if self.replay and self.hints:
            self.notify(f"the end of the trace (seq {self.view.last_seq}). space plays from the start, "
                        ", and . step, \\[ and ] jump between flushes, g goes to a seq, ? lists the keys", timeout=8)

    # ---- the loop ----------------------------------------------------------------------------------
    def take(self) -> None:
        """Fold what arrived, a slice at a time: a key pressed meanwhile waits for one slice at most."""
        if self.pump is not None:
            self.pump.drain(self.view, limit=FOLD_SLICE)

    def tick(self) -> None:
        """Redraw if anything changed (at most FRAMES_PER_SECOND a second)."""
        if self.replay and self.playing:
            self.play_debt += SPEEDS[self.speed_index] / FRAMES_PER_SECOND  # fractions carry over
            step, self.play_debt = int(self.play_debt), self.play_debt % 1
            if step:
                self.view.step(step)
            if self.view.seq >= self.view.last_seq:
                self.playing = False
        self.refresh_screen()

    def now(self) -> float:
        """Live: the wall clock. Replay: the time of the event shown, so that ages are as they were."""
        if self.replay:
            events = self.view.journal.events
            return events[-1].get("ts", 0.0) if events else 0.0
        return self.clock()

    def refresh_screen(self, force: bool = False) -> None:
        if self.paused and not force:
            self.show_status()
            return
        tab = self.query_one(TabbedContent).active
        key = (tab, self.view.version, self.selected_session, int(self.now()))
        if key == self.drawn and not force:
            return
        self.drawn = key
        now = self.now()
        if tab == "overview":
            self.query_one(Overview).show(self.view, now)
        elif tab == "session":
            if not self.chosen and not self.is_open(self.selected_session):
                self.selected_session = self.busiest_session()
            self.query_one(SessionPane).show(self.view, self.selected_session, now)
        elif tab == "pool":
            self.query_one(ConnectionsPane).show(self.view, now)
        elif tab == "events":
            self.query_one(EventLog).show(self.view, now)
        elif tab == "sql":
            self.query_one(SQLLog).show(self.view, now)
        self.show_status()
        self.frames += 1
        if any(table.behind for table in self.query(KeyedTable)):
            self.set_timer(0.01, lambda: self.refresh_screen(force=True))  # the rest of a big table, keys first

    def is_open(self, key: str | None) -> bool:
        if key is None:
            return False
        pid, _, sid = key.partition("/")
        s = self.view.session(int(pid) if pid.isdigit() else pid, sid)
        return s is not None and not s.closed

    def action_follow_busiest(self) -> None:
        self.chosen = False
        self.selected_session = None
        self.action_show_tab("session")

    def busiest_session(self) -> str | None:
        """With none chosen: the open session holding the most objects (the demo's most interesting)."""
        best = max(self.view.sessions(), key=lambda ps: (not ps[1].closed, len(ps[1].objects()), ps[1].last or 0),
                   default=None)
        return f"{best[0].pid}/{best[1].id}" if best else None

    def show_status(self) -> None:
        c = self.view.counters()
        ev, sql = self.view.rates.current()
        parts = [Text(f"events {c['events']}  {ev}/s  SQL {sql}/s  ")]
        parts.append(Text(f"dropped {c['dropped']}  ", style="bold red" if c["dropped"] else ""))
        parts.append(Text(f"inspector errors {c['errors']}  ", style="bold red" if c["errors"] else ""))
        for p in self.view.processes.values():
            if p.status == "lost":
                parts.append(Text(f"pid {p.pid}: connection lost {p.reason} ", style="bold red"))
            elif p.status == "ended":
                parts.append(Text(f"pid {p.pid}: ended ", style="yellow"))
        if not self.view.processes and self.pump is not None and self.pump.ended:
            parts.append(Text(f"source ended {self.pump.error or ''}", style="bold red"))
        if self.paused:
            parts.append(Text(" PAUSED (space resumes; events keep arriving underneath)", style="bold reverse"))
        self.query_one("#status", Static).update(Text.assemble(*parts))
        if self.replay:
            self.query_one("#timeline", Static).update(self.timeline_text())

    def timeline_text(self) -> Text:
        view: ReplayView = self.view  # type: ignore[assignment]
        width = max(10, self.size.width - 40)
        filled = round(width * view.seq / max(view.last_seq, 1))
        state = f"playing x{SPEEDS[self.speed_index]}/s" if self.playing else "stopped"
        return Text.assemble(f"seq {view.seq}/{view.last_seq} ", ("━" * filled, "cyan"),
                             ("─" * (width - filled), "grey42"), f" {state}")

    def get_system_commands(self, screen: Any):
        """The command palette (ctrl+p): every pane and move, by name."""
        yield from super().get_system_commands(screen)
        for tab, help in (("overview", "processes, sessions, pools, rates"), ("session", "identity map, changes, "
                          "transactions"), ("pool", "pooled connections"), ("events", "the event log"),
                          ("sql", "the SQL log")):
            yield SystemCommand(f"Show {tab}", help, lambda tab=tab: self.action_show_tab(tab))
        yield SystemCommand("Follow the busiest session", "the session pane shows the open session holding most",
                            self.action_follow_busiest)
        if self.replay:
            yield SystemCommand("Go to event", "go to a seq", self.action_goto)
            yield SystemCommand("Play / stop", "play the trace at the chosen speed", self.action_play)
            for mark in ("flush", "commit", "rollback"):
                yield SystemCommand(f"Next {mark}", f"jump to the next {mark}", lambda m=mark: self.action_jump(m, 1))
                yield SystemCommand(f"Previous {mark}", f"jump to the previous {mark}",
                                    lambda m=mark: self.action_jump(m, -1))
        else:
            yield SystemCommand("Pause / resume", "freeze the screen; events keep arriving", self.action_pause)

    # ---- actions ---------------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        # Focus leaves the old pane first: TabbedContent shows the pane that holds the focus, and
        # hiding a focused widget would hand the focus to its neighbour there, and the pane back.
        self.set_focus(None)
        self.query_one(TabbedContent).active = tab
        self.refresh_screen(force=True)
        main = {"overview": "#sessions", "session": "#objects", "pool": "#connections", "events": "#event-log",
                "sql": "#statements"}[tab]
        self.set_focus(self.query_one(main))

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        self.refresh_screen(force=True)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.refresh_screen(force=True)

    def action_step(self, delta: int) -> None:
        self.playing = False
        self.view.step(delta)
        self.refresh_screen(force=True)

    def action_jump(self, mark: str, direction: int) -> None:
        self.playing = False
        key = None
        if mark == "object":
            key = self.query_one("#objects").selected_key()
            if key is None:
                self.notify("select an object in the session pane first", severity="warning")
                return
        if not self.view.jump(mark, direction, key):
            self.notify(f"no {'earlier' if direction < 0 else 'later'} {mark}", timeout=2)
        self.refresh_screen(force=True)

    def action_play(self) -> None:
        if self.view.seq >= self.view.last_seq:
            self.view.seek(0)
        self.playing = not self.playing
        self.refresh_screen(force=True)

    def action_speed(self, delta: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + delta))
        self.notify(f"{SPEEDS[self.speed_index]} events/s", timeout=1)

    def action_goto(self) -> None:
        def go(seq: int | None) -> None:
            if seq is not None:
                self.view.seek(seq)
                self.refresh_screen(force=True)

        self.push_screen(GoTo(), go)

    def action_filter(self) -> None:
        tab = self.query_one(TabbedContent).active
        box = {"session": "#object-filter", "events": "#event-filter", "sql": "#sql-filter"}.get(tab)
        if box:
            self.query_one(box, Input).focus()

    def action_leave_filter(self) -> None:
        if isinstance(self.focused, Input):
            self.action_show_tab(self.query_one(TabbedContent).active)

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def on_click(self, event: Any) -> None:
        """A click on the replay's timeline goes there."""
        if self.replay and getattr(event.widget, "id", None) == "timeline":
            width = max(10, self.size.width - 40)
            start = len(f"seq {self.view.seq}/{self.view.last_seq} ")
            fraction = (event.x - start) / width
            if 0 <= fraction <= 1:
                self.view.seek(round(fraction * self.view.last_seq))
                self.refresh_screen(force=True)

    @on(Overview.SessionChosen)
    def session_chosen(self, message: Overview.SessionChosen) -> None:
        self.selected_session = message.key
        self.chosen = True
        self.action_show_tab("session")

    @on(Input.Changed)
    def filter_changed(self) -> None:
        self.refresh_screen(force=True)

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        """The cursor moved: the detail of what it is on, at once (not the whole pane)."""
        if event.data_table.id == "objects":
            self.query_one(SessionPane).show_detail(self.view)
        elif event.data_table.id == "statements":
            self.query_one(SQLLog).show_detail()

    def on_unmount(self) -> None:
        if self.pump is not None:
            self.pump.close()
        if self.on_exit_hook is not None:
            self.on_exit_hook()
