"""Workloads the benchmarks time, plain or recorded: run as a fresh process each time.

    python bench/workloads.py oltp|bulk|flushes|none [--record FILE | --listeners-off FAMILY] [--size N]

prints one JSON line of measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import sys
import tempfile
import time

from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    email: Mapped[str] = mapped_column(String(120))
    balance: Mapped[int] = mapped_column(default=0)
    orders: Mapped[list[Order]] = relationship(back_populates="customer", cascade="all, delete-orphan")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[str] = mapped_column(String(20), default="new")
    total: Mapped[int] = mapped_column(default=0)
    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[Line]] = relationship(back_populates="order", cascade="all, delete-orphan")


class Line(Base):
    __tablename__ = "line"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    sku: Mapped[str] = mapped_column(String(20))
    qty: Mapped[int]
    order: Mapped[Order] = relationship(back_populates="lines")


def make_engine(path: str):
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    return engine


def oltp(engine, units: int) -> None:
    """Units of work as a web app does them: read, change, add, delete, commit; lazy loads too."""
    rnd = random.Random(7)
    with Session(engine) as s:
        s.add_all([Customer(name=f"c{i}", email=f"c{i}@example.com") for i in range(50)])
        s.commit()
    for u in range(units):
        with Session(engine) as s:
            cust = s.get(Customer, rnd.randint(1, 50))
            order = Order(customer=cust, lines=[Line(sku=f"sku{j}", qty=j + 1) for j in range(3)])
            s.add(order)
            s.flush()  # explicit flush: the order gets its id
            order.total = sum(line.qty for line in order.lines)
            cust.balance += order.total
            for old in cust.orders[:-3]:  # lazy load of the collection, then delete old orders
                s.delete(old)
            s.commit()
            if u % 5 == 0:
                rows = s.scalars(select(Customer).options(selectinload(Customer.orders)).limit(5)).all()
                for c in rows:
                    c.name = c.name.upper() if u % 10 == 0 else c.name.lower()
                s.rollback()


def bulk(engine, n: int) -> None:
    """10k objects in one session: insert, load, update, delete a tenth (their collections loaded
    up front, as a bulk job does, so that the delete cascade does not lazy-load one by one)."""
    with Session(engine) as s:
        s.add_all([Customer(name=f"c{i}", email=f"c{i}@example.com") for i in range(n)])
        s.commit()
        for c in s.scalars(select(Customer)).all():
            c.balance += 1
        s.flush()
        doomed = s.scalars(select(Customer).where(Customer.id % 10 == 0).options(selectinload(Customer.orders)))
        for c in doomed.all():
            s.delete(c)
        s.commit()


def flushes(engine, size: int, count: int = 1000) -> float:
    """Seconds per flush of one changed object, with `size` objects in the session."""
    with Session(engine) as s:
        s.add_all([Customer(name=f"c{i}", email="e") for i in range(size)])
        s.commit()
    with Session(engine, expire_on_commit=False) as s:
        held = s.scalars(select(Customer)).all()  # `size` objects in the identity map
        settle()  # time the flushes, not the inspector catching up with the setup's events
        start = time.perf_counter()
        for i in range(count):
            held[i % len(held)].balance += 1
            s.flush()
        elapsed = time.perf_counter() - start
        s.rollback()
    return elapsed / count


@contextlib.contextmanager
def stuck_viewer():
    """A live server with one viewer that says hello and then never reads a byte."""
    import socket

    import orm_inspector

    server = orm_inspector.serve()
    viewer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    viewer.connect(server.address[5:])
    viewer.sendall(b'{"hello": "orm-inspector", "version": 1, "token": "%s"}\n' % server.token.encode())
    try:
        yield
    finally:
        viewer.close()
        orm_inspector.uninstall()


def listeners_off(family: str) -> None:
    """Register one family of orm_inspector's listeners (or ``all``) and leave capture off: each
    listener then returns at its first line, and what remains is SQLAlchemy's cost of calling it."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Mapper
    from sqlalchemy.pool import Pool

    from orm_inspector import hooks
    from orm_inspector.hooks import engine, pool, session

    if family == "all":
        hooks.register()
    elif family == "engine":
        for name, fn in engine.ENGINE_LISTENERS.items():
            event.listen(Engine, name, fn)
    elif family == "pool":
        for name, fn in pool.POOL_LISTENERS.items():
            event.listen(Pool, name, fn)
    elif family == "session":
        for name, fn in session.SESSION_LISTENERS.items():
            event.listen(Session, name, fn)
    elif family == "lifecycle":
        for name, fn in session.LIFECYCLE_LISTENERS.items():
            event.listen(Session, name, fn, raw=True)
    elif family == "instance":
        event.listen(Mapper, "expire", session.on_expire, raw=True)
        event.listen(Mapper, "refresh", session.on_refresh, raw=True)
    elif family == "attribute":
        Base.registry.configure()
        for mapper in Base.registry.mappers:
            hooks._instrument_mapper(mapper)
    else:
        raise SystemExit(f"unknown family {family!r}")


def settle() -> None:
    """Wait until the inspector's thread has handled everything queued so far (if it runs), then
    start both modes from the same garbage-collector state: otherwise whether one full collection
    (tens of ms with 50,000 objects held) falls inside the 1,000 timed flushes or just before them
    decides the per-flush figure, not what a flush costs."""
    deadline = time.monotonic() + 30
    if "orm_inspector" in sys.modules:
        from orm_inspector.hooks import runtime

        while runtime.queue and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.2)  # and one more pump, in both modes alike
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["oltp", "bulk", "flushes", "none"])
    parser.add_argument("--record")
    parser.add_argument("--echo-to", metavar="FILE",
                        help="SQLAlchemy's own statement logging (what echo=True logs) to FILE, for comparison")
    parser.add_argument("--listeners-off", metavar="FAMILY",
                        help="register these listeners (engine, attribute, lifecycle, session, pool, instance "
                             "or all), switched off; see floor.py")
    parser.add_argument("--stuck-viewer", action="store_true",
                        help="serve() with a viewer connected that never reads")
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    db = tempfile.NamedTemporaryFile(suffix=".db", delete=False).name
    try:
        engine = make_engine(db)
        if args.echo_to:
            import logging

            handler = logging.FileHandler(args.echo_to)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            logging.getLogger("sqlalchemy.engine").addHandler(handler)
            logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # echo=True, to a file
        ctx = contextlib.nullcontext()
        if args.record:
            import orm_inspector

            ctx = orm_inspector.record(args.record)
        if args.stuck_viewer:
            ctx = stuck_viewer()
        if args.listeners_off:
            listeners_off(args.listeners_off)
        import resource

        start = time.perf_counter()
        with ctx:
            if args.workload == "oltp":
                oltp(engine, args.size or 300)
            elif args.workload == "bulk":
                bulk(engine, args.size or 10_000)
            elif args.workload == "flushes":
                per_flush = flushes(engine, args.size or 100)
            # "none": the process alone, which floor.py --callgrind subtracts
        elapsed = time.perf_counter() - start
        out = {"seconds": elapsed, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        if args.workload == "flushes":
            out["per_flush"] = per_flush
        print(json.dumps(out))
    finally:
        os.unlink(db)


if __name__ == "__main__":
    sys.exit(main())
