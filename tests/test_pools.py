"""Pools: for each pool class the captured pool events are exactly what the pool fires, with stable
connection ids; invalidation, soft invalidation and detach; the session -> connection link; and
checkout/checkin balance against a real QueuePool on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, QueuePool, SingletonThreadPool, StaticPool

from orm_inspector.events import PoolEvent

from .models import Author, Base

POOL_EVENTS = ("first_connect", "connect", "checkout", "checkin", "reset", "invalidate", "soft_invalidate",
               "close", "detach", "close_detached")


class PoolListener:
    """The pool's own account: (event, connection) in order, where a connection is numbered at each
    ``connect`` (a new DBAPI connection, maybe in an old pool slot), as orm_inspector promises."""

    def __init__(self, pool) -> None:
        self.pools = [pool]
        self.seen: list[tuple[str, int | None]] = []
        self._ids: dict[int, int] = {}  # id(connection record) -> number of its current DBAPI connection
        self._dbapi: dict[int, object] = {}  # id(connection record) -> its current DBAPI connection
        self._detached: dict[int, int] = {}  # id(DBAPI connection) -> number, between detach and close_detached
        self._keep: list = []  # keeps records and DBAPI connections alive: their id() is never reused
        self.fns = {kind: getattr(self, f"on_{kind}") for kind in POOL_EVENTS}
        for kind, fn in self.fns.items():
            event.listen(pool, kind, fn)

    def remove(self, *more_pools) -> None:
        """Remove the listeners from the pool and from those it was recreated as (dispose())."""
        for pool in self.pools + list(more_pools):
            for kind, fn in self.fns.items():
                if event.contains(pool, kind, fn):
                    event.remove(pool, kind, fn)

    def _num(self, rec) -> int | None:
        return self._ids.get(id(rec)) if rec is not None else None

    def _add(self, kind: str, number: int | None) -> None:
        self.seen.append((kind, number))

    def _new_dbapi(self, dbapi, rec) -> None:
        """Number a DBAPI connection when first seen: first_connect and then connect fire for the
        same new connection; a reconnect in the same slot is another connection."""
        if self._dbapi.get(id(rec)) is not dbapi:
            self._keep += [rec, dbapi]
            self._dbapi[id(rec)] = dbapi
            self._ids[id(rec)] = len(self._keep)

    def on_first_connect(self, dbapi, rec):
        self._new_dbapi(dbapi, rec)
        self._add("first_connect", self._num(rec))

    def on_connect(self, dbapi, rec):
        self._new_dbapi(dbapi, rec)
        self._add("connect", self._num(rec))

    def on_checkout(self, dbapi, rec, proxy):
        self._add("checkout", self._num(rec))

    def on_checkin(self, dbapi, rec):
        self._add("checkin", self._num(rec))

    def on_reset(self, dbapi, rec, state):
        self._add("reset", self._num(rec) if rec is not None else self._detached.get(id(dbapi)))

    def on_invalidate(self, dbapi, rec, exc):
        self._add("invalidate", self._num(rec))

    def on_soft_invalidate(self, dbapi, rec, exc):
        self._add("soft_invalidate", self._num(rec))

    def on_close(self, dbapi, rec):
        self._add("close", self._num(rec))

    def on_detach(self, dbapi, rec):
        self._keep.append(dbapi)
        self._detached[id(dbapi)] = self._num(rec)
        self._add("detach", self._num(rec))

    def on_close_detached(self, dbapi):
        self._add("close_detached", self._detached.pop(id(dbapi), None))


def normalized(pairs) -> list[tuple[str, int | None]]:
    """Connection ids renamed 0, 1, 2... in order of first appearance: two sequences are equal iff
    they have the same events and their connection ids correspond one to one."""
    names: dict[object, int] = {}
    return [(kind, names.setdefault(c, len(names)) if c is not None else None) for kind, c in pairs]


def pool_of_session(events, sid: str) -> str:
    """The pool id of the connection the session's first transaction began on."""
    begin = next(e for e in events if e.kind == "after_begin" and e.session == sid)
    assert begin.connection is not None
    checkout = next(e for e in events if e.kind == "checkout" and e.connection == begin.connection)
    return checkout.pool


