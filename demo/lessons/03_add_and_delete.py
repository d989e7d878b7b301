"""add, add_all and delete: the Session waits before it writes
session.add() and session.delete() send nothing to the database: they only note what to do. The
INSERTs and DELETEs go out together at the next flush (session.flush(), commit(), or before a
query). Until then, session.new and session.deleted show what is waiting.
"""

from sqlalchemy import create_engine, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]

    def __repr__(self) -> str:
        return f"Book({self.title!r})"


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# A new object is transient: the session does not know it.
emma = Book(title="Emma")
#> state emma: transient

# session.add() puts it in the session: it is pending, waiting for its INSERT. Nothing is sent.
session.add(emma)
#> state emma: pending
#> sql: none

# session.new lists the pending objects: what the next flush will INSERT.
print(session.new)
#> output: IdentitySet([Book('Emma')])

# Two more books, transient for now.
persuasion, sanditon = Book(title="Persuasion"), Book(title="Sanditon")

# add_all() is add() for a list. Still nothing sent: three books wait now.
session.add_all([persuasion, sanditon])
#> state persuasion: pending
#> state sanditon: pending
#> sql: none

print(len(session.new))
#> output: 3

# Emma has no id yet: the database hands out ids when it INSERTs the row, and that has not happened.
print(emma.id)
#> output: None
#> sql: none

# Waiting lets the session write everything in one go, in the right order, in one transaction. The
# flush sends the INSERTs (here one per book): the books become persistent and get their ids.
session.flush()
#> sql: INSERT INTO books
#> cause: flush
#> state emma: persistent
#> state sanditon: persistent

# Now Emma has an id, and nothing waits any more.
print(emma.id, session.new)
#> output: 1 IdentitySet([])
#> sql: none

# session.delete() only marks the object: it stays persistent, the DELETE waits for the next flush.
session.delete(persuasion)
#> state persuasion: persistent
#> sql: none

# session.deleted lists what the next flush will DELETE.
print(session.deleted)
#> output: IdentitySet([Book('Persuasion')])

# The flush sends the DELETE. The object is now deleted: gone from the session's identity map, but
# the transaction is still open, so a rollback could bring it back.
session.flush()
#> sql: DELETE FROM books
#> state persuasion: deleted

# Only rows can be deleted: a book that was never flushed has none, and delete() says so.
try:
    session.delete(Book(title="Lady Susan"))
except InvalidRequestError as exc:
    print(exc)
#> output: is not persisted
#> sql: none

# To drop a pending object before its INSERT, take it out of the session with expunge(): it is
# transient again, and no SQL is ever sent for it.
draft = Book(title="The Watsons")
session.add(draft)
session.expunge(draft)
#> state draft: transient
#> sql: none

# One more book, pending.
session.add(Book(title="Mansfield Park"))
#> sql: none

# commit() flushes first: the new book's INSERT goes out inside commit(), then COMMIT. The deletion
# is final now: Persuasion is detached, it belongs to no session.
session.commit()
#> sql: INSERT INTO books
#> cause: commit
#> event: after_commit
#> state persuasion: detached
#> event: deleted_to_detached

print(persuasion in session)
#> output: False

# What the table holds now.
print(session.scalars(select(Book.title).order_by(Book.id)).all())
#> output: ['Emma', 'Sanditon', 'Mansfield Park']
#> sql: SELECT books.title FROM books ORDER BY books.id

session.close()
