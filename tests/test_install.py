"""install() is idempotent, uninstall() restores the app, instrument() narrows capture to a target."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import orm_inspector
from orm_inspector.hooks import runtime

from .models import Author, Base


def _work(engine, name="ann"):
    with Session(engine) as s:
        s.add(Author(name=name))
        s.commit()


def test_install_twice_is_harmless(sqlite_url, captured):
    orm_inspector.install()
    orm_inspector.install()
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    _work(engine)
    assert captured.kinds("lifecycle").count("pending_to_persistent") == 1
    assert [t.name for t in threading.enumerate()].count("orm-inspector") == 1


def test_uninstall_stops_everything(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    orm_inspector.uninstall()
    before = len(captured.sync())
    _work(engine)
    assert len(captured.sync()) == before
    assert not runtime.enabled and len(runtime.queue) == 0
    assert "orm-inspector" not in [t.name for t in threading.enumerate()]
    orm_inspector.install()  # and it comes back
    _work(engine, "bob")
    assert captured.kinds("lifecycle").count("pending_to_persistent") == 1


def test_instrument_one_session_only(sqlite_url, captured):
    orm_inspector.uninstall()
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    watched, other = Session(engine), Session(engine)
    orm_inspector.instrument(watched)
    for s, name in ((watched, "w"), (other, "o")):
        s.add(Author(name=name))
        s.commit()
        s.close()
    sessions = {e.session for e in captured.sync() if getattr(e, "session", None)}
    assert sessions == {f"s{watched.hash_key}"}
    assert all(e.kind not in ("checkout", "pool_info") for e in captured)  # the pool was not a target


def test_instrument_an_engine_only(sqlite_url, tmp_path, captured):
    orm_inspector.uninstall()
    watched, other = create_engine(sqlite_url), create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    orm_inspector.instrument(watched)
    for engine in (watched, other):
        with engine.connect() as conn:
            conn.execute(text(f"SELECT '{'watched' if engine is watched else 'other'}'"))
    statements = [e.statement for e in captured.of("before_cursor_execute")]
    assert statements == ["SELECT 'watched'"]
    assert {e.pool for e in captured.of("checkout")} == {"p1"} or len({e.pool for e in captured.of("checkout")}) == 1


def test_instrument_a_sessionmaker_and_a_scoped_session(sqlite_url, captured):
    orm_inspector.uninstall()
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine)
    scoped = scoped_session(sessionmaker(engine))
    orm_inspector.instrument(factory)
    with factory() as s:
        s.add(Author(name="made by factory"))
        s.commit()
    with Session(engine) as s:  # not a target
        s.add(Author(name="plain"))
        s.commit()
    scoped.add(Author(name="scoped"))
    scoped.commit()
    assert len(captured.of("pending_to_persistent")) == 1
    orm_inspector.instrument(scoped)
    scoped.add(Author(name="scoped again"))
    scoped.commit()
    scoped.remove()
    assert len(captured.of("pending_to_persistent")) == 2
