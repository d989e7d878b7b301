"""Rollback: what it undoes, object by object
session.rollback() ends the transaction without keeping anything it did. The database forgets its
INSERTs, UPDATEs and DELETEs, and the Session puts each object back where the last commit left it:
new objects are thrown out, deleted ones come back, changed ones forget their changes.
"""

from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(unique=True)


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# Two books, committed: this is the state a rollback will go back to.
emma = Book(title="Emma")
persuasion = Book(title="Persuasion")
session.add_all([emma, persuasion])
session.commit()
#> state emma: persistent
#> state persuasion: persistent
#> sql: INSERT INTO books

# A new transaction starts with the next use. Change a title, delete a book, add a new one, and
# flush: the database now has the UPDATE, the INSERT and the DELETE, not committed yet. (The two
# SELECTs first load the two books, which the commit had expired.)
emma.title = "Emma, revised"
session.delete(persuasion)
sense = Book(title="Sense and Sensibility")
session.add(sense)
session.flush()
#> state emma: persistent
#> state persuasion: deleted
#> state sense: persistent
#> sql: UPDATE books SET title
#> sql: INSERT INTO books
#> sql: DELETE FROM books

# One more book, added but never flushed: it is only PENDING, the database has not seen it.
draft = Book(title="Sanditon")
session.add(draft)
#> state draft: pending
#> sql: none

# Inside the transaction, the change is what we read.
print(emma.title)
#> output: Emma, revised
#> sql: none

# The rollback. No SQL statement: the database just drops the transaction. Now look at each object:
# - draft was pending: back to TRANSIENT (pending_to_transient), as if never added;
# - sense was INSERTed in this transaction: also TRANSIENT (persistent_to_transient);
# - persuasion was DELETEd in it: PERSISTENT again (deleted_to_persistent);
# - emma stays persistent, but all its attributes are expired: the session forgot the new title.
session.rollback()
#> state draft: transient
#> state sense: transient
#> state persuasion: persistent
#> state emma: persistent
#> event: pending_to_transient
#> event: persistent_to_transient
#> event: deleted_to_persistent
#> event: after_rollback
#> event: rollback
#> sql: none

# Reading the expired title starts a new transaction and loads it from the database: a SELECT
# caused by a refresh, and the title is the committed one again.
print(emma.title)
#> output: Emma
#> sql: SELECT books.id, books.title
#> cause: refresh

# The database agrees: the INSERT of sense, the UPDATE and the DELETE are gone.
print(session.scalars(select(Book.title).order_by(Book.id)).all())
#> output: ['Emma', 'Persuasion']
#> cause: execute

# Rollback is also the way out after a failed flush. A second "Emma" breaks the unique title: the
# flush fails with an IntegrityError. SQLAlchemy rolls the database transaction back at once (copy
# is transient again), but the session stays unusable until you say so.
copy = Book(title="Emma")
session.add(copy)
try:
    session.flush()
except IntegrityError as exc:
    print("flush failed:", exc.orig)
#> output: flush failed: UNIQUE constraint failed: books.title
#> sql: INSERT INTO books
#> state copy: transient
#> event: after_rollback

# Until you call rollback(), the session refuses every query with a PendingRollbackError.
try:
    session.scalars(select(Book)).all()
except PendingRollbackError as exc:
    print(type(exc).__name__, str(exc)[:90])
#> output: PendingRollbackError This Session's transaction has been rolled back
#> sql: none

# session.rollback() ends the failed transaction and returns its connection to the pool: the session
# is usable again, and the next read begins a new transaction.
session.rollback()
#> state emma: persistent
#> event: checkin
#> sql: none

# That rollback expired emma as well: reading it loads it again, in the new transaction.
print(emma.title)
#> output: Emma
#> cause: refresh

session.close()
