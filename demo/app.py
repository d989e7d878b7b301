"""The demo bookshop: a few clerks (threads) serving customers at the same time.

``run()`` creates the database and its tables, seeds it, then starts ``threads`` clerks named
``clerk-1``, ``clerk-2``, ... Each clerk repeats ``rounds`` times the units of work of ``Clerk``, each
in a Session of its own and each showing one ORM behaviour (its docstring says which). A clerk never
shares an object or a Session with another thread: only the engine and its pool are shared.

Everything is seeded: the same choices on every run, whatever the thread interleaving.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, func, make_url, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.exc import DetachedInstanceError

from .models import Author, Base, Book, Customer, Order, OrderLine

Log = Callable[[str], None]

CATALOGUE = {  # author -> [(title, price in cents)]
    "Jane Austen": [("Pride and Prejudice", 1299), ("Emma", 1099), ("Persuasion", 999)],
    "Herman Melville": [("Moby-Dick", 1499)],
    "Mary Shelley": [("Frankenstein", 899)],
    "Leo Tolstoy": [("War and Peace", 1999), ("Anna Karenina", 1599)],
    "George Eliot": [("Middlemarch", 1399)],
}
CUSTOMERS = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"]
INITIAL_STOCK = 40


class OutOfStock(Exception):
    """The shop's business rule: an order cannot take more copies than there are on the shelf."""


class ShopClosed(Exception):
    """``run(stop=...)`` was told to stop: a clerk leaves in the middle of its work, as a killed
    worker would (its open Session rolls back when its ``with`` block ends)."""


class VoucherRejected(Exception):
    """The shop's business rule: the WELCOME10 voucher is for a customer's first order only."""


def take_from_stock(session: Session, book: Book, copies: int) -> None:
    """Take copies off the shelf, safely with concurrent clerks: the attribute is set to a SQL
    expression, so the flush sends ``UPDATE books SET stock=(books.stock - ?)`` and the database does
    the arithmetic. The attribute is then expired: reading it SELECTs the new value (a refresh)."""
    book.stock = Book.stock - copies
    session.flush()
    if book.stock < 0:
        raise OutOfStock(f"{copies} x {book.title!r} wanted, {book.stock + copies} on the shelf")


def seed(engine: Engine) -> tuple[list[int], list[int]]:
    """Authors, books and customers, each customer with two past orders: one Session, one commit.
    ``add_all()`` cascades along the relationships, so the whole graph becomes pending at once."""
    rng = random.Random(0)
    with Session(engine) as session:
        books = []
        for name, titles in CATALOGUE.items():
            author = Author(name=name)
            for title, price in titles:
                blurb = f"{title}, by {name}. " + "A classic everybody should read. " * 40
                author.books.append(Book(title=title, price_cents=price, stock=INITIAL_STOCK, blurb=blurb))
            books += author.books
            session.add(author)
        for name in CUSTOMERS:
            customer = Customer(name=name, email=name.lower().replace(" ", ".") + "@example.com")
            for _ in range(2):
                lines = [OrderLine(book=book, quantity=1, unit_price_cents=book.price_cents)
                         for book in rng.sample(books, rng.randint(1, 3))]
                customer.orders.append(Order(clerk="seed", lines=lines))
            session.add(customer)
        session.commit()
        return (list(session.scalars(select(Customer.id).order_by(Customer.id))),
                list(session.scalars(select(Book.id).order_by(Book.id))))


