"""The five states of an object, and every way between them
An ORM object is always in one of five states: transient, pending, persistent, deleted or detached.
Which one decides what the Session will do with it. This lesson takes one book through all of them.
"""

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


# An engine for an in-memory SQLite database, and the table for books.
engine = create_engine("sqlite://")
Base.metadata.create_all(engine)

session = Session(engine)

# A new object is TRANSIENT: Python knows it, the Session and the database do not.
book = Book(title="Emma")
#> state book: transient
#> sql: none

# session.add() makes it PENDING: the Session will INSERT it at the next flush. Nothing is sent yet.
session.add(book)
#> state book: pending
#> sql: none

# A flush sends the pending INSERT. The book gets its primary key and a place in the identity map:
# it is PERSISTENT. The flush ran inside a transaction, which stays open until commit or rollback.
session.flush()
#> state book: persistent
#> sql: INSERT INTO books
#> cause: flush

# The commit makes the row permanent. The book stays persistent.
session.commit()
#> state book: persistent
#> event: after_commit

# session.delete() only marks it: still persistent, the DELETE waits for the next flush.
session.delete(book)
#> state book: persistent
#> sql: none

# The flush sends the DELETE. The book is DELETED: out of the identity map, but the transaction can
# still be rolled back.
session.flush()
#> state book: deleted
#> sql: DELETE FROM books

# Rolling back undoes the DELETE: a deleted object goes back to PERSISTENT.
session.rollback()
#> state book: persistent
#> event: deleted_to_persistent

# A pending object that is rolled back (or expunged) before any flush goes back to TRANSIENT: its
# INSERT never happened.
draft = Book(title="Sanditon")
session.add(draft)
session.rollback()
#> state draft: transient
#> event: pending_to_transient

# Closing the session lets go of every object: the book is DETACHED. It still has its identity (the
# row exists), but no session to load anything with.
session.close()
#> state book: detached
#> event: persistent_to_detached

# A detached object can join a session again: session.add() makes it persistent in the new one.
session = Session(engine)
session.add(book)
#> state book: persistent
#> event: detached_to_persistent

# Deleted and committed: DELETED after the commit's flush, then DETACHED once the commit makes it
# final.
session.delete(book)
session.commit()
#> state book: detached
#> sql: DELETE FROM books
#> event: persistent_to_deleted
#> event: deleted_to_detached

# Ask the database: the book is gone.
print(session.scalars(select(Book)).all())
#> output: []
#> sql: SELECT books.id, books.title

session.close()
