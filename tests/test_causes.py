"""Cause -> effect: every statement names the ORM operation that emitted it, and the app's line."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from .models import Author, Base, Book

HERE = __file__


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="ann", books=[Book(title="a1"), Book(title="a2")]))
        s.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def statements(captured, start=0):
    return [e for e in captured.sync()[start:] if e.kind == "before_cursor_execute"]


def test_explicit_flush_autoflush_and_commit(engine, captured):
    with Session(engine) as s:
        s.add(Author(name="bob"))
        s.flush()
        [insert] = statements(captured)
        [flush] = captured.of("before_flush")
        assert insert.cause == {"kind": "flush", "flush": flush.flush}
        assert flush.cause == "flush"

        mark = len(captured.sync())
        s.add(Author(name="cy"))
        s.scalars(select(Author)).all()  # autoflush first, then the query
        insert, query = statements(captured, mark)
        assert insert.statement.startswith("INSERT") and insert.cause["kind"] == "autoflush"
        assert query.statement.startswith("SELECT") and query.cause == {"kind": "execute"}

        mark = len(captured.sync())
        s.add(Author(name="di"))
        s.commit()
        [insert] = statements(captured, mark)
        assert insert.cause["kind"] == "commit"
        assert insert.cause["flush"] == captured.of("before_flush")[-1].flush


def test_lazy_load_and_refresh_name_the_object(engine, captured):
    with Session(engine) as s:
        ann = s.scalars(select(Author)).one()
        mark = len(captured.sync())
        titles = sorted(b.title for b in ann.books)  # lazy load
        assert titles == ["a1", "a2"]
        [lazy] = statements(captured, mark)
        assert lazy.cause["kind"] == "lazy_load"
        assert lazy.cause["attribute"] == "Author.books"
        assert lazy.cause["obj"].identity == (ann.id,)
        assert lazy.site.startswith(f"{HERE}:") and lazy.site.endswith(":test_lazy_load_and_refresh_name_the_object")

        s.expire(ann)
        mark = len(captured.sync())
        assert ann.name == "ann"  # refresh of the expired object
        [refresh] = statements(captured, mark)
        assert refresh.cause["kind"] == "refresh"
        assert refresh.cause["obj"].key == lazy.cause["obj"].key


def test_statements_the_app_runs_itself(engine, captured):
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    [stmt] = statements(captured)
    assert stmt.cause == {"kind": "execute"}
    assert stmt.session is None
    line = int(stmt.site.split(":")[-2])
    source = open(HERE).read().splitlines()[line - 1]
    assert 'text("SELECT 1")' in source


def test_call_site_of_flush_and_checkout(engine, captured):
    with Session(engine) as s:
        s.add(Author(name="ed"))
        s.flush()  # the line both point to
    [flush] = captured.of("before_flush")
    [checkout] = captured.of("checkout")
    for e in (flush, checkout):
        line = int(e.site.split(":")[-2])
        assert "s.flush()  # the line both point to" in open(HERE).read().splitlines()[line - 1]


def test_parameters_are_redacted_by_name(engine, captured):
    with Session(engine) as s:
        a = s.scalars(select(Author)).one()
        a.password = "s3cret!"
        s.commit()
    [update] = [e for e in statements(captured) if e.statement.startswith("UPDATE")]
    assert "s3cret!" not in repr(update.parameters)
    assert "<redacted>" in repr(update.parameters)
    [edit] = [e for e in captured.of("set") if e.attr == "password"]
    assert edit.value == edit.old == "<redacted>"


def test_expanded_in_lists_keep_names_from_lining_up_wrongly(engine, captured):
    """An IN list is expanded at execution: on a positional paramstyle (SQLite's qmark) the compiled
    statement's names no longer line up with the values, so none of them may pass for another."""
    with Session(engine) as s:
        [ann] = s.scalars(select(Author)).all()
        s.scalars(select(Author).where(Author.id == ann.id, Author.password.in_(["x1", "x2", "x3"]))).all()
    [query] = [e for e in statements(captured) if " IN " in e.statement]
    for secret in ("x1", "x2", "x3"):
        assert secret not in repr(query.parameters)
    assert not (isinstance(query.parameters, dict) and "count" in query.parameters)  # one execution
    with Session(engine) as s:  # no name redacted: every value, in order (named where the driver names them)
        s.scalars(select(Author).where(Author.id == ann.id, Author.name.in_(["a", "b", "c"]))).all()
    [plain] = [e for e in statements(captured) if " IN " in e.statement and e is not query]
    if engine.dialect.positional:
        assert plain.parameters == [ann.id, "a", "b", "c"]
    else:
        assert list(plain.parameters.values()) == [ann.id, "a", "b", "c"]


@pytest.mark.mariadb
def test_mysql_format_paramstyle_is_named_and_redacted(mariadb_url, captured):
    """mysqlclient, aiomysql and asyncmy send %s placeholders: positional, like SQLite's."""
    engine = create_engine(mariadb_url, paramstyle="format")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as s:
            ann = Author(name="ann", password="s3cret!")
            s.add(ann)
            s.commit()
            s.scalars(select(Author).where(Author.id == ann.id, Author.password.in_(["x1", "x2", "x3"]))).all()
        [insert] = [e for e in statements(captured) if e.statement.startswith("INSERT")]
        assert insert.parameters == {"name": "ann", "password": "<redacted>", "bio": None}
        [query] = [e for e in statements(captured) if " IN " in e.statement]
        assert "%s" in query.statement
        for secret in ("x1", "x2", "x3"):
            assert secret not in repr(query.parameters)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()