class Clerk(threading.Thread):
    """A shop assistant: one thread running the units of work below, each with a new Session."""

    def __init__(self, number: int, sessions: sessionmaker[Session], customer_ids: list[int],
                 book_ids: list[int], *, rounds: int, pause: float, log: Log,
                 stop: threading.Event | None = None) -> None:
        super().__init__(name=f"clerk-{number}", daemon=True)
        self.sessions, self.customer_ids, self.book_ids = sessions, customer_ids, book_ids
        self.rounds, self.pause, self.log = rounds, pause, log
        self.stop = stop or threading.Event()
        self.rng = random.Random(number)
        self.error: BaseException | None = None
        self.order_id = 0  # this round's order, amended later
        self.voucher_order_id = 0  # this round's order with a voucher, cancelled at the end

    def run(self) -> None:
        units = [self.place_order, self.restock, self.amend_order, self.oversized_order,
                 self.order_with_voucher, self.n_plus_one_report, self.selectin_report,
                 self.shop_window, self.cancel_order]
        try:
            for _ in range(self.rounds):
                for unit in units:
                    unit()
                    self.step(self.pause / 4)  # short between units: a watcher sees sessions at work
        except ShopClosed:
            pass
        except BaseException as exc:  # handed to run(), which raises it in the caller's thread
            self.error = exc

    def step(self, pause: float | None = None) -> None:
        """Give a live inspector time to show what just happened (``pause`` seconds, by default the
        clerk's own)."""
        pause = self.pause if pause is None else pause
        if self.stop.wait(pause) if pause > 0 else self.stop.is_set():
            raise ShopClosed

    def say(self, message: str) -> None:
        self.log(f"{self.name}: {message}")

    def new_order(self, session: Session, customer: Customer, book_ids: list[int], copies: int = 1) -> Order:
        """A new Order with one line per book; session.add() makes it and its lines pending (cascade).

        The books are loaded first: a query may autoflush, and an autoflush while the Order is
        already in customer.orders (a backref) but not yet added would warn that it is not in the
        session."""
        books = [session.get(Book, book_id) for book_id in book_ids]  # first: see above
        order = Order(customer=customer, clerk=self.name, lines=[
            OrderLine(book=book, quantity=copies, unit_price_cents=book.price_cents) for book in books])
        session.add(order)
        return order

    # ---- the units of work ----------------------------------------------------------------------
    def place_order(self) -> None:
        """Placing an order: add() makes the Order and its lines pending, the flush INSERTs them
        (pending -> persistent, primary keys assigned), commit() makes it all permanent."""
        with self.sessions() as session:
            customer = session.get(Customer, self.rng.choice(self.customer_ids))
            order = self.new_order(session, customer, sorted(self.rng.sample(self.book_ids, 2)))
            self.step()
            for line in order.lines:  # books in id order: concurrent clerks lock rows in one order
                take_from_stock(session, line.book, line.quantity)  # the first flush INSERTs the order
            self.order_id, who = order.id, customer.name
            self.step()
            session.commit()
        self.say(f"order #{self.order_id} placed for {who} (2 books)")

    def restock(self) -> None:
        """An ORM-enabled UPDATE statement: it runs at once, not at the next flush, and the Book
        already in the identity map gets its new stock too (synchronize_session)."""
        copies = self.rng.randint(2, 5)
        with self.sessions() as session:
            book = session.get(Book, self.rng.choice(self.book_ids))
            session.execute(update(Book).where(Book.id == book.id).values(stock=Book.stock + copies))
            title = book.title
            session.commit()
        self.say(f"restocked {title!r} (+{copies})")

    def amend_order(self) -> None:
        """Changing persistent objects: order.lines is lazy-loaded on first access, the line whose
        quantity changes becomes dirty (an UPDATE), and the line removed from the collection is an
        orphan that cascade="all, delete-orphan" DELETEs at the flush."""
        with self.sessions() as session:
            order = session.get(Order, self.order_id)
            kept, dropped = order.lines  # lazy load: SELECT ... FROM order_lines
            kept.quantity += 1  # dirty: quantity changed from 1 to 2
            take_from_stock(session, kept.book, 1)  # lazy load of a many-to-one, then a flush
            dropped.book.stock = Book.stock + dropped.quantity  # back on the shelf
            order.lines.remove(dropped)  # an orphan now: DELETEd by the commit's flush
            self.step()
            session.commit()
        self.say(f"order #{self.order_id} amended: one line dropped, one more copy of the other")

    def oversized_order(self) -> None:
        """A failed unit of work: the INSERTs and the UPDATE are flushed, then the app's own rule
        raises and rollback() undoes it all: the new objects become transient again, the loaded
        ones are expired, and the database never saw any of it committed."""
        with self.sessions() as session:
            customer = session.get(Customer, self.rng.choice(self.customer_ids))
            order = self.new_order(session, customer, [self.rng.choice(self.book_ids)], copies=500)
            line = order.lines[0]
            try:
                take_from_stock(session, line.book, line.quantity)
                session.commit()
            except OutOfStock as exc:
                self.step()
                session.rollback()
                self.say(f"order refused and rolled back: {exc}")

    def order_with_voucher(self) -> None:
        """A savepoint: the voucher is tried inside session.begin_nested(); the rule rejects it, so
        only the savepoint is rolled back (ROLLBACK TO SAVEPOINT) and the outer transaction, with
        the order in it, still commits."""
        with self.sessions() as session:
            customer = session.get(Customer, self.rng.choice(self.customer_ids))
            order = self.new_order(session, customer, [self.rng.choice(self.book_ids)])
            take_from_stock(session, order.lines[0].book, 1)  # flushed: the order has its id
            self.voucher_order_id, who = order.id, customer.name
            try:
                with session.begin_nested():  # SAVEPOINT; rolled back if the block raises
                    order.voucher = "WELCOME10"
                    earlier = session.scalar(  # autoflush first: the UPDATE runs inside the savepoint
                        select(func.count(Order.id)).where(Order.customer_id == customer.id,
                                                           Order.id != self.voucher_order_id))
                    if earlier:
                        raise VoucherRejected(f"{who} has {earlier} earlier orders")
                outcome = "voucher accepted"
            except VoucherRejected as exc:
                outcome = f"voucher refused ({exc}), savepoint rolled back"
            self.step()
            session.commit()
        self.say(f"order #{self.voucher_order_id} placed for {who}: {outcome}")

    def n_plus_one_report(self) -> None:
        """The N+1 problem: one SELECT for a customer's orders, then reading order.lines in the loop
        lazy-loads each order's lines with a SELECT of its own: N more queries."""
        customer_id = self.rng.choice(self.customer_ids)
        with self.sessions() as session:
            orders = session.scalars(select(Order).where(Order.customer_id == customer_id)).all()
            copies = sum(line.quantity for order in orders for line in order.lines)
        self.say(f"report (lazy): customer {customer_id}, {len(orders)} orders, {copies} copies, "
                 f"{1 + len(orders)} queries")

    def selectin_report(self) -> None:
        """The N+1 fix: selectinload(Order.lines) loads the lines of all the orders with one more
        SELECT (WHERE order_id IN (...)), so the loop runs no SQL at all."""
        customer_id = self.rng.choice(self.customer_ids)
        with self.sessions() as session:
            stmt = select(Order).where(Order.customer_id == customer_id).options(selectinload(Order.lines))
            orders = session.scalars(stmt).all()
            copies = sum(line.quantity for order in orders for line in order.lines)
        self.say(f"report (selectinload): customer {customer_id}, {len(orders)} orders, {copies} copies, "
                 f"2 queries")

    def shop_window(self) -> None:
        """A deferred column and a detached object: book.blurb is not in the SELECT that loads the
        book and is fetched by a SELECT of its own when first read. Once the Session is closed the
        book is detached: what was loaded stays readable, but book.author, never loaded, cannot
        be lazy-loaded any more and raises DetachedInstanceError."""
        with self.sessions() as session:
            book = session.get(Book, self.rng.choice(self.book_ids))
            blurb = book.blurb  # deferred: SELECT books.blurb ...
        title = book.title  # detached, but loaded: no SQL, no error
        try:
            author = book.author.name
        except DetachedInstanceError:
            author = "unknown: DetachedInstanceError, the session is closed"
        self.say(f"shop window: {title!r} ({len(blurb)} chars of blurb), author {author}")

    def cancel_order(self) -> None:
        """Deleting a persistent object: session.delete() marks the order, the flush DELETEs its
        lines (cascade) and then the order (persistent -> deleted), and the commit detaches them."""
        with self.sessions() as session:
            order = session.get(Order, self.voucher_order_id)
            for line in order.lines:  # the copies go back on the shelf
                line.book.stock = Book.stock + line.quantity
            session.delete(order)
            self.step()
            session.commit()
        self.say(f"order #{self.voucher_order_id} cancelled and deleted")


