"""AsyncSession and AsyncEngine, on aiosqlite and on asyncpg: the same lifecycle story as SQLAlchemy's,
call sites at the app's ``await`` lines, the pool class SQLAlchemy really uses, and ``instrument()``
of one async target capturing that target only."""

from __future__ import annotations

import linecache
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, selectinload

import orm_inspector
from orm_inspector import signals
from orm_inspector.hooks.session import LIFECYCLE

from .conftest import PG_ASYNC_URL, PG_URL, Capture, require_postgres
from .models import Author, Base, Book


# ---- helpers --------------------------------------------------------------------------------------
class LifecycleListener:
    """SQLAlchemy's own account of the lifecycle transitions: (session hash_key, kind, class, identity)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str, tuple | None]] = []
        self.fns = [(kind, self._fn(kind)) for kind in LIFECYCLE]

    def _fn(self, kind):
        def fn(session, state):
            self.seen.append((session.hash_key, kind, state.class_.__name__,
                              tuple(state.key[1]) if state.key else None))
        return fn

    def __enter__(self) -> LifecycleListener:
        for kind, fn in self.fns:
            event.listen(Session, kind, fn, raw=True)
        return self

    def __exit__(self, *exc) -> None:
        for kind, fn in self.fns:
            event.remove(Session, kind, fn)

    def story(self, session: AsyncSession) -> list[tuple]:
        hk = session.sync_session.hash_key
        return [(kind, cls, ident) for k, kind, cls, ident in self.seen if k == hk]


def story(events, sid: str) -> list[tuple]:
    return [(e.kind, e.obj.cls, tuple(e.obj.identity) if e.obj.identity is not None else None)
            for e in events if e.kind in LIFECYCLE and e.session == sid]


def sid_of(session: AsyncSession) -> str:
    return f"s{session.sync_session.hash_key}"


def pool_of_session(events, sid: str) -> str:
    """The pool id of the connection the session began its first transaction on (after_begin ->
    the checkout of that connection)."""
    begin = next(e for e in events if e.kind == "after_begin" and e.session == sid)
    checkout = next(e for e in events if e.kind == "checkout" and e.connection == begin.connection)
    return checkout.pool


@pytest.fixture(params=["aiosqlite", "asyncpg"])
async def async_engine(request, tmp_path) -> AsyncIterator:
    """An AsyncEngine whose tables exist: file aiosqlite, or asyncpg in a fresh PostgreSQL schema."""
    if request.param == "aiosqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
        admin = schema = None
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = create_async_engine(PG_ASYNC_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield engine
    finally:
        await engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


# ---- the lifecycle story, call sites and the pool --------------------------------------------------
async def test_async_session_story_sites_and_pool(async_engine, captured):
    keep = []  # strong references: nothing leaves the identity map by garbage collection
    with LifecycleListener() as listener:
        s = AsyncSession(async_engine)
        try:
            books = [Book(title="a1"), Book(title="a2")]
            ann = Author(name="ann", books=books)
            bob = Author(name="bob")
            keep += books
            s.add_all([ann, bob])
            await s.commit()
            authors = (await s.scalars(select(Author).options(selectinload(Author.books)).order_by(Author.id))).all()
            keep += authors
            keep += [b for a in authors for b in a.books]
            await s.refresh(bob)
            ann_id = ann.id
            ann.name = "anne"
            await s.flush()
            await s.delete(bob)
            await s.commit()
            carl = Author(name="carl")
            s.add(carl)
            await s.flush()
            await s.rollback()
            keep.append(carl)
            dora = Author(name="dora")
            s.add(dora)
            await s.rollback()
            keep.append(dora)
            again = await s.get(Author, ann_id)
            keep.append(again)
        finally:
            await s.close()
    events = captured.sync()
    sid = sid_of(s)

    # the lifecycle story: transition by transition what SQLAlchemy says
    want = listener.story(s)
    assert len(want) >= 10
    assert {k for k, _, _ in want} >= {"transient_to_pending", "pending_to_persistent", "persistent_to_deleted",
                                         "deleted_to_detached", "persistent_to_transient", "pending_to_transient",
                                         "persistent_to_detached"}
    assert story(events, sid) == want
    assert not [e for e in events if e.kind == "gc_evicted" and e.session == sid]
    assert not [e for e in events if e.kind in ("dropped", "inspector_error")]

    # every statement of the session names this test's ``await`` line as its site
    statements = [e for e in events if e.kind == "before_cursor_execute" and e.session == sid]
    assert len(statements) >= 8
    for e in statements:
        assert e.site is not None, e
        path, line, function = e.site.rsplit(":", 2)
        assert path == __file__, e.site
        assert function == "test_async_session_story_sites_and_pool", e.site
        assert "await " in linecache.getline(path, int(line)), e.site

    # the pool: what SQLAlchemy really uses for this engine
    pool = pool_of_session(events, sid)
    [info] = [e for e in events if e.kind == "pool_info" and e.pool == pool]
    # AsyncAdaptedQueuePool (SQLAlchemy 2.0.30 gives an aiosqlite file a NullPool)
    assert info.info["class"] == type(async_engine.sync_engine.pool).__name__


# ---- instrument() of one async target ----------------------------------------------------------------
@pytest.fixture
def capture_only() -> Iterator[Capture]:
    """A receiver on signals.events, without install(): the test calls instrument() itself."""
    cap = Capture()
    signals.events.connect(cap, weak=False)
    try:
        yield cap
    finally:
        orm_inspector.uninstall()
        signals.events.disconnect(cap)


async def _work(factory) -> tuple[AsyncSession, list]:
    s = factory()
    keep = []
    try:
        a = Author(name="x", books=[Book(title="x1")])
        s.add(a)
        await s.commit()
        keep += (await s.scalars(select(Author).options(selectinload(Author.books)))).all()
        await s.delete(a)
        await s.commit()
    finally:
        await s.close()
    return s, keep


@pytest.mark.parametrize("target", ["async_engine", "async_sessionmaker"])
async def test_instrument_one_async_target_captures_that_target_only(target, tmp_path, capture_only):
    one = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    other = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        for engine in (one, other):
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
        factory = async_sessionmaker(bind=one)
        orm_inspector.instrument(one if target == "async_engine" else factory)
        with LifecycleListener() as listener:
            s_other, keep_other = await _work(async_sessionmaker(bind=other))
            s_one, keep_one = await _work(factory)
            s_other2, keep_other2 = await _work(lambda: AsyncSession(other))
    finally:
        await one.dispose()
        await other.dispose()
    events = capture_only.sync()
    mine, others = sid_of(s_one), {sid_of(s_other), sid_of(s_other2)}

    # everything of the instrumented engine's session is there
    assert story(events, mine) == listener.story(s_one)
    assert len(story(events, mine)) >= 5
    assert [e for e in events if e.kind == "before_cursor_execute" and e.session == mine]
    pool = pool_of_session(events, mine)
    [info] = [e for e in events if e.kind == "pool_info"]
    assert info.pool == pool and info.info["class"] == type(one.sync_engine.pool).__name__

    # nothing of the other engine: no session, no statement, no pooled connection of it
    assert listener.story(s_other)  # it did work
    assert not [e for e in events if getattr(e, "session", None) in others]
    assert {e.pool for e in events if e.kind != "close_detached" and hasattr(e, "pool")} == {pool}
    our_connections = {e.connection for e in events if e.kind == "checkout" and e.pool == pool}
    assert our_connections
    assert {e.connection for e in events if hasattr(e, "connection") and e.connection is not None} <= our_connections
    statements = [e for e in events if e.kind == "before_cursor_execute"]
    assert all(e.session == mine for e in statements)
