"""The cheap paths of the hottest hooks keep every rule.

The listeners that fire once per object or per statement are shielded inline, in one frame: they
return nothing (SQLAlchemy would use a returned value), also when they fail inside. And the hooks
read which families someone listens to from flags (``runtime.want``) that must follow the signals'
receivers: a new receiver gets events at once, a receiver gone stops their building.
"""

from __future__ import annotations

import gc

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector import signals
from orm_inspector.hooks import engine as engine_hooks
from orm_inspector.hooks import runtime
from orm_inspector.hooks import session as session_hooks
from orm_inspector.transports.dispatcher import dispatcher

from .models import Author, Base, Book


def test_the_hot_listeners_return_nothing(sqlite_url):
    """Rule 2: a listener never returns a value, also those without runtime.shield around them."""
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    orm_inspector.install()
    with Session(engine) as s:
        s.add(Author(name="ann", books=[Book(title="one")]))
        s.commit()
        author = s.scalars(select(Author)).one()
        state = author._sa_instance_state
        fns = session_hooks.attribute_listeners("name")
        assert fns["set"](state, "x", "ann", None) is None
        assert fns["append"](state, Book(title="b"), None) is None
        assert fns["remove"](state, Book(title="b"), None) is None
        assert fns["modified"](state, None) is None
        with engine.connect() as conn:
            assert engine_hooks.before_cursor_execute(conn, None, "SELECT 1", (), None, False) is None


def test_failing_hot_hooks_give_the_app_its_values_back(sqlite_url, tmp_path, monkeypatch):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="ann", books=[Book(title="one")]))
        s.commit()

    def broken(*args, **kwargs):
        raise KeyError("inspector bug")

    monkeypatch.setattr(session_hooks, "_attr_event", broken)
    monkeypatch.setattr(engine_hooks, "_before", broken)
    with orm_inspector.record(tmp_path / "t.jsonl"):
        with Session(engine) as s:
            author = s.scalars(select(Author)).one()
            author.name = "bob"  # a `set` listener that fails must still hand "bob" back
            author.books.append(Book(title="two"))  # and an `append` its member
            assert author.name == "bob" and [b.title for b in author.books] == ["one", "two"]
            s.commit()
            assert s.execute(text("SELECT name FROM author")).scalar_one() == "bob"
            assert sorted(s.scalars(text("SELECT title FROM book")).all()) == ["one", "two"]
    assert runtime.errors > 0  # counted and reported, never raised


def test_family_flags_follow_the_receivers(sqlite_url):
    engine = create_engine(sqlite_url)
    orm_inspector.install()
    dispatcher.stop()  # nothing drains the queue behind our back: pumps happen here only
    assert not runtime.want.sql  # nobody listens: statements are not even built
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert not any(type(e).__name__ == "SQLEvent" for e in runtime.queue)

    def receiver(sender, events):
        pass

    signals.sql.connect(receiver)  # from this moment on, not from the next pump
    assert runtime.want.sql and not runtime.want.pool
    with engine.connect() as conn:
        conn.execute(text("SELECT 2"))
    assert any(e.kind == "before_cursor_execute" and e.statement == "SELECT 2" for e in runtime.queue)

    signals.sql.disconnect(receiver)
    assert not runtime.want.sql

    def weak_receiver(sender, events):
        pass

    signals.sql.connect(weak_receiver)  # weak: it goes when the function does, without disconnect()
    assert runtime.want.sql
    del weak_receiver
    gc.collect()
    dispatcher.pump()
    assert not runtime.want.sql  # noticed at the next pump


def test_uninstalled_hot_hooks_do_nothing(sqlite_url):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    signals.events.connect(_nobody, weak=False)  # someone listens: only the switch keeps them quiet
    try:
        orm_inspector.install()
        orm_inspector.uninstall()
        with Session(engine) as s:
            s.add(Author(name="ann", books=[Book(title="one")]))
            s.commit()
            author = s.scalars(select(Author)).one()
            author.name = "bob"
            author.books.append(Book(title="two"))
            s.commit()
        assert len(runtime.queue) == 0
    finally:
        signals.events.disconnect(_nobody)


def _nobody(sender, events):
    pass


def test_equal_code_in_two_files_is_told_apart():
    """CPython compares code objects by content, not by file: the call-site caches are keyed by
    id(code), so a library function and an app function with the same text are not confused."""
    import functools
    import os

    import sqlalchemy

    from orm_inspector.hooks import callsite

    src = "def run(fn):\n    return fn()\n"
    app, lib = {}, {}
    exec(compile(src, "/srv/app/jobs.py", "exec"), app)  # noqa: S102 - the test's own code
    exec(compile(src, os.path.join(os.path.dirname(sqlalchemy.__file__), "jobs.py"), "exec"), lib)  # noqa: S102
    assert app["run"].__code__ == lib["run"].__code__  # equal, and equal hashes, in CPython

    # app's run() calls the library's run(), which asks for the call site: lib frame, then app frame
    site, _ = app["run"](functools.partial(lib["run"], functools.partial(callsite.walk, 1)))
    assert site is not None and site[0] is app["run"].__code__ and site[1] == 2  # the lib frame skipped
    assert callsite.describe((lib["run"].__code__, 2)).startswith(os.path.dirname(sqlalchemy.__file__))
    assert callsite.describe((app["run"].__code__, 2)) == "/srv/app/jobs.py:2:run"
