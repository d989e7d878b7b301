"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when reachable, required under
CI=true), a capture of the event stream, and a clean inspector between tests."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

import orm_inspector
from orm_inspector import signals
from orm_inspector.hooks import runtime
from orm_inspector.transports.dispatcher import dispatcher

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"
PG_ASYNC_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
MARIADB_URL = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}"


def _require_server(name: str, host: str, port: int) -> None:
    """Skip with a reason when the database server is down; under CI=true, fail instead."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    reason = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the {name} tests must run)")
    pytest.skip(reason)


def require_postgres() -> None:
    _require_server("PostgreSQL", PG_HOST, PG_PORT)


def require_mariadb() -> None:
    _require_server("MariaDB", MARIADB_HOST, MARIADB_PORT)


@pytest.fixture(autouse=True)
def clean_inspector() -> Iterator[None]:
    """Every test starts and ends with the inspector off, nothing queued, default options."""
    orm_inspector.uninstall()
    runtime.dropped = runtime.errors = 0
    runtime.error_log.clear()
    yield
    orm_inspector.uninstall()
    orm_inspector.install(redact=True, callsites=True, max_queue=100_000)
    orm_inspector.uninstall()


class Capture(list):
    """Every event the signals deliver, in order; ``kinds()`` and ``of(kind)`` to look at them."""

    def __call__(self, sender, events):
        self.extend(events)

    def sync(self) -> Capture:
        dispatcher.pump(final=True)
        return self

    def kinds(self, *families: str) -> list[str]:
        self.sync()
        return [e.kind for e in self if not families or _family(e) in families]

    def of(self, kind: str) -> list:
        self.sync()
        return [e for e in self if e.kind == kind]


def _family(event) -> str:
    from orm_inspector.events import FAMILIES

    return FAMILIES[type(event)]


@pytest.fixture
def captured() -> Iterator[Capture]:
    """install() with a receiver on signals.events; the list fills as the dispatcher pumps."""
    cap = Capture()
    signals.events.connect(cap, weak=False)
    orm_inspector.install()
    try:
        yield cap
    finally:
        orm_inspector.uninstall()
        signals.events.disconnect(cap)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A MariaDB URL on a fresh database, dropped afterwards."""
    require_mariadb()
    database = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{MARIADB_URL}/")  # no database: the server may have no "test"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    try:
        yield f"{MARIADB_URL}/{database}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE {database}"))
        admin.dispose()


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
])
def db_url(request, tmp_path) -> Iterator[str]:
    """Each test that takes it runs on file SQLite, on PostgreSQL and on MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    elif request.param == "postgresql":
        yield request.getfixturevalue("pg_url")
    else:
        yield request.getfixturevalue("mariadb_url")
