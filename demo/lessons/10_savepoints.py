"""Savepoints: a transaction inside the transaction
session.begin_nested() sets a SAVEPOINT: a point inside the current transaction that you can roll
back to without losing what came before it. Rolling back to it undoes only what happened since;
committing it (RELEASE SAVEPOINT) keeps its work, and the outer commit makes everything permanent.
"""

from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(unique=True)


engine = create_engine("sqlite://")


# Python's sqlite3 driver starts transactions on its own, late, and not before a SAVEPOINT, which
# breaks savepoints; these two hooks (SQLAlchemy's documented recipe) let SQLAlchemy send BEGIN.
@event.listens_for(engine, "connect")
def connect(dbapi_connection, connection_record):
    dbapi_connection.isolation_level = None  # the driver sends no BEGIN of its own


@event.listens_for(engine, "begin")
def begin(connection):
    connection.exec_driver_sql("BEGIN")


Base.metadata.create_all(engine)
session = Session(engine)

# The outer transaction: the session begins it (the BEGIN is our hook's), and the flush INSERTs a
# first book in it.
emma = Book(title="Emma")
session.add(emma)
session.flush()
#> state emma: persistent
#> sql: BEGIN
#> sql: INSERT INTO books

# begin_nested() starts the nested transaction and returns it. Nothing is sent yet: like the outer
# transaction, it reaches the database when the session next uses its connection.
savepoint = session.begin_nested()
#> sql: none

# Inside the savepoint: a second book, and a new title for the first. The flush sends SAVEPOINT
# first, then the UPDATE and the INSERT.
persuasion = Book(title="Persuasion")
session.add(persuasion)
emma.title = "Emma, draft"
session.flush()
#> state persuasion: persistent
#> sql: SAVEPOINT
#> sql: UPDATE books SET title
#> sql: INSERT INTO books
#> event: savepoint

# Rolling back the savepoint (ROLLBACK TO SAVEPOINT) undoes only what happened since it was set:
# persuasion's INSERT is gone, so it is TRANSIENT again; emma's INSERT came before the savepoint, so
# emma stays PERSISTENT, but its changed title is expired.
savepoint.rollback()
#> sql: ROLLBACK TO SAVEPOINT
#> event: rollback_savepoint
#> state persuasion: transient
#> state emma: persistent
#> event: persistent_to_transient

# Reading the title loads it again (a refresh): it is the one from before the savepoint.
print(emma.title)
#> output: Emma
#> cause: refresh

# The usual way to write a savepoint: a with block. It flushes and releases the savepoint
# (RELEASE SAVEPOINT) when the block ends without an error: its work joins the outer transaction.
sense = Book(title="Sense and Sensibility")
with session.begin_nested():
    session.add(sense)
#> sql: SAVEPOINT
#> sql: INSERT INTO books
#> sql: RELEASE SAVEPOINT
#> event: release_savepoint
#> state sense: persistent

# When the block fails, only the savepoint is rolled back. A second "Emma" breaks the unique title:
# its INSERT fails, the copy is thrown out, and the outer transaction goes on unharmed.
copy = Book(title="Emma")
try:
    with session.begin_nested():
        session.add(copy)
except IntegrityError as exc:
    print("skipped:", exc.orig)
#> output: skipped: UNIQUE constraint failed: books.title
#> sql: SAVEPOINT
#> sql: INSERT INTO books
#> sql: ROLLBACK TO SAVEPOINT
#> event: rollback_savepoint
#> state copy: transient
#> state sense: persistent

# session.commit() commits the outer transaction (always the outermost one, even from inside a
# savepoint): what the released savepoint did is permanent now.
session.commit()
#> event: after_commit
#> state emma: persistent
#> state sense: persistent

print(session.scalars(select(Book.title).order_by(Book.id)).all())
#> output: ['Emma', 'Sense and Sensibility']

session.close()
