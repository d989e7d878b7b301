"""Rule 4: the lifecycle story in the trace equals, transition by transition, what SQLAlchemy says."""

from __future__ import annotations

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from orm_inspector.hooks.session import LIFECYCLE

from .models import Author, Base, Book
from .scenarios import trap_scenario


def _independent_listener():
    """SQLAlchemy's own account: (kind, class name, identity) per transition, in order."""
    seen: list[tuple[str, str, object]] = []
    fns = []
    for kind in LIFECYCLE:
        def fn(session, state, kind=kind):
            seen.append((kind, state.class_.__name__, state.key[1] if state.key else None))
        event.listen(Session, kind, fn, raw=True)
        fns.append((kind, fn))
    return seen, fns


def test_lifecycle_story_equals_sqlalchemys(db_url, captured):
    engine = create_engine(db_url)
    Base.metadata.create_all(engine)
    seen, fns = _independent_listener()
    try:
        trap_scenario(engine)
    finally:
        for kind, fn in fns:
            event.remove(Session, kind, fn)
        Base.metadata.drop_all(engine)
        engine.dispose()
    ours = [(e.kind, e.obj.cls, tuple(e.obj.identity) if e.obj.identity else None)
            for e in captured.sync() if e.kind in LIFECYCLE]
    theirs = [(k, c, tuple(i) if i else None) for k, c, i in seen]
    assert len(theirs) > 30
    assert ours == theirs


def test_exact_sequence_of_a_unit_of_work(sqlite_url, captured):
    """Like SQLAlchemy's own event tests: the exact sequence, session family and lifecycle."""
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        a = Author(name="ann")
        s.add(a)
        s.commit()
        s.delete(a)
        s.flush()
        s.rollback()
    # deleted_mark comes from the inspector's 50 ms look at session.deleted: here a flush may beat it
    kinds = [k for k in captured.kinds("session", "lifecycle", "flush") if k != "deleted_mark"]
    assert kinds == [
        "after_transaction_create", "after_attach", "transient_to_pending",
        "before_commit", "before_flush", "after_begin", "after_flush", "pending_to_persistent",
        "after_flush_postexec", "after_commit", "after_transaction_end",
        "after_transaction_create",  # autobegin at delete(), which refreshes the expired object
        "after_begin", "before_flush", "after_flush", "persistent_to_deleted", "after_flush_postexec",
        "after_rollback", "deleted_to_persistent", "after_transaction_end", "after_soft_rollback",
        "session_close", "persistent_to_detached",
    ]


def test_every_object_keeps_its_key_when_it_gets_a_primary_key(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        a = Author(name="ann", books=[Book(title="t")])
        s.add(a)
        s.flush()
        pending = {e.obj.cls: e.obj for e in captured.of("transient_to_pending")}
        persistent = {e.obj.cls: e.obj for e in captured.of("pending_to_persistent")}
        assert pending["Author"].identity is None
        assert persistent["Author"].identity == (a.id,)
        assert pending["Author"].key == persistent["Author"].key
        assert pending["Book"].key == persistent["Book"].key != pending["Author"].key
        s.commit()
        fresh = s.scalars(select(Author)).one()  # the same instance: the identity map answers
        assert fresh is a
