"""Detached objects, DetachedInstanceError, and merge
When its session closes, an object is DETACHED: it keeps the values it had loaded, but it has no
session to load anything else with, and reading what is missing raises DetachedInstanceError.
session.merge() brings a detached object's state into another session, on that session's own copy.
"""

from sqlalchemy import ForeignKey, create_engine
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.exc import DetachedInstanceError


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# An author and a book, committed. The commit expires both: their values will be loaded on next read.
emma = Book(title="Emma")
austen = Author(name="Jane Austen", books=[emma])
session.add(austen)
session.commit()
#> state austen: persistent
#> sql: INSERT INTO authors
#> sql: INSERT INTO books

# Reading the name loads the author's columns again (a refresh). Only those: austen.books and the
# book's title stay unloaded, since nothing reads them.
print(austen.name)
#> output: Jane Austen
#> cause: refresh

# Closing the session detaches every object it held.
session.close()
#> state austen: detached
#> state emma: detached
#> event: persistent_to_detached

# What was loaded before the close still reads fine, without any SQL.
print(austen.name)
#> output: Jane Austen
#> sql: none

# But the books were never loaded, and a detached object has no session to load them with:
# DetachedInstanceError. This is the "lazy load" case.
try:
    print(austen.books)
except DetachedInstanceError as exc:
    print(exc)
#> output: lazy load operation of attribute 'books' cannot proceed
#> sql: none

# The same error for an attribute the commit expired and nothing reloaded. The usual fixes: read
# what you need before closing, load it eagerly, or Session(engine, expire_on_commit=False).
try:
    print(emma.title)
except DetachedInstanceError as exc:
    print(exc)
#> output: attribute refresh operation cannot proceed

# A second session. session.merge(austen) looks the author up by primary key (a SELECT), copies
# austen's loaded values onto what it found, and returns that: a different object, PERSISTENT in
# the new session. austen itself stays DETACHED.
other = Session(engine)
merged = other.merge(austen)
#> state merged: persistent
#> state austen: detached
#> sql: SELECT authors.id, authors.name
#> event: loaded_as_persistent

print(merged is austen)
#> output: False

# The merged copy belongs to a session, so its books load on first read (a lazy load).
print([book.title for book in merged.books])
#> output: ['Emma']
#> cause: lazy_load

# Why merge and not add: the session already holds this author, as merged. Adding a second object
# with the same primary key is refused; one row, one object per session.
try:
    other.add(austen)
except InvalidRequestError as exc:
    print(exc)
#> output: is already present in this session
#> state austen: detached

# A detached object can still be changed; nothing is sent, nothing is tracked.
austen.name = "J. Austen"
#> sql: none

# Merging it again finds the same copy in the identity map (no SELECT) and copies the new name onto
# it: merged is now dirty, and the commit sends the UPDATE.
again = other.merge(austen)
#> same: again merged
#> sql: none

other.commit()
#> sql: UPDATE authors SET name
#> cause: commit

# session.expunge() detaches one object without closing the session.
other.expunge(merged)
#> state merged: detached
#> event: persistent_to_detached
#> sql: none

other.close()
