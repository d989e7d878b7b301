"""Expiry and refresh: when the session reads a row again
After a commit, other programs may change the rows, so the session forgets every attribute it had
loaded (it "expires" them) and reads them again on first use. You can expire attributes yourself,
reload an object at once with refresh(), or keep the values after commit with expire_on_commit=False.
"""

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import DetachedInstanceError


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    copies: Mapped[int]


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)

# A book with 3 copies, added and committed.
emma = Book(title="Emma", copies=3)
session.add(emma)
session.commit()
#> sql: INSERT INTO books
#> event: after_commit
#> state emma: persistent

# The commit expired every attribute of every object in the session: the values are gone from the
# object, only its identity (the row it stands for) is kept.
print(sorted(inspect(emma).expired_attributes))
#> output: ['copies', 'id', 'title']
#> sql: none

# Someone else changes the row after our commit: here, plain SQL run outside the session, on a
# connection of its own from engine.begin().
with engine.begin() as conn:
    conn.execute(text("UPDATE books SET copies = 2 WHERE title = 'Emma'"))
#> sql: UPDATE books SET copies = 2

# Reading an expired attribute loads the object again: a SELECT of its row (a "refresh"). So we see
# 2 copies, not the 3 we had: that is why the commit expires everything.
print(emma.copies)
#> sql: SELECT books.id, books.title, books.copies
#> cause: refresh
#> event: refresh
#> output: 2

# Loaded now: reading again sends nothing.
print(emma.title, emma.copies)
#> output: Emma 2
#> sql: none

# An UPDATE sent as plain SQL, in the session's own transaction, goes around the object: the session
# does not know that copies changed.
session.execute(text("UPDATE books SET copies = copies + 10 WHERE id = :id"), {"id": emma.id})
#> sql: UPDATE books SET copies = copies + 10

# So emma still shows the old value, without asking the database.
print(emma.copies)
#> output: 2
#> sql: none

# session.expire(emma, ["copies"]) forgets just that attribute. Nothing is sent yet.
session.expire(emma, ["copies"])
#> event: expire
#> sql: none

# The next read loads only the expired column, and sees the UPDATE.
print(emma.copies)
#> sql: SELECT books.copies
#> cause: refresh
#> output: 12

# A change not yet flushed...
emma.title = "Emma, a novel"
#> sql: none

# ...is thrown away by session.refresh(emma): it SELECTs the row at once and overwrites every
# attribute with what the database holds.
session.refresh(emma)
#> sql: SELECT books.id, books.title, books.copies
#> event: refresh

# The title is back to what the row holds, and nothing waits to be written.
print(emma.title, emma in session.dirty)
#> output: Emma False
#> sql: none

# The commit makes the +10 permanent, and expires emma once more.
session.commit()
#> event: after_commit

# Expiry has a catch. The commit expired emma again, and closing the session detaches her: she has
# no session left to reload her values with.
session.close()
#> state emma: detached

# Reading her now raises DetachedInstanceError: the value is gone and nothing can SELECT it.
try:
    print(emma.title)
except DetachedInstanceError as exc:
    print(exc)
#> output: is not bound to a Session
#> sql: none

# With expire_on_commit=False the commit keeps the loaded values. Useful when objects outlive their
# session (returned from a function, shown in a template), at the price of possibly stale data.
session = Session(engine, expire_on_commit=False)
kept = session.get(Book, 1)
#> sql: SELECT books.id, books.title, books.copies
#> state kept: persistent

# Commit and close, as before.
session.commit()
session.close()
#> state kept: detached

# The values are still there after commit and close: no SQL, no error.
print(kept.title, kept.copies)
#> output: Emma 12
#> sql: none
