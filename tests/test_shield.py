"""Rule 2: nothing escapes into the app. A failing hook is counted and reported; the app goes on."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector import signals
from orm_inspector.hooks import runtime
from orm_inspector.hooks import session as session_hooks
from orm_inspector.transports.trace import TraceReader

from .models import Author, Base


def test_a_failing_hook_is_reported_and_the_app_goes_on(sqlite_url, tmp_path, monkeypatch):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)

    def broken(state):
        raise KeyError("inspector bug")

    monkeypatch.setattr(session_hooks, "ref", broken)
    with orm_inspector.record(tmp_path / "t.jsonl"):
        with Session(engine) as s:
            s.add(Author(name="ann"))
            s.commit()
            assert s.get(Author, 1).name == "ann"  # the app's work is done
    errors = [e for e in TraceReader(tmp_path / "t.jsonl") if e["kind"] == "inspector_error"]
    assert errors and all("KeyError" in e["error"] for e in errors)
    assert {e["hook"] for e in errors} >= {"transient_to_pending", "pending_to_persistent"}
    assert runtime.errors == errors[-1]["total"]


def test_listeners_return_none_even_when_the_function_returns(monkeypatch):
    wrapped = runtime.shield("x")(lambda *a: "a value SQLAlchemy would use")
    runtime.enabled = True
    try:
        assert wrapped(1, 2) is None
    finally:
        runtime.enabled = False


def test_the_app_gets_its_own_database_error(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    with pytest.raises(OperationalError, match="no such table"):
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM nowhere"))
    [error] = captured.of("handle_error")
    assert "no such table" in error.error and error.statement == "SELECT * FROM nowhere"


def test_a_failing_receiver_does_not_stop_the_others(sqlite_url, captured):
    def bad(sender, events):
        raise RuntimeError("user receiver bug")

    signals.sql.connect(bad)
    try:
        engine = create_engine(sqlite_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert captured.of("before_cursor_execute")  # the other receiver still got it
        captured.sync()  # the error is reported at the next pump
        errors = [e for e in captured.sync() if e.kind == "inspector_error"]
        assert any("user receiver bug" in e.error for e in errors)
    finally:
        signals.sql.disconnect(bad)