def pool_story(events, pool: str) -> list[tuple[str, str | None]]:
    """The captured pool events of one pool (and those no pool could be named for), pool_info aside."""
    return [(e.kind, e.connection) for e in events
            if isinstance(e, PoolEvent) and e.kind in POOL_EVENTS and e.pool in (pool, "?")]


def commit_some(engine) -> Session:
    with Session(engine) as s:
        s.add(Author(name="ann"))
        s.commit()
        s.scalars(select(Author)).all()
    with Session(engine) as s2:
        s2.add(Author(name="bob"))
        s2.commit()
    return s


def assert_no_inspector_trouble(events) -> None:
    assert not [e for e in events if e.kind in ("dropped", "inspector_error")]


# ---- every pool class: captured == what the pool fires ---------------------------------------------
SYNC_POOLS = {"QueuePool": QueuePool, "NullPool": NullPool, "StaticPool": StaticPool,
              "SingletonThreadPool": SingletonThreadPool}


@pytest.mark.parametrize("name", list(SYNC_POOLS))
def test_sync_pool_events_equal_the_pools_own(name, tmp_path, captured):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=SYNC_POOLS[name])
    pool = engine.pool
    listener = PoolListener(pool)
    try:
        Base.metadata.create_all(engine)
        s = commit_some(engine)
        engine.dispose()  # closes what the pool holds
    finally:
        listener.remove(engine.pool)
        engine.dispose()
    events = captured.sync()
    assert_no_inspector_trouble(events)
    pid = pool_of_session(events, f"s{s.hash_key}")
    [info] = [e for e in events if e.kind == "pool_info" and e.pool == pid]
    assert info.info["class"] == type(pool).__name__ == name
    assert {k for k, _ in listener.seen} >= {"connect", "checkout", "checkin", "close"}
    assert normalized(pool_story(events, pid)) == normalized(listener.seen)


async def test_async_adapted_queue_pool_events_equal_the_pools_own(tmp_path, captured):
    # what later 2.0 releases and 2.1 give an aiosqlite file (2.0.30 gives a NullPool): said, to test it
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", poolclass=AsyncAdaptedQueuePool)
    pool = engine.sync_engine.pool
    listener = PoolListener(pool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine) as s:
            s.add(Author(name="ann"))
            await s.commit()
            (await s.scalars(select(Author))).all()
        async with AsyncSession(engine) as s2:
            s2.add(Author(name="bob"))
            await s2.commit()
        await engine.dispose()
    finally:
        listener.remove(engine.sync_engine.pool)
        await engine.dispose()
    events = captured.sync()
    assert_no_inspector_trouble(events)
    pid = pool_of_session(events, f"s{s.sync_session.hash_key}")
    [info] = [e for e in events if e.kind == "pool_info" and e.pool == pid]
    assert info.info["class"] == type(pool).__name__ == "AsyncAdaptedQueuePool"
    assert {k for k, _ in listener.seen} >= {"connect", "checkout", "checkin", "close"}
    assert normalized(pool_story(events, pid)) == normalized(listener.seen)


# ---- invalidation, soft invalidation, detach ------------------------------------------------------
@pytest.fixture
def queue_engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _after(events, seq: int) -> list:
    return [e for e in events if e.seq > seq]


def _last_checkout(captured):
    return captured.of("checkout")[-1]


def test_invalidate_then_a_new_connection_id(queue_engine, captured):
    conn = queue_engine.connect()
    conn.exec_driver_sql("select 1")
    first = _last_checkout(captured)
    conn.invalidate()
    conn.close()
    with queue_engine.connect() as again:
        again.exec_driver_sql("select 1")
    events = captured.sync()
    assert_no_inspector_trouble(events)
    later = [(e.kind, e.connection) for e in _after(events, first.seq) if isinstance(e, PoolEvent)]
    assert ("invalidate", first.connection) in later
    assert "soft_invalidate" not in [k for k, _ in later]
    i = later.index(("invalidate", first.connection))
    connects = [c for k, c in later[i:] if k == "connect"]
    checkouts = [c for k, c in later[i:] if k == "checkout"]
    assert len(connects) == 1 and len(checkouts) == 1
    new = connects[0]
    assert new != first.connection
    assert checkouts == [new]  # the next checkout hands out the new connection ...
    assert later.index(("connect", new)) < later.index(("checkout", new))  # ... after it connected


