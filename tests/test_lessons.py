"""Every lesson: a plain script that runs with ``python``; run step by step, no step fails, every claim
its text makes holds against SQLAlchemy itself, and the inspector's state agrees with SQLAlchemy about
every object the lesson names, after every step."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orm_inspector.learn.lesson import Lesson, LessonError, bundled, load
from orm_inspector.learn.runner import Runner, lifecycle_state
from orm_inspector.state.view import View

LESSONS = bundled()


def test_there_are_lessons_on_every_topic_the_issue_lists():
    assert len(LESSONS) >= 13


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_a_lesson_runs_as_a_plain_script(path):
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_a_lesson_says_what_sqlalchemy_does(path):
    lesson = load(path)
    assert lesson.title and lesson.introduction
    explained = [s for s in lesson.steps if s.explanation]
    assert len(explained) >= 4 and sum(len(s.claims) for s in lesson.steps) >= 5
    runner = Runner(lesson)
    view = View()
    try:
        while not runner.done:
            result = runner.run_next()
            assert result.error is None, f"line {result.step.first}: {result.error}"
            assert not result.failures, f"line {result.step.first}: {result.failures}"
            for e in result.events:
                view.apply(e)
            assert_view_agrees(view, runner)
    finally:
        runner.close()


def assert_view_agrees(view: View, runner: Runner) -> None:
    """Each named object the fold holds in a session is in the state SQLAlchemy says it is."""
    from sqlalchemy import inspect

    from orm_inspector.learn.explain import object_key

    held = {o.key: o.state for _, s in view.sessions() for o in s.objects().values()}
    for name, obj in runner.objects().items():
        key = object_key(obj)
        actual = lifecycle_state(obj)
        if key in held:
            assert held[key] == actual, f"{name}: the inspector says {held[key]}, SQLAlchemy {actual}"
        else:  # out of every session: transient or detached
            assert actual in ("transient", "detached") or inspect(obj).session is None, name


def test_a_malformed_claim_names_its_line(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text('"""Bad"""\nx = 1\n#> stat x: pending\n')
    with pytest.raises(LessonError, match="line 3"):
        load(script)


def test_a_claim_that_does_not_hold_is_reported(tmp_path):
    script = tmp_path / "wrong.py"
    script.write_text('"""Wrong\nA lesson whose claim is false."""\n'
                      "from sqlalchemy import create_engine, text\n"
                      "engine = create_engine('sqlite://')\n"
                      "# Nothing is sent here, says the text.\n"
                      "with engine.connect() as conn:\n"
                      "    conn.execute(text('SELECT 1'))\n"
                      "#> sql: none\n")
    runner = Runner(load(script))
    try:
        results = [runner.run_next() for _ in runner.lesson.steps]
    finally:
        runner.close()
    assert results[-1].failures and "SELECT 1" in results[-1].failures[0]


def test_a_sql_claim_holds_against_the_column_labels_of_sqlalchemy_2_0(tmp_path):
    """SQLAlchemy 2.0 (the newest on Python 3.10) selects "books.id AS books_id" in get(), a refresh
    and merge(), where 2.1 selects "books.id": claims, written as 2.1 sends them, hold on both."""
    script = tmp_path / "labels.py"
    script.write_text("from sqlalchemy import create_engine, text\n"
                      "engine = create_engine('sqlite://')\n"
                      "conn = engine.connect()\n"
                      "conn.execute(text('CREATE TABLE books (id INTEGER, title TEXT)'))\n"
                      "conn.execute(text('SELECT books.id AS books_id, books.title AS books_title FROM books'))\n"
                      "#> sql: SELECT books.id, books.title FROM books\n"
                      "conn.execute(text('SELECT books.id AS books_id FROM books'))\n"
                      "#> sql: SELECT books.id AS books_id FROM books\n"  # a claim copied from 2.0's SQL
                      "conn.execute(text('SELECT books.id FROM books'))\n"
                      "#> sql: books.id AS books_id\n"
                      "conn.close()\n")
    runner = Runner(load(script))
    try:
        results = [runner.run_next() for _ in runner.lesson.steps]
    finally:
        runner.close()
    assert not any(r.error or r.failures for r in results)


def test_an_own_script_can_be_a_lesson(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text("x = 1\nprint(x + 1)\n#> output: 2\n")
    lesson: Lesson = load(script)
    assert lesson.title == "mine" and len(lesson.steps) == 2
    runner = Runner(lesson)
    try:
        assert [runner.run_next().failures for _ in lesson.steps] == [[], []]
    finally:
        runner.close()


def test_looking_at_a_lessons_variables_never_connects():
    from sqlalchemy import create_engine

    from sqlalchemy import event

    engine = create_engine("sqlite://")
    connects = []
    event.listen(engine, "connect", lambda *args: connects.append(args))
    assert lifecycle_state(engine) is None and lifecycle_state(int) is None and lifecycle_state(Lesson) is None
    assert connects == []


def test_a_script_runs_as_python_runs_it(tmp_path):
    """Its main guard's body runs, its neighbours import, and sys.exit() is shown, not fatal."""
    (tmp_path / "helper_for_lesson.py").write_text("VALUE = 41\n")
    script = tmp_path / "mine.py"
    script.write_text("import sys\nfrom helper_for_lesson import VALUE\n"
                      "if __name__ == '__main__':\n"
                      "    print(VALUE + 1)\n"
                      "    #> output: 42\n"
                      "    sys.exit(3)\n")
    lesson = load(script)
    assert [s.source.strip() for s in lesson.steps][-2:] == ["print(VALUE + 1)", "sys.exit(3)"]
    runner = Runner(lesson)
    try:
        results = [runner.run_next() for _ in lesson.steps]
    finally:
        runner.close()
    assert [r.error for r in results[:-1]] == [None, None, None] and results[-1].error == "SystemExit: 3"
    assert not any(r.failures for r in results)


def test_a_file_that_is_no_script_is_one_clear_error(tmp_path):
    for content, message in ((b"\xff\xfe\x00binary", "not UTF-8"), (b"x = (\n", "line 1"),
                             (b"a = 1\x00\n", "null bytes")):
        path = tmp_path / "bad.py"
        path.write_bytes(content)
        with pytest.raises(LessonError, match=message):
            load(path)