def check_url(url: str) -> None:
    """Raise ValueError for a URL the demo cannot use (sqlalchemy's ArgumentError for a malformed one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("the demo's threads need a file SQLite database (or a server), not :memory:")


def make_engine(url: str, threads: int) -> Engine:
    """One pooled connection per clerk, plus one for the main thread."""
    check_url(url)
    options: dict = {"pool_size": threads + 1, "max_overflow": 0}
    if make_url(url).get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 30}  # wait for another clerk's write lock instead of failing
    return create_engine(url, **options)


def run(url: str | None = None, *, rounds: int = 1, pause: float = 0.0, threads: int = 3,
        log: Log = print, stop: threading.Event | None = None) -> None:
    """Run the bookshop once: create the tables, seed them, run ``threads`` clerks for ``rounds``
    rounds with ``pause`` seconds between steps, and clean up. The default database is a SQLite file
    in a temporary directory, removed at the end; with a ``url``, the demo's five tables are created
    in that (empty) database and dropped at the end. ``log`` gets one line per unit of work. Setting
    ``stop`` ends the clerks at their next step."""
    tmpdir = None
    if url is None:
        tmpdir = tempfile.mkdtemp(prefix="orm-inspector-demo-")
        url = f"sqlite:///{os.path.join(tmpdir, 'bookshop.db')}"
    engine = make_engine(url, threads)
    try:
        Base.metadata.create_all(engine)
        customer_ids, book_ids = seed(engine)
        log(f"bookshop open: {len(book_ids)} books, {len(customer_ids)} customers, {threads} clerks")
        sessions = sessionmaker(engine)
        clerks = [Clerk(n, sessions, customer_ids, book_ids, rounds=rounds, pause=pause, log=log, stop=stop)
                  for n in range(1, threads + 1)]
        for clerk in clerks:
            clerk.start()
        for clerk in clerks:
            clerk.join()
        for clerk in clerks:
            if clerk.error is not None:
                raise RuntimeError(f"{clerk.name} failed: {clerk.error!r}") from clerk.error
        with Session(engine) as session:
            orders = session.scalar(select(func.count(Order.id)))
        log(f"bookshop closed: {orders} orders on the books")
    finally:
        if tmpdir is None:
            Base.metadata.drop_all(engine)
        engine.dispose()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
