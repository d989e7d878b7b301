"""The identity map: one row, one object
A session keeps every persistent object in its identity map, keyed by class and primary key. However
you reach a row (a query, session.get(), a relationship), the session gives you the object it already
has for it: never a second copy. This lesson shows what that does, and what it does not.
"""

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)

# Two books in the table, written by a session of their own.
with Session(engine) as setup:
    setup.add_all([Book(id=1, title="Emma"), Book(id=2, title="Persuasion")])
    setup.commit()
#> sql: INSERT INTO books

session = Session(engine)
#> sql: none

# A query loads the row into a new object: persistent, and now in the identity map.
a = session.scalars(select(Book).where(Book.title == "Emma")).one()
#> sql: SELECT books.id, books.title
#> event: loaded_as_persistent
#> state a: persistent

# Its key in the map is its class and primary key; inspect(a).identity is the primary key part.
print(inspect(a).identity, len(session.identity_map))
#> output: (1,) 1

# session.get() looks in the identity map first. Book 1 is there: no SQL at all, and it is the very
# same object.
b = session.get(Book, 1)
#> sql: none
#> same: a b

# A book that is not in the map yet costs a SELECT; from then on it is in the map too.
persuasion = session.get(Book, 2)
#> sql: SELECT books.id, books.title
#> state persuasion: persistent

# There is no book 99: a SELECT, and None.
print(session.get(Book, 99))
#> sql: SELECT books.id, books.title
#> output: None

# A query, unlike get(), always asks the database: it cannot know which rows match without it. But
# for each row it finds, it hands back the object already in the map.
c = session.scalars(select(Book).where(Book.id == 1)).one()
#> sql: SELECT books.id, books.title
#> same: a c

# Your changes are never lost to a query. The new title waits in session.dirty...
a.title = "Emma, a novel"
#> sql: none

# ...the query flushes it first (autoflush, see lesson 5), and gives back the same object, with the
# new title.
d = session.scalars(select(Book).where(Book.id == 1)).one()
#> sql: UPDATE books SET title
#> cause: autoflush
#> sql: SELECT books.id, books.title
#> same: a d

# The row changes behind the ORM's back: plain SQL, which the session does not follow.
session.execute(text("UPDATE books SET title = 'Emma (1815)' WHERE id = 1"))
#> sql: UPDATE books SET title = 'Emma (1815)'

# The query reads the new title from the row, but the object in the map is already loaded, and a
# query does not overwrite what is loaded: a.title keeps the value it had. (To see the row's value,
# expire the object, as in lesson 6, or use populate_existing, below.)
e = session.scalars(select(Book).where(Book.id == 1)).one()
#> sql: SELECT books.id, books.title
#> same: a e

print(e.title)
#> output: Emma, a novel
#> sql: none

# populate_existing=True asks the query to overwrite the loaded values with the row's.
f = session.scalars(select(Book).where(Book.id == 1).execution_options(populate_existing=True)).one()
#> sql: SELECT books.id, books.title
#> same: a f

print(a.title)
#> output: Emma (1815)
#> sql: none

# The commit expires every object (lesson 6) but keeps them in the map.
session.commit()
#> event: after_commit
#> state a: persistent

# get() still finds book 1 in the map, but its values are gone, so it SELECTs the row to fill them
# in (a refresh): the same object, with fresh values.
g = session.get(Book, 1)
#> sql: SELECT books.id, books.title
#> cause: refresh
#> same: a g

# The map belongs to one session. Another session has a map of its own, and its own object for the
# same row.
other = Session(engine)
h = other.get(Book, 1)
#> sql: SELECT books.id, books.title
#> state h: persistent

print(h is a, h.title == a.title)
#> output: False True

# Each object belongs to only one session: adding h to the first session fails.
try:
    session.add(h)
except InvalidRequestError as exc:
    print(exc)
#> output: is already attached to session

other.close()
session.close()
#> state a: detached
