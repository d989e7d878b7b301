"""Cascades: what a parent passes on to its children
A relationship's cascade says which Session operations on a parent also apply to the objects it
points to. By default (save-update, merge), adding an author adds its books; with "delete",
deleting the author deletes its books too; with "delete-orphan", a chapter taken out of its book
is deleted.
"""

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    # "all" means save-update, merge, refresh-expire, expunge and delete (no delete-orphan).
    books: Mapped[list["Book"]] = relationship(back_populates="author", cascade="all, delete")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author | None] = relationship(back_populates="books")
    # A chapter makes no sense without its book: "delete-orphan" deletes it when it leaves the book.
    chapters: Mapped[list["Chapter"]] = relationship(back_populates="book", cascade="all, delete-orphan")


class Chapter(Base):
    __tablename__ = "chapters"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    book: Mapped[Book] = relationship(back_populates="chapters")


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# An author with two books, the first with two chapters: all new, all TRANSIENT.
one, two = Chapter(title="Chapter 1"), Chapter(title="Chapter 2")
emma = Book(title="Emma", chapters=[one, two])
persuasion = Book(title="Persuasion")
austen = Author(name="Jane Austen", books=[emma, persuasion])
#> state austen: transient
#> state emma: transient
#> state one: transient

# SAVE-UPDATE cascade: adding the author adds what it points to, and what those point to. Look at
# the states: the books and the chapters are PENDING too, though only the author was added.
session.add(austen)
#> state austen: pending
#> state emma: pending
#> state persuasion: pending
#> state one: pending
#> event: transient_to_pending
#> sql: none

# The commit's flush INSERTs them all, parents first: each child needs its parent's primary key.
session.commit()
#> state one: persistent
#> sql: INSERT INTO authors
#> sql: INSERT INTO books
#> sql: INSERT INTO chapters
#> cause: commit

# The cascade works later too: a book appended to a persistent author's collection joins the
# session. Reading austen.books first loads the collection (the commit expired everything).
sense = Book(title="Sense and Sensibility")
austen.books.append(sense)
#> state sense: pending
#> cause: lazy_load
#> sql: FROM books

# But the cascade runs from the author, along Author.books. A book given its author from the book's
# side stays TRANSIENT (so since SQLAlchemy 2.0), though the book is in austen.books all the same.
lady = Book(title="Lady Susan", author=austen)
#> state lady: transient
#> sql: none

# Add it yourself; the next flush INSERTs both new books.
session.add(lady)
session.flush()
#> state sense: persistent
#> state lady: persistent
#> sql: INSERT INTO books
#> cause: flush

# DELETE-ORPHAN: take a chapter out of its book. Nothing happens to it yet: still persistent. (The
# one SELECT here loads emma.chapters, the collection we read.)
emma.chapters.remove(two)
#> state two: persistent
#> cause: lazy_load
#> sql: FROM chapters

# At the flush, the chapter without a book is an orphan, and delete-orphan DELETEs it.
session.flush()
#> state two: deleted
#> sql: DELETE FROM chapters

# Compare: Author.books has no delete-orphan. A book taken out of the author's collection is not
# deleted; the flush only clears its author_id (an UPDATE), and the book stays persistent.
austen.books.remove(persuasion)
session.flush()
#> state persuasion: persistent
#> sql: UPDATE books SET author_id

# DELETE cascade: session.delete() on the author marks its books for deletion too, and their
# chapters (Book.chapters cascades delete as well). To find them, it loads what is not loaded yet.
session.delete(austen)
#> state austen: persistent
#> state emma: persistent
#> cause: lazy_load

# Still persistent, but in session.deleted, waiting for the flush: the author, and what it cascades to.
print(emma in session.deleted, one in session.deleted)
#> output: True True

# The flush DELETEs children before parents, so that no row points to a missing one. Look at the
# states: everything that was under the author is DELETED; persuasion, no longer its book, is not.
session.flush()
#> state austen: deleted
#> state emma: deleted
#> state sense: deleted
#> state lady: deleted
#> state one: deleted
#> state persuasion: persistent
#> sql: DELETE FROM chapters
#> sql: DELETE FROM books
#> sql: DELETE FROM authors

# The commit makes the deletes final: the deleted objects are DETACHED.
session.commit()
#> state austen: detached
#> state one: detached
#> event: deleted_to_detached

# What is left in the database: the book that had left its author before the author was deleted.
print(session.scalars(select(Book.title)).all())
#> output: ['Persuasion']
#> sql: SELECT books.title

session.close()
