"""ORM scenarios the tests run with and without the inspector. Each takes an Engine whose tables
exist and returns nothing: what matters is what SQLAlchemy does meanwhile."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .models import Author, Book, Profile


def trap_scenario(engine) -> None:
    """Every trap at once: expired objects after commit, deferred columns, a one-to-one with deferred
    history replaced while unloaded, lazy loads, savepoints, rollbacks, deletes, detached objects."""
    with Session(engine) as s:
        ann = Author(name="ann", books=[Book(title="a1"), Book(title="a2")], profile=Profile())
        bob = Author(name="bob", books=[Book(title="b1")])
        s.add_all([ann, bob])
        s.commit()  # everything expired
        ann.name = "anne"  # set on an expired object: no load
        bob.profile = Profile()  # one-to-one with deferred history, never loaded
        s.flush()
        nested = s.begin_nested()
        s.delete(bob.books[0])  # lazy load, then delete
        s.flush()
        nested.rollback()
        bob.books.append(Book(title="b2"))
        s.commit()
        s.expire(ann, ["name"])
        _ = ann.name  # refresh of one attribute
        _ = ann.bio  # deferred column load
        s.rollback()
    # detached now; a new session merges and deletes
    with Session(engine) as s:
        merged = s.merge(ann, load=True)
        for a in s.scalars(select(Author).options(selectinload(Author.books))):
            for b in a.books:
                b.title = b.title.upper()
        s.delete(merged)
        s.commit()
    with Session(engine) as s:
        bob.name = "bobby"  # edited while detached
        s.add(bob)  # detached -> persistent
        s.commit()
        s.scalars(select(Book)).all()
        for b in s.scalars(select(Book)):
            _ = b.author.name  # lazy many-to-one (identity map hits after the first)
        s.close()
