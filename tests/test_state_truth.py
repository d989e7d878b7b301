"""The folded state equals what SQLAlchemy itself says, at many points of a realistic scenario:
SQLAlchemy is the oracle (identity_map, new, dirty, deleted, inspect(obj), pool.checkedout())."""

from __future__ import annotations

import gc

import msgspec
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session, selectinload

import orm_inspector
from orm_inspector.hooks import runtime
from orm_inspector.state import fold
from orm_inspector.transports.trace import TraceReader

from .models import Author, Base, Book, Profile


def key_of(obj) -> str:
    return inspect(obj).__dict__[runtime.ATTR].key


def oracle(session: Session) -> dict:
    states = session.identity_map.all_states()
    return {
        "identity_map": sorted((key_of(st.obj()), st.class_.__name__,
                                list(st.key[1]), "persistent", st.expired) for st in states),
        "new": sorted(key_of(o) for o in session.new),
        "dirty": sorted(key_of(o) for o in session.dirty),
        "deleted": sorted(key_of(o) for o in session.deleted),
    }


def folded(captured, session: Session) -> dict:
    return session_of(fold(msgspec.to_builtins(e) for e in captured.sync()), session)


def session_of(state, session: Session) -> dict:
    """What the folded state says of the session, in oracle()'s form."""
    s = state.sessions.get(f"s{session.hash_key}")
    if s is None:
        return {"identity_map": [], "new": [], "dirty": [], "deleted": []}
    return {
        "identity_map": sorted((o.key, o.cls, list(o.identity), o.state, o.expired) for o in s.identity_map.values()),
        "new": sorted(s.new),
        "dirty": sorted(k for k in s.dirty if k in s.identity_map and k not in s.deleted),
        "deleted": sorted(s.deleted),
    }


def steps(s: Session):
    """A scenario in small steps; the state is compared after each."""
    ann = Author(name="ann", books=[Book(title="a1"), Book(title="a2")], profile=Profile())
    s.add(ann)
    yield "add"
    s.flush()
    yield "flush"
    ann.name = "anne"
    yield "edit"
    s.commit()
    yield "commit (everything expired)"
    bob = Author(name="bob")
    s.add(bob)
    ann.books.append(Book(title="a3"))  # lazy load first, autoflush of bob
    yield "append"
    s.delete(ann.books[0])
    yield "delete marked"
    nested = s.begin_nested()
    s.flush()
    yield "flushed inside a savepoint"
    nested.rollback()
    yield "savepoint rolled back"
    bob.name = "robert"
    s.expire(bob, ["name"])
    yield "partial expire (still modified for SQLAlchemy)"
    _ = bob.name
    yield "refresh"
    s.rollback()
    yield "rollback"
    ann.name = "annie"
    with s.no_autoflush:
        s.delete(ann)
        yield "edited then marked deleted"
        s.add(ann)
        yield "deleted then added back: dirty again"
    s.rollback()
    yield "rollback again"
    authors = s.scalars(select(Author).options(selectinload(Author.books))).all()
    yield "loaded"
    del authors
    gc.collect()
    yield "garbage collected"
    s.expunge_all()
    yield "expunge_all"


def checked_out(captured, engine) -> int:
    pool_id = engine.pool.__dict__.get(runtime.ATTR)
    state = fold(msgspec.to_builtins(e) for e in captured.sync())
    return sum(1 for c in state.connections.values() if c.pool == pool_id and c.status == "checked_out")


def test_state_equals_sqlalchemy_at_every_step(db_url, captured):
    engine = create_engine(db_url)
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as s:
            for step in steps(s):
                assert folded(captured, s) == oracle(s), step
                assert checked_out(captured, engine) == engine.pool.checkedout(), step
        assert checked_out(captured, engine) == engine.pool.checkedout() == 0
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_a_recording_begun_mid_session_starts_from_what_sqlalchemy_holds(db_url, tmp_path):
    """record() around a block of a running app: the sessions already in use are in the trace as they
    were (session_snapshot), so the state is exact from its first event to its last."""
    engine = create_engine(db_url)
    Base.metadata.create_all(engine)
    paths = [tmp_path / "outer.jsonl", tmp_path / "inner.jsonl"]
    try:
        with Session(engine) as s:
            ann = Author(name="ann", books=[Book(title="a1"), Book(title="a2")])
            dora = Author(name="dora")
            s.add_all([ann, dora])
            s.commit()
            _ = ann.books  # loaded again after the commit's expiry
            s.begin_nested()
            s.delete(dora)  # (loads its books first, an autoflush with nothing to flush yet)
            s.delete(ann.books[0])  # marked deleted
            ann.name = "anne"  # dirty
            dora.name = "dorothy"  # modified, marked deleted: SQLAlchemy's dirty leaves it out
            s.add(Author(name="bob"))  # pending
            with orm_inspector.record(paths[0]):
                s.add(Author(name="carl"))
                with orm_inspector.record(paths[1]):  # and a second one, started inside the first
                    ann.books[1].title = "a2!"
                    expected = oracle(s)
            assert expected["dirty"] and expected["deleted"] and expected["new"]
            for path in paths:  # what the snapshots told is not told again as if it happened then
                assert [e["kind"] for e in TraceReader(path) if e["kind"] in ("deleted_mark", "modified")] == []
            for path in paths:
                state = fold(TraceReader(path))
                assert session_of(state, s) == expected, path.name
                transactions = state.sessions[f"s{s.hash_key}"].transactions.values()
                assert [t.origin for t in transactions] == ["autobegin", "nested"], path.name
            s.rollback()
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_what_leaves_a_snapshotted_session_is_followed(sqlite_url, tmp_path):
    """Objects known only from the snapshot: their garbage collection is seen, and the statements of
    the transaction begun before the recording are the session's."""
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with Session(engine) as s:
        s.add_all([Author(name="ann"), Author(name="bob")])
        s.commit()
        held = s.scalars(select(Author)).all()  # in a transaction, begun before the recording
        with orm_inspector.record(path):
            del held
            gc.collect()  # both evicted before the inspector's thread ever looked at the map
            s.execute(select(Author.id)).all()
        assert len(s.identity_map) == 0
        events = list(TraceReader(path))
        state = fold(events)
        sid = f"s{s.hash_key}"
        assert session_of(state, s) == oracle(s)
        assert sorted(e["obj"]["identity"] for e in events if e["kind"] == "gc_evicted") == [[1], [2]]
        [query] = [e for e in events if e["kind"] == "before_cursor_execute"]
        assert query["session"] == sid and query["transaction"] == next(iter(state.sessions[sid].transactions))
    engine.dispose()


