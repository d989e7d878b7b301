"""The bookshop's data model, in SQLAlchemy 2.0 style.

    Author 1──* Book             a book has one author (many-to-one, Book.author)
    Customer 1──* Order 1──* OrderLine *──1 Book

What each relationship shows in orm_inspector:

- ``Order.lines`` is a one-to-many with ``cascade="all, delete-orphan"``: a line removed from an
  order, or every line of a deleted order, is DELETEd by the next flush.
- ``OrderLine.book``, ``Order.customer`` and ``Book.author`` are many-to-one: a lazy load that finds
  the target already in the identity map costs no SQL at all.
- ``Book.blurb`` is a deferred column: it is left out of the SELECT that loads a Book and fetched by
  its own SELECT the first time it is read (a "refresh" in the trace).

No ``__repr__`` here reads a relationship: a ``__repr__`` that lazy-loads is a classic trap.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list[Book]] = relationship(back_populates="author")

    def __repr__(self) -> str:
        return f"<Author {self.id} {self.name!r}>"


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int]
    stock: Mapped[int]
    blurb: Mapped[str] = mapped_column(Text, deferred=True)  # big, rarely needed: loaded on first access
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")

    def __repr__(self) -> str:
        return f"<Book {self.id} {self.title!r}>"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    orders: Mapped[list[Order]] = relationship(back_populates="customer", order_by="Order.id")

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = {"sqlite_autoincrement": True}  # SQLite: never reuse a deleted order's id

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    clerk: Mapped[str] = mapped_column(String(50))  # the worker thread that took the order
    voucher: Mapped[str | None] = mapped_column(String(20))
    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id")

    def __repr__(self) -> str:
        return f"<Order {self.id}>"


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    quantity: Mapped[int]
    unit_price_cents: Mapped[int]
    order: Mapped[Order] = relationship(back_populates="lines")
    book: Mapped[Book] = relationship()

    def __repr__(self) -> str:
        return f"<OrderLine {self.id}>"
