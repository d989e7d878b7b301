"""Engine, connection and session: who does what
The engine knows where the database is and keeps a pool of connections; it connects only when asked.
The Session is where your objects live: it borrows a connection from the pool the first time it
needs the database, and gives it back when its transaction ends (commit, rollback or close).
"""

import os
import shutil
import tempfile

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


# A SQLite database in a file, in a fresh temporary folder (deleted at the end of the lesson).
folder = tempfile.mkdtemp()

# create_engine() does not connect to anything: it remembers the URL and sets up a pool of
# connections, empty for now. No SQL is sent, no connection is opened.
engine = create_engine("sqlite:///" + os.path.join(folder, "library.db"))
#> sql: none

# The pool keeps connections open between uses, so that each use does not pay for a new one. For a
# file database SQLAlchemy picks a QueuePool: it holds up to 5 connections (10 more in a rush).
print(type(engine.pool).__name__)
#> output: QueuePool

# The first real use connects. create_all() takes a connection from the pool (a "checkout": the
# pool opens it, the first time), sends CREATE TABLE, and gives it back (a "checkin").
Base.metadata.create_all(engine)
#> event: connect
#> event: checkout
#> sql: CREATE TABLE authors
#> event: checkin

# You can borrow a connection yourself with engine.connect(). This time the pool already has an open
# one and hands it out again. At the end of the with block it goes back to the pool.
with engine.connect() as conn:
    print(conn.execute(text("SELECT count(*) FROM authors")).scalar())
#> event: checkout
#> sql: SELECT count(*) FROM authors
#> output: 0
#> event: checkin

# sessionmaker() makes a Session class, once, for the whole program. This one does not know its
# engine yet.
Session = sessionmaker()
#> sql: none

# configure() tells it the engine. Handy when the engine is made later (from a config file, say).
# sessionmaker(bind=engine) does both steps at once: that is what most programs write.
Session.configure(bind=engine)
#> sql: none

# Each Session() is a new, empty session. Making one costs nothing: no connection, no SQL.
session = Session()
print(session.in_transaction(), engine.pool.checkedout())
#> output: False 0
#> sql: none

# Adding an object still needs no database: the session starts its own transaction bookkeeping,
# but no connection is taken until there is SQL to send.
ada = Author(name="Ada")
session.add(ada)
print(session.in_transaction(), engine.pool.checkedout())
#> state ada: pending
#> output: True 0
#> sql: none

# commit() has SQL to send: the session checks a connection out, INSERTs Ada, COMMITs, and checks
# the connection back in right away.
session.commit()
#> event: checkout
#> sql: INSERT INTO authors
#> cause: commit
#> event: after_commit
#> event: checkin
#> state ada: persistent

# A query is the first use of the session's next transaction: a new checkout. This time the session
# keeps the connection: it holds it until the transaction ends.
authors = session.scalars(select(Author)).all()
#> event: checkout
#> sql: SELECT authors.id, authors.name

# One connection is out of the pool now, held by the session.
print(engine.pool.checkedout())
#> output: 1
#> sql: none

# While the session holds that connection, anyone else who needs one gets another from the pool
# (which opens a new one when none is free): two are checked out now. A connection serves one user
# at a time.
with engine.connect() as conn:
    print(conn.execute(text("SELECT count(*) FROM authors")).scalar(), engine.pool.checkedout())
#> event: checkout
#> output: 1 2
#> event: checkin

# close() ends the transaction (a rollback, nothing was changed), returns the connection to the pool
# and lets go of every object: Ada is now detached.
session.close()
#> event: checkin
#> state ada: detached

print(engine.pool.checkedout())
#> output: 0

# The usual way to write all this: "with Session.begin()" opens a session and a transaction, commits
# at the end of the block (or rolls back on an error), and closes the session.
with Session.begin() as session:
    session.add(Author(name="Grace"))
#> event: checkout
#> sql: INSERT INTO authors
#> event: after_commit
#> event: checkin

# "with Session() as session" closes the session at the end too, but commits only when you say so.
with Session() as session:
    print(session.scalars(select(Author.name).order_by(Author.name)).all())
#> output: ['Ada', 'Grace']
#> event: checkout
#> event: checkin

# dispose() closes every connection the pool keeps open; then the folder can go.
engine.dispose()
#> event: close

shutil.rmtree(folder)
