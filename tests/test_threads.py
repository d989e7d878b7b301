"""Many threads at once: every lifecycle transition arrives, on the right thread and session, in the
order each thread made it; nothing is dropped and no hook fails."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from orm_inspector.hooks.session import LIFECYCLE

from .models import Author, Base, Book

THREADS = 16
ROUNDS = 4


def _unit_of_work(engine, n: int) -> None:
    """One thread's work: adds, flushes, updates, deletes, commits, rollbacks, a reload, a close."""
    me = threading.current_thread().name
    keep = []  # strong references: no object may leave an identity map by garbage collection
    with Session(engine) as s:
        for r in range(ROUNDS):
            a = Author(name=f"{me}-{r}", books=[Book(title=f"{me}-{r}-1"), Book(title=f"{me}-{r}-2")])
            s.add(a)
            s.flush()  # pending -> persistent
            a.name = f"{me}-{r}-renamed"  # update
            s.delete(a.books[0])  # persistent -> deleted at the next flush
            s.commit()  # deleted -> detached, everything expired
            keep.append(a)
            gone = Author(name=f"{me}-{r}-gone")
            s.add(gone)
            s.flush()
            s.rollback()  # persistent -> transient
            pending = Author(name=f"{me}-{r}-pending")
            s.add(pending)
            s.rollback()  # pending -> transient
            keep += [gone, pending]
        keep += s.scalars(select(Author).where(Author.name.like(f"{me}-%")).order_by(Author.id)).all()
        victim = keep[0]
        s.delete(victim)
        s.flush()
        s.rollback()  # deleted -> persistent
        s.expunge(victim)  # persistent -> detached
        s.add(victim)  # detached -> persistent
    # close: persistent -> detached for the rest


def test_sixteen_threads_lose_nothing_and_mix_nothing(tmp_path, captured):
    engine = create_engine(f"sqlite:///{tmp_path / 'threads.db'}", poolclass=QueuePool, pool_size=THREADS,
                           max_overflow=0, connect_args={"timeout": 60})
    Base.metadata.create_all(engine)
    seen: dict[str, list[tuple]] = defaultdict(list)  # thread name -> its transitions, in order
    states: list = []  # keeps the states alive so that their id() is never reused during the test

    def listener_for(kind):
        def fn(session, state):
            states.append(state)
            seen[threading.current_thread().name].append(
                (kind, session.hash_key, id(state), state.class_.__name__, state.key[1] if state.key else None))
        return fn

    fns = [(kind, listener_for(kind)) for kind in LIFECYCLE]
    for kind, fn in fns:
        event.listen(Session, kind, fn, raw=True)
    failures: list[BaseException] = []

    def run(n):
        try:
            _unit_of_work(engine, n)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"app-worker-{n:02d}") for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    finally:
        for kind, fn in fns:
            event.remove(Session, kind, fn)
        engine.dispose()
    assert failures == []

    events = captured.sync()
    kinds = {e.kind for e in events}
    assert "dropped" not in kinds
    assert "inspector_error" not in kinds

    ours = [e for e in events if e.kind in LIFECYCLE]
    names = {t.name for t in threads}
    assert set(seen) == names  # every worker made transitions, and only the workers
    assert {e.thread for e in ours} == names

    # no event lost, none added: the same count per (thread, session, kind)
    theirs_count = Counter((th, f"s{hk}", kind) for th, items in seen.items() for kind, hk, *_ in items)
    ours_count = Counter((e.thread, e.session, e.kind) for e in ours)
    assert ours_count == theirs_count
    assert sum(theirs_count.values()) > THREADS * ROUNDS * 8

    # per thread: the same transitions, in the same order, on the same session and object
    by_thread: dict[str, list] = defaultdict(list)
    for e in ours:
        by_thread[e.thread].append(e)
    for name in names:
        got = [(e.kind, e.session, e.obj.cls, tuple(e.obj.identity) if e.obj.identity is not None else None)
               for e in by_thread[name]]
        want = [(kind, f"s{hk}", cls, tuple(ident) if ident is not None else None)
                for kind, hk, _, cls, ident in seen[name]]
        assert got == want, name
        # one object key per SQLAlchemy instance state, and one state per object key
        key_of_state: dict[int, str] = {}
        state_of_key: dict[str, int] = {}
        for e, (_, _, sid, _, _) in zip(by_thread[name], seen[name]):
            assert key_of_state.setdefault(sid, e.obj.key) == e.obj.key, (name, e)
            assert state_of_key.setdefault(e.obj.key, sid) == sid, (name, e)

    # each thread had its own session, and no session's events came from another thread
    sessions_of_thread = {name: {e.session for e in by_thread[name]} for name in names}
    assert all(len(s) == 1 for s in sessions_of_thread.values())
    assert len(set().union(*sessions_of_thread.values())) == THREADS
