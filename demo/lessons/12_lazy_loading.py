"""Lazy loading and the N+1 problem
A relationship is loaded lazily by default: author.books sends its SELECT the first time you read it.
Read it for every author of a list and you send one query for the list plus one per author: the
"N+1 problem". selectinload() and joinedload() load the books with the authors, up front.
"""

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import (DeclarativeBase, Mapped, Session, joinedload, mapped_column, raiseload, relationship,
                            selectinload)


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    books: Mapped[list["Book"]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# Three authors and their books, committed. Then close() empties the session: the next queries
# start with nothing loaded (a closed session can be used again).
session.add_all([
    Author(name="Jane Austen", books=[Book(title="Emma"), Book(title="Persuasion")]),
    Author(name="Mary Shelley", books=[Book(title="Frankenstein")]),
    Author(name="George Eliot", books=[Book(title="Middlemarch")]),
])
session.commit()
session.close()

# One query for the authors. Their books are not loaded: look at the SQL, it only reads authors.
authors = session.scalars(select(Author).order_by(Author.id)).all()
#> sql: SELECT authors.id, authors.name FROM authors
#> cause: execute

# Now read each author's books. Each author.books is a lazy load: one SELECT per author, three here.
# With a thousand authors, a thousand and one queries: that is the N+1 problem.
for author in authors:
    print(author.name, [book.title for book in author.books])
#> output: Jane Austen ['Emma', 'Persuasion']
#> cause: lazy_load
#> sql: FROM books WHERE ? = books.author_id
#> sql: FROM books WHERE ? = books.author_id
#> sql: FROM books WHERE ? = books.author_id

# Once loaded, a collection stays loaded: reading it again sends nothing.
print(len(authors[0].books))
#> output: 2
#> sql: none

# The other way is lazy too, but a book's author is looked up in the identity map first: these
# authors are all loaded, so reading book.author sends no SQL.
book = session.scalars(select(Book).where(Book.title == "Middlemarch")).one()
print(book.author.name)
#> output: George Eliot
#> sql: none

session.close()

# selectinload(Author.books): the authors, then ALL their books in a second query, with
# "WHERE books.author_id IN (...)". Two statements, however many authors.
authors = session.scalars(select(Author).order_by(Author.id).options(selectinload(Author.books))).all()
#> sql: FROM authors
#> sql: WHERE books.author_id IN
#> cause: execute

# The books are already there: the same loop sends no SQL at all.
for author in authors:
    print(author.name, [book.title for book in author.books])
#> output: Mary Shelley ['Frankenstein']
#> sql: none

session.close()

# joinedload(Author.books): one statement, the authors LEFT OUTER JOIN their books. The rows repeat
# each author once per book, so SQLAlchemy 2 asks for .unique() to give each author once.
authors = session.scalars(select(Author).order_by(Author.id).options(joinedload(Author.books))).unique().all()
#> sql: LEFT OUTER JOIN books
#> cause: execute

print(len(authors), [book.title for book in authors[0].books])
#> output: 3 ['Emma', 'Persuasion']
#> sql: none

session.close()

# To catch N+1 queries while developing, raiseload() turns the lazy load into an error.
authors = session.scalars(select(Author).options(raiseload(Author.books))).all()
try:
    print(authors[0].books)
except InvalidRequestError as exc:
    print(exc)
#> output: 'Author.books' is not available due to lazy='raise'
#> sql: none

session.close()