def test_two_sessions_at_once_each_hold_their_own(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as a, Session(engine) as b:
        a.add(Author(name="in a"))
        a.flush()  # a holds a connection, b not yet
        b.add_all([Author(name="in b"), Author(name="and b")])
        assert folded(captured, a) == oracle(a) and folded(captured, b) == oracle(b)
        assert checked_out(captured, engine) == engine.pool.checkedout() == 1
        with b.no_autoflush:  # SQLite allows one writer: b only reads
            b.scalars(select(Book)).all()
        assert checked_out(captured, engine) == engine.pool.checkedout() == 2
        a.commit()
        assert folded(captured, a) == oracle(a) and folded(captured, b) == oracle(b)
        assert checked_out(captured, engine) == engine.pool.checkedout() == 1
        b.rollback()
    # closed: what they held is gone (a close that changes nothing has nothing to report)
    assert folded(captured, a) == oracle(a) and folded(captured, b) == oracle(b)
    assert checked_out(captured, engine) == engine.pool.checkedout() == 0



async def test_state_equals_sqlalchemy_under_asyncio(tmp_path, captured):
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    # the pool is part of the state compared: a queue pool, as later 2.0 releases and 2.1 give an aiosqlite file
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", poolclass=AsyncAdaptedQueuePool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine, expire_on_commit=False) as s:
        sync = s.sync_session
        ann = Author(name="ann", books=[Book(title="a1")])
        s.add(ann)
        assert folded(captured, sync) == oracle(sync), "add"
        await s.flush()
        assert folded(captured, sync) == oracle(sync), "flush"
        ann.name = "anne"
        assert folded(captured, sync) == oracle(sync), "edit"
        await s.commit()
        assert folded(captured, sync) == oracle(sync), "commit"
        await s.delete(ann)  # cascades to the loaded book
        assert folded(captured, sync) == oracle(sync), "delete"
        await s.rollback()
        assert folded(captured, sync) == oracle(sync), "rollback"
        authors = (await s.scalars(select(Author))).all()
        assert folded(captured, sync) == oracle(sync), "load"
        assert checked_out(captured, engine.sync_engine) == engine.sync_engine.pool.checkedout()
        del authors
    await engine.dispose()


def test_pooled_connections_follow_invalidate_detach_and_nullpool(sqlite_url, captured):
    from sqlalchemy.pool import NullPool

    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        conn.invalidate()  # closed behind the pool: never idle again
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert checked_out(captured, engine) == engine.pool.checkedout() == 1
    conn = engine.connect()
    conn.detach()  # no longer the pool's
    conn.close()
    state = fold(msgspec.to_builtins(e) for e in captured.sync())
    live = [c for c in state.connections.values() if c.pool == engine.pool.__dict__[runtime.ATTR]]
    assert [c.status for c in live] == ["idle"] * engine.pool.checkedin()
    assert checked_out(captured, engine) == engine.pool.checkedout() == 0

    null = create_engine(sqlite_url, poolclass=NullPool)
    for _ in range(20):
        with null.connect() as c:
            c.exec_driver_sql("SELECT 1")
    state = fold(msgspec.to_builtins(e) for e in captured.sync())
    assert not [c for c in state.connections.values() if c.pool == null.pool.__dict__[runtime.ATTR]]


def test_a_session_dropped_without_close_leaves_the_state(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    s = Session(engine)
    s.add(Author(name="ann"))
    s.flush()  # in a transaction, holding a connection
    sid = f"s{s.hash_key}"
    state = fold(msgspec.to_builtins(e) for e in captured.sync())
    assert sid in state.sessions
    [conn] = [c for c in state.connections.values() if c.session == sid]
    assert conn.thread == "MainThread" and conn.since and conn.site.endswith(":test_a_session_dropped_without_close_leaves_the_state")
    del s
    gc.collect()
    state = fold(msgspec.to_builtins(e) for e in captured.sync())
    assert sid not in state.sessions
    assert checked_out(captured, engine) == engine.pool.checkedout() == 0


def test_a_changed_primary_key_moves_the_object_in_the_identity_map(sqlite_url, captured):
    """SQLAlchemy fires no event when a flush puts an object under a new identity: the inspector says
    so itself (identity_changed), and no later look at the map takes the object for evicted."""
    import time

    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        ann = Author(name="ann")
        s.add(ann)
        s.commit()
        ann.id = ann.id + 100
        s.flush()
        assert folded(captured, s) == oracle(s)
        others = [Author(name="bob"), Author(name="cy")]  # held: no real eviction
        s.add_all(others)
        s.flush()  # the map's size changes: the inspector compares its keys
        time.sleep(0.4)  # past two looks at the map
        assert folded(captured, s) == oracle(s)
        assert not [e for e in captured.sync() if e.kind == "gc_evicted"]
