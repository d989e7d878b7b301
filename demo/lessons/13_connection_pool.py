"""The connection pool: who holds a connection, and when
An engine keeps a pool of database connections. A session takes one from it (a checkout) the first
time it needs the database, holds it for its whole transaction, and gives it back (a checkin) at
commit, rollback or close. A session that is never closed keeps its connection: watch it happen.
"""

import shutil
import tempfile

from sqlalchemy import create_engine, exc, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import QueuePool


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


# A database file in a temporary folder, so that the pool holds real connections to it. A tiny
# pool: at most one connection (pool_size=1, max_overflow=0), and a wait of half a second at most.
folder = tempfile.mkdtemp()
engine = create_engine(f"sqlite:///{folder}/library.db", poolclass=QueuePool,
                       pool_size=1, max_overflow=0, pool_timeout=0.5)

# Creating the engine connected to nothing: the pool is empty, no connection is checked out.
print(engine.pool.status())
#> output: Connections in pool: 0
#> output: Current Checked out connections: 0
#> sql: none

# create_all() borrows a connection for its CREATE TABLE, then returns it: checkout, then checkin.
Base.metadata.create_all(engine)
#> event: connect
#> event: checkout
#> event: checkin

# A new session holds no connection: it takes one only when it first needs the database.
session = Session(engine)
session.add(Book(title="Emma"))
print(engine.pool.checkedout())
#> output: 0
#> sql: none

# The flush needs the database: now the session checks a connection out and begins a transaction.
session.flush()
#> event: checkout
#> sql: INSERT INTO books

print(engine.pool.checkedout())
#> output: 1

# The commit ends the transaction and returns the connection to the pool (checkin). It stays open
# in the pool, ready for the next checkout: connecting again would be slow.
session.commit()
#> event: checkin
#> event: after_commit

print(engine.pool.status())
#> output: Connections in pool: 1
#> output: Current Checked out connections: 0

# The usual way to be sure a session gives its connection back: a with block closes it at the end.
with Session(engine) as session:
    print(session.scalars(select(Book.title)).all())
#> output: ['Emma']
#> event: checkout
#> event: checkin

# A leaked session: it read something (checkout) and nobody ever closes it. Its transaction stays
# open, and so its connection stays checked out.
leaked = Session(engine)
print(leaked.scalars(select(Book.title)).all())
#> event: checkout
#> output: ['Emma']

print(engine.pool.status())
#> output: Connections in pool: 0
#> output: Current Checked out connections: 1

# The pool's only connection is taken. Another session waits pool_timeout (half a second here)
# for one, then gives up with a TimeoutError. In a web app, this is how leaked sessions stall it.
waiting = Session(engine)
try:
    waiting.scalars(select(Book.title)).all()
except exc.TimeoutError as error:
    print(error)
#> output: QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.50
#> sql: none

# Closing the leaked session returns its connection (checkin)...
leaked.close()
#> event: checkin

# ...and now the waiting session gets it.
print(waiting.scalars(select(Book.title)).all())
#> output: ['Emma']
#> event: checkout

waiting.close()
#> event: checkin

# engine.dispose() closes the pool's connections; then the temporary folder can go.
engine.dispose()
#> event: close

shutil.rmtree(folder)