def test_soft_invalidate_then_a_new_connection_id(queue_engine, captured):
    raw = queue_engine.raw_connection()
    first = _last_checkout(captured)
    raw.invalidate(soft=True)
    raw.close()
    raw = queue_engine.raw_connection()
    raw.close()
    events = captured.sync()
    assert_no_inspector_trouble(events)
    later = [(e.kind, e.connection) for e in _after(events, first.seq) if isinstance(e, PoolEvent)]
    assert ("soft_invalidate", first.connection) in later
    assert "invalidate" not in [k for k, _ in later]
    i = later.index(("soft_invalidate", first.connection))
    connects = [c for k, c in later[i:] if k == "connect"]
    checkouts = [c for k, c in later[i:] if k == "checkout"]
    assert len(connects) == 1 and connects != [first.connection]
    assert checkouts == connects
    assert later.index(("close", first.connection)) < later.index(("connect", connects[0])) \
        < later.index(("checkout", connects[0]))


def test_detach_then_close_keeps_the_connection_id(queue_engine, captured):
    raw = queue_engine.raw_connection()
    first = _last_checkout(captured)
    raw.detach()
    raw.close()
    events = captured.sync()
    assert_no_inspector_trouble(events)
    later = [(e.kind, e.connection) for e in _after(events, first.seq) if isinstance(e, PoolEvent)]
    assert ("detach", first.connection) in later
    assert ("close_detached", first.connection) in later
    assert later.index(("detach", first.connection)) < later.index(("close_detached", first.connection))
    assert "checkin" not in [k for k, _ in later]  # a detached connection is not returned to the pool


def test_after_begin_names_the_connection_the_checkout_reported(tmp_path, captured):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=3)
    Base.metadata.create_all(engine)
    try:
        one, two = Session(engine), Session(engine)
        one.add(Author(name="ann"))
        one.flush()  # checkout, after_begin
        two.scalars(select(Author)).all()  # a second connection while the first is held
        one.commit()
        two.rollback()
        three = Session(engine)
        three.scalars(select(Author)).all()  # reuses a pooled connection
        sessions = {f"s{x.hash_key}" for x in (one, two, three)}
        for x in (one, two, three):
            x.close()
    finally:
        engine.dispose()
    events = captured.sync()
    assert_no_inspector_trouble(events)
    begins = [e for e in events if e.kind == "after_begin" and e.session in sessions]
    assert {e.session for e in begins} == sessions
    for begin in begins:
        checkout = [e for e in events if e.kind == "checkout" and e.seq < begin.seq][-1]
        assert begin.connection is not None and begin.connection == checkout.connection, begin
    held = [e.connection for e in begins[:2]]
    assert held[0] != held[1]  # two sessions at once: two connections


# ---- PostgreSQL: a real QueuePool with overflow -------------------------------------------------------
def test_queue_pool_balance_equals_checkedout(pg_url, captured):
    engine = create_engine(pg_url, poolclass=QueuePool, pool_size=2, max_overflow=1)
    sessions: list[Session] = []
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))  # the pool's first connection, returned at once
        probe = [e for e in captured.sync() if e.kind == "checkout"][-1]
        pid = probe.pool

        def balance() -> int:
            events = captured.sync()
            return (sum(1 for e in events if e.kind == "checkout" and e.pool == pid)
                    - sum(1 for e in events if e.kind == "checkin" and e.pool == pid))

        assert balance() == engine.pool.checkedout() == 0
        for n in range(3):
            s = Session(engine)
            s.execute(text("select 1"))  # holds its connection until closed
            sessions.append(s)
            assert balance() == engine.pool.checkedout() == n + 1
        checkouts = [e for e in captured.sync() if e.kind == "checkout" and e.pool == pid and e.seq > probe.seq]
        assert len(checkouts) == 3
        assert len({e.connection for e in checkouts}) == 3
        assert engine.pool.overflow() == 1
        while sessions:
            sessions.pop(0).close()
            assert balance() == engine.pool.checkedout() == len(sessions)
    finally:
        for s in sessions:
            s.close()
        engine.dispose()
    assert_no_inspector_trouble(captured.sync())
    [info] = [e for e in captured if e.kind == "pool_info" and e.pool == pid]
    assert info.info["class"] == "QueuePool"
    assert info.info.get("size") == 2 and info.info.get("max_overflow") == 1
