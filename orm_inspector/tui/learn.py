"""``orm-inspector learn``: the lessons, one statement at a time.

The list of lessons, then a lesson: its code with the next statement marked, the five lifecycle
states with the lesson's objects in them and the transitions that just happened lit up, and what the
statement did in plain words: the claims of the lesson's text (checked), each event explained with a
link to SQLAlchemy's documentation, the SQL and why it was sent, connections taken and returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from ..learn.explain import LINKS, explain, object_key
from ..learn.lesson import Lesson, bundled, load
from ..learn.runner import Runner, StepResult, lifecycle_state
from ..state.view import View
from .look import STATE_COLORS

STATES = ("transient", "pending", "persistent", "deleted", "detached")
NARROW = 120  # columns: below this, the code goes above the rest
#: The arrows of the diagram: (from, to, what moves an object along it, the event that says it did).
TRANSITIONS = (
    ("transient", "pending", "session.add()", "transient_to_pending"),
    ("pending", "persistent", "flush: INSERT", "pending_to_persistent"),
    ("persistent", "deleted", "delete() + flush: DELETE", "persistent_to_deleted"),
    ("deleted", "detached", "commit", "deleted_to_detached"),
    ("persistent", "detached", "close() / expunge()", "persistent_to_detached"),
    ("detached", "persistent", "add() / merge()", "detached_to_persistent"),
    ("deleted", "persistent", "rollback", "deleted_to_persistent"),
    ("pending", "transient", "rollback / expunge()", "pending_to_transient"),
    ("persistent", "transient", "rollback: INSERT undone", "persistent_to_transient"),
    ("(a row)", "persistent", "loaded by a query", "loaded_as_persistent"),
)


class Lessons(Screen):
    """The list of lessons."""

    BINDINGS = [Binding("q", "app.quit", "quit")]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Pick a lesson (enter). Each runs a short script one statement at a time: press n to run "
                     "the next one and watch what the Session does.", id="lessons-intro")
        options = []
        for i, path in enumerate(self.paths):
            lesson = load(path)
            about = " ".join(lesson.introduction.split())
            about = about if len(about) <= 150 else about[:147] + "..."
            options.append(Option(Text.assemble((f"{i + 1:2}. {lesson.title}\n", "bold"), (f"    {about}", "grey62")),
                                  id=str(i)))
        yield OptionList(*options, id="lesson-list")
        yield Footer()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.app.push_screen(LessonScreen(load(self.paths[int(event.option.id)])))


class LessonScreen(Screen):
    BINDINGS = [
        Binding("n", "next", "run the next line"),
        Binding("enter", "next", "next", show=False),
        Binding("space", "to_next_explained", "run to the next explained line"),
        Binding("r", "restart", "restart"),
        Binding("escape", "back", "lessons"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self, lesson: Lesson) -> None:
        super().__init__()
        self.lesson = lesson
        self.runner: Runner | None = None
        self.view = View()
        self.last: StepResult | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="lesson-body"):
            yield ScrollableContainer(Static(id="code"), id="code-scroll")
            with Vertical(id="lesson-side"):
                yield Static(id="diagram")
                yield VerticalScroll(Static(id="happened"), id="happened-scroll")
        yield Footer()

    def on_mount(self) -> None:
        self.app.sub_title = f"learn: {self.lesson.title}"
        self.start()

    def on_resize(self) -> None:
        """Side by side on a wide terminal; one above the other on a small one."""
        narrow = self.size.width < NARROW
        if narrow != self.has_class("narrow"):
            self.set_class(narrow, "narrow")
            self.show()

    def start(self) -> None:
        if self.runner is not None:
            self.runner.close()
        self.busy = False
        self.runner = Runner(self.lesson)
        self.view = View()
        self.last = None
        self.show()

    def on_unmount(self) -> None:
        if self.runner is not None:
            self.runner.close()

    # ---- running -------------------------------------------------------------------------------
    def action_next(self) -> None:
        self.run_steps(until_explained=False)

    def action_to_next_explained(self) -> None:
        self.run_steps(until_explained=True)

    def action_restart(self) -> None:
        self.start()

    def action_back(self) -> None:
        if isinstance(self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None, Lessons):
            self.app.pop_screen()
        else:  # opened on a script of one's own: the list comes next
            self.app.switch_screen(Lessons(bundled()))

    @work(thread=True)
    def run_steps(self, until_explained: bool) -> None:
        """Off the screen's thread: a step may take a while (a lesson may wait for a pool timeout)."""
        runner = self.runner
        if runner is None or runner.done or self.busy:
            return
        self.busy = True
        try:
            while not runner.done and runner is self.runner:
                result = runner.run_next()
                self.app.call_from_thread(self.took, runner, result)
                if not until_explained or runner.done or runner.lesson.steps[runner.position].explanation:
                    break
        finally:
            if runner is self.runner:
                self.busy = False

    def took(self, runner: Runner, result: StepResult) -> None:
        if runner is not self.runner:
            return  # a step of a lesson restarted or left meanwhile
        for e in result.events:
            self.view.apply(e)
        self.last = result
        self.show()

    # ---- drawing ---------------------------------------------------------------------------------
    def show(self) -> None:
        self.query_one("#code", Static).update(self.code_text())
        self.query_one("#diagram", Static).update(self.diagram())
        self.query_one("#happened", Static).update(self.happened())
        marker = self.query_one("#code", Static)
        runner = self.runner
        if runner is not None and not runner.done:
            first = runner.lesson.steps[runner.position].first
            scroll = self.query_one("#code-scroll", ScrollableContainer)
            scroll.scroll_to(y=max(0, first - 1 - scroll.size.height // 3), animate=False)
        marker.refresh()

    def code_text(self) -> Text:
        runner = self.runner
        lesson = self.lesson
        current = lesson.steps[runner.position] if runner and not runner.done else None
        done_until = lesson.steps[runner.position - 1].last if runner and runner.position else 0
        out = Text()
        for n, line in enumerate(lesson.lines, 1):
            style = ""
            if current and current.first <= n <= current.last:
                style = "bold reverse"
            elif n <= done_until and not line.lstrip().startswith("#"):
                style = "grey50"
            elif line.lstrip().startswith("#>"):
                style = "cyan"
            elif line.lstrip().startswith("#"):
                style = "green"
            marker = "▶ " if current and n == current.first else "  "
            out.append(f"{marker}{n:3} ", style="grey42")
            out.append(line + "\n", style=style)
        if runner and runner.done:
            out.append("\n  the end of the lesson: r runs it again, escape goes back to the lessons\n", style="bold")
        out.no_wrap = True  # a script's lines stay lines (the pane scrolls sideways)
        return out

    def object_states(self) -> dict[str, str]:
        """Each named object's state: as the inspector folded it, or SQLAlchemy's for objects it never
        saw (transient ones, which no event mentions)."""
        if self.runner is None:
            return {}
        folded = {o.key: o.state for _, s in self.view.sessions() for o in s.objects().values()}
        out = {}
        for name, obj in self.runner.objects().items():
            key = object_key(obj)
            out[name] = folded.get(key) if key in folded else lifecycle_state(obj) or "?"
        return out

    def diagram(self) -> Group:
        states = self.object_states()
        fired = {e["kind"] for e in self.last.events} if self.last else set()
        lit = {to for _, to, _, kind in TRANSITIONS if kind in fired}
        if self.has_class("narrow"):
            return self.small_diagram(states, fired, lit)
        boxes = Table.grid(expand=True, padding=(0, 1))
        for _ in STATES:
            boxes.add_column(ratio=1)
        panels = []
        for state in STATES:
            names = [name for name, st in states.items() if st == state]
            body = Text("\n".join(names) or " ", style=STATE_COLORS[state])
            panels.append(Panel(body, title=state, border_style=STATE_COLORS[state] + (" bold" if state in lit else ""),
                                box=box.HEAVY if state in lit else box.ROUNDED))
        boxes.add_row(*panels)
        arrows = Text()
        for source, target, how, kind in TRANSITIONS:
            line = f" {source:>10} → {target:<10} {how}\n"
            arrows.append(line, style=f"bold reverse {STATE_COLORS.get(target, '')}" if kind in fired else "grey50")
        return Group(Text("the five states, and the lesson's objects in them", style="bold"), boxes, arrows)

    def small_diagram(self, states: dict[str, str], fired: set[str], lit: set[str]) -> Group:
        """The same, in a few lines: each state with its objects, and the transitions just taken."""
        line = Text()
        for state in STATES:
            names = ", ".join(name for name, st in states.items() if st == state) or "-"
            line.append(f"{state}", style=f"{STATE_COLORS[state]}{' bold reverse' if state in lit else ' bold'}")
            line.append(f": {names}  ", style=STATE_COLORS[state])
        now = Text()
        for source, target, how, kind in TRANSITIONS:
            if kind in fired:
                now.append(f" {source} → {target} ({how}) ", style=f"bold reverse {STATE_COLORS.get(target, '')}")
                now.append(" ")
        return Group(line, now or Text("no object changed state", style="grey50"))

    def sets_text(self, names: dict[str | None, str]) -> Text:
        """Each open session's new, dirty and deleted objects, by their names in the lesson."""
        out = Text()
        for p, s in self.view.sessions():
            if s.closed:
                continue
            out.append(f"session {s.id}", style="bold")
            for label, keys, state in (("new", list(s.new), "pending"),
                                       ("dirty", [k for k in s.dirty if k not in s.deleted], "persistent"),
                                       ("deleted", list(s.deleted), "deleted")):
                shown = ", ".join(names.get(k) or _described(s, k) for k in keys[:6]) or "-"
                more = f" +{len(keys) - 6}" if len(keys) > 6 else ""
                out.append(f"  {label}: ")
                out.append(shown + more, style=STATE_COLORS[state] if keys else "grey50")
            out.append("\n")
        return out

    def happened(self) -> Text:
        out = Text()
        runner = self.runner
        if self.last is None:
            out.append(f"{self.lesson.title}\n", style="bold")
            out.append(self.lesson.introduction + "\n\n")
        else:
            result = self.last
            out.append(f"line {result.step.first} ran", style="bold")
            out.append(": " + result.step.source.splitlines()[0].strip() + "\n")
            if result.error:
                out.append(f"it raised {result.error}\n", style="bold red")
            if result.output:
                out.append("it printed:\n", style="bold")
                out.append("  " + result.output.rstrip().replace("\n", "\n  ") + "\n")
            for claim in result.step.claims:
                failed = runner.check(claim, result) if runner else None
                out.append("  ✓ " if failed is None else "  ✗ ", style="green" if failed is None else "bold red")
                out.append(f"{claim}" + (f" (but {failed})" if failed else "") + "\n")
            names = {object_key(obj): name for name, obj in (runner.objects().items() if runner else ())}
            told = [told for e in result.events if (told := explain(e, names))]
            if told:
                out.append("what the Session did:\n", style="bold")
            for sentence, link in told:
                out.append(f"  • {sentence}  ")
                out.append("docs", style=f"underline link {link}")
                out.append("\n")
            if not told and not result.step.claims:
                out.append("  (nothing for the ORM to do here)\n", style="grey62")
            out.append_text(self.sets_text(names))
            out.append("\n")
        if runner and not runner.done:
            step = runner.lesson.steps[runner.position]
            out.append(f"next, line {step.first}: ", style="bold")
            out.append(step.source.splitlines()[0].strip() + "\n")
            if step.explanation:
                out.append(step.explanation + "\n", style="italic")
            out.append("n runs it", style="grey62")
            out.append(" · space runs on to the next explained line\n" if not step.explanation else "\n",
                       style="grey62")
        elif runner and runner.done:
            out.append("done. ", style="bold")
            out.append(f"More on the states: {LINKS['states']}\n", style="grey62")
        return out


def _described(s: Any, key: str) -> str:
    from ..state.journal import describe

    o = s.objects().get(key)
    return describe(o.ref()) if o is not None else key


class LearnApp(App):
    TITLE = "orm-inspector"
    CSS = """
    #lessons-intro { padding: 1 2; height: auto; }
    #lesson-list { height: 1fr; }
    #code-scroll { width: 1fr; max-width: 100; min-width: 40; }
    #code { width: auto; }
    #lesson-side { width: 1fr; }
    #diagram { height: auto; }
    #happened-scroll { height: 1fr; border-top: hkey $primary-background; }
    LessonScreen.narrow #lesson-body { layout: vertical; }
    LessonScreen.narrow #code-scroll { height: 40%; width: 100%; max-width: 100%; }
    LessonScreen.narrow #lesson-side { width: 100%; }
    """
    BINDINGS = [Binding("ctrl+c", "quit", "quit", show=False, priority=True)]

    def __init__(self, paths: list[Path] | None = None, script: Path | None = None) -> None:
        super().__init__()
        self.paths = paths if paths is not None else bundled()
        self.script = script

    def on_mount(self) -> None:
        if self.script is not None:
            self.push_screen(LessonScreen(load(self.script)))
        else:
            self.push_screen(Lessons(self.paths))

    def get_system_commands(self, screen: Any):
        yield from super().get_system_commands(screen)
        for path in self.paths:
            lesson = load(path)
            yield SystemCommand(f"Lesson: {lesson.title}", lesson.introduction.split("\n")[0],
                            lambda p=path: self.push_screen(LessonScreen(load(p))))
