"""Rule 1: the app emits exactly the same SQL with and without the inspector, and no user code runs."""

from __future__ import annotations

from sqlalchemy import create_engine, event

import orm_inspector

from .models import USER_CODE_CALLS, Base
from .scenarios import trap_scenario


def statements_of(url: str, tmp_path, record: bool) -> list[tuple[str, tuple]]:
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    seen: list[tuple[str, tuple]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def log(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, repr(parameters)))

    try:
        if record:
            with orm_inspector.record(tmp_path / "trace.jsonl"):
                trap_scenario(engine)
        else:
            trap_scenario(engine)
    finally:
        event.remove(engine, "before_cursor_execute", log)
        Base.metadata.drop_all(engine)
        engine.dispose()
    return seen


def test_same_sql_with_and_without_the_inspector(db_url, tmp_path):
    USER_CODE_CALLS.clear()
    plain = statements_of(db_url, tmp_path, record=False)
    recorded = statements_of(db_url, tmp_path, record=True)
    assert len(plain) > 20  # the scenario really does something
    assert recorded == plain  # statement by statement, parameters included


def test_no_user_repr_or_str_is_called(sqlite_url, tmp_path):
    USER_CODE_CALLS.clear()
    statements_of(sqlite_url, tmp_path, record=True)
    assert USER_CODE_CALLS == []


def test_trace_of_the_trap_scenario_is_complete(sqlite_url, tmp_path):
    statements_of(sqlite_url, tmp_path, record=True)
    from orm_inspector.transports.trace import TraceReader

    reader = TraceReader(tmp_path / "trace.jsonl")
    kinds = [e["kind"] for e in reader]
    assert kinds[-1] == "trace_end"
    assert "inspector_error" not in kinds
    for kind in ("pending_to_persistent", "persistent_to_deleted", "deleted_to_persistent", "loaded_as_persistent",
                 "persistent_to_detached", "detached_to_persistent", "set", "append", "before_flush",
                 "after_rollback", "savepoint", "rollback_savepoint", "checkout", "checkin", "session_close"):
        assert kind in kinds, kind
