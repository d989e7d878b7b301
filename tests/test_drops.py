"""Rule 3: a bounded hand-off; what does not fit is counted and reported, never silently lost."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.hooks import runtime
from orm_inspector.summary import render, summarize
from orm_inspector.transports.trace import TraceReader

from .models import Author, Base


def test_a_full_queue_drops_counts_and_reports(sqlite_url, tmp_path):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with orm_inspector.record(path, max_queue=20):
        with Session(engine) as s:
            s.add_all([Author(name=f"a{i}") for i in range(500)])  # ~1000 events in well under 50 ms
            s.commit()
        assert s.get  # the app went on
    reader = TraceReader(path)
    events = list(reader)
    drops = [e for e in events if e["kind"] == "dropped"]
    assert drops, "a full queue must say so"
    assert sum(e["count"] for e in drops) == runtime.dropped == events[-1]["dropped"] > 0
    text = render(summarize(TraceReader(path)), str(path), [])
    assert "events dropped" in text


def test_the_queue_never_holds_more_than_its_bound(sqlite_url):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    orm_inspector.install(max_queue=50)
    from orm_inspector import signals

    def sink(sender, events):
        pass

    signals.events.connect(sink)
    try:
        from orm_inspector.transports.dispatcher import dispatcher

        dispatcher._stop.set()  # the inspector's thread stops consuming: the app must not notice
        with Session(engine) as s:
            s.add_all([Author(name=f"a{i}") for i in range(300)])
            s.commit()
        assert len(runtime.queue) <= 50
        assert runtime.dropped > 0
    finally:
        signals.events.disconnect(sink)
