"""A model full of traps for an instrumentation layer: a __repr__ that lazy-loads, a __str__ that
raises, deferred columns, a one-to-one with deferred history, cascades and a secret column. Any
call of __repr__/__str__ is counted: the inspector must make none."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

USER_CODE_CALLS: list[str] = []


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    password: Mapped[str] = mapped_column(String(50), default="hunter2")
    bio: Mapped[str | None] = deferred(mapped_column(Text, nullable=True))
    books: Mapped[list[Book]] = relationship(back_populates="author", cascade="all, delete-orphan")
    profile: Mapped[Profile | None] = relationship(back_populates="author", uselist=False,
                                                   cascade="all, delete-orphan")

    def __repr__(self) -> str:  # touches a lazy relationship: emits SQL if called
        USER_CODE_CALLS.append("Author.__repr__")
        return f"<Author {self.name} with {len(self.books)} books>"

    def __str__(self) -> str:
        USER_CODE_CALLS.append("Author.__str__")
        raise RuntimeError("__str__ must never be called by the inspector")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")

    def __repr__(self) -> str:
        USER_CODE_CALLS.append("Book.__repr__")
        return f"<Book {self.title} by {self.author.name}>"


class Profile(Base):
    __tablename__ = "profile"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"), unique=True)
    api_token: Mapped[str] = mapped_column(String(40), default="tok-secret")
    author: Mapped[Author] = relationship(back_populates="profile")
