"""Declarative mapping: classes that are tables
A mapped class is a Python class SQLAlchemy knows how to store: the class is a table, each Mapped[]
attribute a column, and relationship() links the objects of two classes. This lesson writes them the
SQLAlchemy 2.0 way, and shows what the older tutorials' declarative_base() and engine.execute() became.
"""

from sqlalchemy import ForeignKey, String, create_engine, select, text
from sqlalchemy.exc import ObjectNotExecutableError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.schema import CreateTable


# Every mapped class derives from one base class of your own, which keeps the list of their tables
# (Base.metadata). Older tutorials wrote "Base = declarative_base()" (still accepted, as a legacy
# form); since SQLAlchemy 2.0 it is a class deriving from DeclarativeBase.
class Base(DeclarativeBase):
    pass


# __tablename__ names the table. Each Mapped[...] annotation is a column: Mapped[str] is NOT NULL,
# Mapped[int | None] may be NULL, and mapped_column() adds the rest (primary key, length, foreign key).
# relationship() is no column: it gives each author the list of their Book objects.
class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    born: Mapped[int | None]
    books: Mapped[list["Book"]] = relationship(back_populates="author")


# The foreign key author_id is the real column; "author" is its object side. back_populates ties the
# two relationships together: setting book.author also adds the book to author.books.
class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


# The class has become a table description. Look at the columns the annotations made: NOT NULL where
# the type was not Optional, a FOREIGN KEY for author_id.
print(CreateTable(Book.__table__))
#> output: author_id INTEGER NOT NULL
#> output: FOREIGN KEY(author_id) REFERENCES authors (id)

# An in-memory database, and every table of Base.metadata created in it: authors first, since books
# refers to it.
engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
#> sql: CREATE TABLE authors
#> sql: CREATE TABLE books

# Mapped classes get a constructor that takes their attributes by name. A new object is transient:
# only Python knows it.
ada = Author(name="Ada Lovelace", born=1815)
#> state ada: transient

# Setting book.author also put the book in ada.books (back_populates), in plain Python: no SQL.
book = Book(title="Notes on the Analytical Engine", author=ada)
print([b.title for b in ada.books])
#> output: ['Notes on the Analytical Engine']
#> sql: none

# Adding the author to a session adds her books too: session.add() follows relationships (the
# "save-update" cascade). Both are pending.
session = Session(engine)
session.add(ada)
#> state ada: pending
#> state book: pending

# The flush INSERTs the author first, then the book with the author's new id in author_id.
session.flush()
#> sql: INSERT INTO authors
#> sql: INSERT INTO books
#> state book: persistent

# The flush filled in the keys: the book's author_id is Ada's new id.
print(book.author_id == ada.id)
#> output: True
#> sql: none

# The commit makes it permanent.
session.commit()
#> event: after_commit

# Queries are written with select(), run by session.scalars() (objects) or session.execute() (rows).
# The older session.query(Book).filter_by(...) still works, as a legacy form.
found = session.scalars(select(Book).where(Book.title.startswith("Notes"))).one()
#> sql: SELECT books.id, books.title, books.author_id
#> same: found book

# Done with the ORM for a moment: close() gives the session's connection back to the pool and lets
# go of the objects.
session.close()
#> state book: detached

# Many tutorials ran SQL with engine.execute("..."). SQLAlchemy 2.0 removed it: the engine no
# longer runs statements itself.
try:
    engine.execute("SELECT count(*) FROM authors")
except AttributeError as exc:
    print(exc)
#> output: 'Engine' object has no attribute 'execute'
#> sql: none

# A plain string is not accepted either: text SQL goes through text().
with engine.connect() as conn:
    try:
        conn.execute("SELECT count(*) FROM authors")
    except ObjectNotExecutableError as exc:
        print(exc)
#> output: Not an executable object
#> sql: none

# Today: take a connection with engine.connect(), run text() statements (":name" is a bound
# parameter), and commit yourself ("commit as you go"). Without conn.commit(), the INSERT would be
# rolled back when the block ends.
with engine.connect() as conn:
    conn.execute(text("INSERT INTO authors (name) VALUES (:name)"), {"name": "Mary Shelley"})
    conn.commit()
#> sql: INSERT INTO authors (name) VALUES (?)
#> event: commit

# Or engine.begin(): a connection with a transaction that commits at the end of the block (or rolls
# back if the block raises).
with engine.begin() as conn:
    conn.execute(text("UPDATE books SET title = :title WHERE id = :id"), {"title": "Notes", "id": book.id})
#> sql: UPDATE books SET title
#> event: commit

# Both ways wrote to the same tables the ORM reads: a new session sees Mary Shelley and the new title.
with Session(engine) as session:
    print(session.scalars(select(Author.name).order_by(Author.id)).all())
    print(session.scalars(select(Book.title)).one())
#> output: ['Ada Lovelace', 'Mary Shelley']
#> output: Notes
#> sql: SELECT authors.name FROM authors ORDER BY authors.id
#> sql: SELECT books.title FROM books
