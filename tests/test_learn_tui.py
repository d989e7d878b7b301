"""``orm-inspector learn`` on the screen: the list opens a lesson, n runs a line, the diagram puts the
lesson's objects in the states SQLAlchemy says and lights the transition that just happened, and the
claims of the lesson's text are shown checked."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from orm_inspector.learn.lesson import bundled
from orm_inspector.tui.learn import LearnApp, LessonScreen

FIVE_STATES = next(p for p in bundled() if p.stem == "04_five_states")


async def run_until_line(pilot, app, line: int, timeout: float = 20.0) -> None:
    """Press n until the step at ``line`` has run."""
    deadline = time.monotonic() + timeout
    screen = app.screen
    while not (screen.last is not None and screen.last.step.first >= line):
        assert time.monotonic() < deadline, "the lesson did not get there"
        if not screen.busy:
            await pilot.press("n")
        await pilot.pause(0.05)


async def test_the_list_opens_a_lesson_and_n_runs_its_lines():
    app = LearnApp()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        options = app.screen.query_one("#lesson-list")
        assert options.option_count == len(bundled())
        index = bundled().index(FIVE_STATES)
        options.highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen)
        add_line = next(s.first for s in app.screen.lesson.steps if s.source == "session.add(book)")
        await run_until_line(pilot, app, add_line)
        await pilot.pause(0.2)
        screen = app.screen
        assert screen.object_states()["book"] == "pending"
        happened = str(screen.query_one("#happened").render())
        assert "✓ book is pending" in happened and "book is now pending" in happened
        diagram = screen.diagram()
        lit = diagram.renderables[2]  # the transitions: the one that fired is drawn reversed
        assert any("reverse" in str(span.style) and "pending" in lit.plain[span.start:span.end]
                   for span in lit.spans)


async def test_space_runs_on_to_the_next_explained_line_and_r_restarts():
    app = LearnApp(script=FIVE_STATES)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("space")
        deadline = time.monotonic() + 20
        while screen.busy or screen.last is None:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        next_step = screen.lesson.steps[screen.runner.position]
        assert next_step.explanation  # stopped before an explained line
        assert all(not s.explanation for s in screen.lesson.steps[:screen.runner.position - 1])
        await pilot.press("r")
        await pilot.pause()
        assert screen.runner.position == 0 and screen.last is None


async def test_an_own_script_can_be_stepped_through(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text("from sqlalchemy import create_engine, text\n"
                      "engine = create_engine('sqlite://')\n"
                      "with engine.connect() as conn:\n"
                      "    print(conn.execute(text('SELECT 42')).scalar())\n")
    app = LearnApp(script=script)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await run_until_line(pilot, app, 3)
        await pilot.pause(0.2)
        happened = str(app.screen.query_one("#happened").render())
        assert "42" in happened and "SELECT 42" in happened


def test_learn_with_a_missing_script_is_one_line():
    done = subprocess.run([sys.executable, "-m", "orm_inspector", "learn", "/no/such/lesson.py"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such file" in done.stderr.lower()
    assert len(done.stderr.strip().splitlines()) == 1


def test_learn_opens_and_quits_on_q():
    from .test_tui_commands import CLI, Terminal, assert_restored

    term = Terminal([*CLI, "learn"])
    term.read_until(b"The five states")
    term.type("q")
    assert term.wait() == 0
    assert_restored(term.output)


@pytest.mark.parametrize("path", bundled(), ids=[p.stem for p in bundled()])
async def test_every_lesson_plays_to_its_end_on_the_screen(path):
    app = LearnApp(script=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        deadline = time.monotonic() + 60
        while not screen.runner.done:
            assert time.monotonic() < deadline
            if not screen.busy:
                await pilot.press("space")
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        happened = str(screen.query_one("#happened").render())
        assert "✗" not in happened and "done." in happened


async def test_restarting_during_a_long_step_answers_at_once_and_drops_its_result(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(1.5)\nx = 1\n")
    app = LearnApp(script=script)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("n", "n")  # the import, then the sleep
        deadline = time.monotonic() + 10
        while not screen.busy:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        started = time.monotonic()
        await pilot.press("r")
        assert time.monotonic() - started < 1.0
        await pilot.pause(2.0)  # the old step ends meanwhile: its result goes nowhere
        assert screen.last is None and screen.runner.position == 0 and not screen.busy


async def test_escape_from_an_own_script_goes_to_the_lessons(tmp_path):
    from orm_inspector.tui.learn import Lessons

    script = tmp_path / "mine.py"
    script.write_text("x = 1\n")
    app = LearnApp(script=script)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Lessons)


async def test_the_sessions_new_dirty_and_deleted_are_shown_by_name():
    app = LearnApp(script=FIVE_STATES)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        add_line = next(s.first for s in app.screen.lesson.steps if s.source == "session.add(book)")
        await run_until_line(pilot, app, add_line)
        await pilot.pause(0.2)
        happened = str(app.screen.query_one("#happened").render())
        assert "new: book" in happened and "dirty: -" in happened and "deleted: -" in happened
