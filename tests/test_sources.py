"""The same events, however they arrive (file, socket, this process), fold into the same state."""

from __future__ import annotations

import os
import threading

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.state import State
from orm_inspector.transports.sources import FeedSource, FileSource, LiveSource

from .models import Author, Base, Book


def fold_source(source) -> State:
    state = State()
    for event in source:
        state.apply(event)
    return state


def comparable(state: State) -> dict:
    data = state.to_json()
    data.pop("seq")
    data["counters"].pop("events")
    for s in data["sessions"]:  # seqs: a file's are renumbered, a stream's are the process's own
        s.pop("closed_at", None)
        for sql in s.get("recent_sql", ()):
            sql.pop("seq")
    return data


def test_file_socket_and_feed_give_the_same_state(sqlite_url, tmp_path):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    server = orm_inspector.serve()
    feed = FeedSource()
    live = LiveSource(server.address, server.token)
    live_state: dict = {}
    reader = threading.Thread(target=lambda: live_state.setdefault("state", fold_source(live)), daemon=True)
    reader.start()
    path = tmp_path / "t.jsonl"
    try:
        with orm_inspector.record(path):
            with Session(engine) as s:
                s.add(Author(name="ann", books=[Book(title="a1")]))
                s.commit()
                ann = s.scalars(select(Author)).one()
                ann.name = "anne"
                s.flush()
                held = Session(engine)
                held.add(Author(name="still pending"))
                with held.no_autoflush:  # SQLite: one writer at a time
                    held.scalars(select(Author)).all()  # holds a connection, in a transaction
    finally:
        feed.close()
        orm_inspector.uninstall()  # the server closes: the live stream ends
        reader.join(timeout=10)
    from_file = fold_source(FileSource(path))
    from_feed = fold_source(feed)
    from_live = live_state["state"]
    assert comparable(from_file) == comparable(from_feed) == comparable(from_live)
    [open_session] = [x for x in from_file.to_json()["sessions"] if not x["closed"]]
    assert [o["cls"] for o in open_session["new"]] == ["Author"]
    held.close()


def test_a_full_feed_says_how_much_it_lost(sqlite_url):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    orm_inspector.install()
    feed = FeedSource(max_events=50)
    try:
        with Session(engine) as s:
            s.add_all([Author(name=f"a{i}") for i in range(200)])
            s.commit()
        from orm_inspector.transports.dispatcher import dispatcher

        dispatcher.pump(final=True)
        with Session(engine) as s:  # a later batch, after the reader catches up, carries the notice
            it = iter(feed)
            got = [next(it) for _ in range(50)]
            s.add(Author(name="late"))
            s.commit()
            dispatcher.pump(final=True)
            notice = next(it)
    finally:
        feed.close()
    assert len(got) == 50 and notice["kind"] == "dropped" and notice["count"] > 0
    assert notice["pid"] == os.getpid()  # whose: a viewer of several processes counts it for the right one
