"""Flush, commit and autoflush
A flush sends the session's pending changes to the database as SQL, inside the open transaction;
a commit ends that transaction and makes them permanent and visible to everyone else. And you
rarely call flush() yourself: before running a query, the session flushes on its own (autoflush).
"""

import os
import shutil
import tempfile

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]

    def __repr__(self) -> str:
        return f"Book({self.title!r})"


# A database in a file, so that a second connection can look at it from outside the session.
folder = tempfile.mkdtemp()
engine = create_engine("sqlite:///" + os.path.join(folder, "library.db"))
Base.metadata.create_all(engine)
session = Session(engine)

# A new book, added: pending, nothing sent yet.
emma = Book(title="Emma")
session.add(emma)
#> state emma: pending
#> sql: none

# flush() sends the INSERT now. Emma is persistent: she has a row and an id. But the transaction
# that holds the row is still open.
session.flush()
#> sql: INSERT INTO books
#> cause: flush
#> state emma: persistent

# Flushed is not committed. The session's own query, inside its transaction, counts the row; another
# connection, outside that transaction, still sees an empty table.
with engine.connect() as other:
    inside = session.scalar(select(func.count()).select_from(Book))
    outside = other.execute(text("SELECT count(*) FROM books")).scalar()
    print(inside, outside)
#> sql: SELECT count(*)
#> output: 1 0

# commit() ends the transaction: COMMIT is sent, and the row is now everyone's. (Until then,
# session.rollback() could still have undone the INSERT.)
session.commit()
#> event: commit
#> event: after_commit

with engine.connect() as other:
    print(other.execute(text("SELECT count(*) FROM books")).scalar())
#> output: 1

# Usually you never call flush(). Here a new book is only pending...
persuasion = Book(title="Persuasion")
session.add(persuasion)
#> state persuasion: pending
#> sql: none

# ...and a query flushes it first, so that the query sees it. That is autoflush: the INSERT goes
# out just before the SELECT, and the query finds the very object that was added.
found = session.scalars(select(Book).where(Book.title == "Persuasion")).one()
#> sql: INSERT INTO books
#> cause: autoflush
#> sql: SELECT books.id, books.title
#> state persuasion: persistent
#> same: found persuasion

# Changes to persistent objects wait the same way. Setting an attribute sends nothing: the object
# is only listed in session.dirty, waiting for an UPDATE...
persuasion.title = "Persuasion (1817)"
#> sql: none

# ...until the next query, which flushes the UPDATE first.
print(session.scalars(select(Book.title).order_by(Book.id)).all())
#> sql: UPDATE books SET title
#> cause: autoflush
#> output: ['Emma', 'Persuasion (1817)']

# Inside "with session.no_autoflush:" queries do not flush: the pending book stays pending and the
# query does not see it. (Session(engine, autoflush=False) turns it off for the whole session.)
mansfield = Book(title="Mansfield Park")
session.add(mansfield)
with session.no_autoflush:
    print(session.scalar(select(func.count()).select_from(Book)))
#> output: 2
#> state mansfield: pending

# The commit flushes what is left: the INSERT goes out as part of commit().
session.commit()
#> sql: INSERT INTO books
#> cause: commit
#> state mansfield: persistent

# Everyone sees the three books now.
with engine.connect() as other:
    print(other.execute(text("SELECT title FROM books ORDER BY id")).scalars().all())
#> output: ['Emma', 'Persuasion (1817)', 'Mansfield Park']

session.close()
engine.dispose()
shutil.rmtree(folder)
