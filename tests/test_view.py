"""The viewer's model without a screen: the state restored from a snapshot, the journal's pairing and
stories, the filters, the replay's seek and jumps, and the touched keys that drive keyed redraws."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.state import State, Timeline, fold
from orm_inspector.state.journal import Journal, matches, one_line
from orm_inspector.state.view import ReplayView, View, session_status
from orm_inspector.transports.trace import TraceReader

from .models import Author, Book

TRACE = Path(__file__).parent / "data" / "bookshop.jsonl"


def events():
    return list(TraceReader(TRACE))


def test_a_state_restored_from_its_json_folds_on_exactly_like_the_original():
    evs = events()
    for cut in (50, 411, 700, len(evs) - 5):
        original = fold(evs[:cut])
        restored = State.from_json(original.to_json())
        assert restored.to_json() == original.to_json()
        for e in evs[cut:]:
            original.apply(e)
            restored.apply(e)
        assert restored.to_json() == original.to_json(), cut


def test_objects_carry_their_unflushed_changes_and_what_their_last_flush_wrote(sqlite_url, tmp_path):
    from sqlalchemy import create_engine

    from .models import Base

    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="ann", books=[Book(title="a1")]))
        s.commit()
    path = tmp_path / "t.jsonl"
    with orm_inspector.record(path):
        with Session(engine) as s:
            ann = s.scalars(select(Author)).one()
            assert ann.books  # loaded first: its lazy load would autoflush the edits below
            ann.name = "anne"
            ann.name = "annie"  # the first old value stays, the last new one wins
            ann.books.append(Book(title="a2"))
            s.flush()
            ann.name = "ann again"
            s.expunge_all()
    evs = list(TraceReader(path))
    before_flush = next(i for i, e in enumerate(evs) if e["kind"] == "before_flush")
    st = fold(evs[:before_flush])
    [sess] = st.sessions.values()
    [author] = [o for o in sess.identity_map.values() if o.cls == "Author"]
    assert author.changes["name"] == ["ann", "annie"]
    assert [ref["cls"] for ref in author.changes["books"]["added"]] == ["Book"]
    flushed_at = next(i for i, e in enumerate(evs) if e["kind"] == "after_flush") + 1
    st = fold(evs[:flushed_at])
    [author] = [o for o in st.sessions[sess.id].identity_map.values() if o.cls == "Author"]
    assert author.changes == {} and author.flushed["name"] == ["ann", "annie"]
    edited = next(i for i, e in enumerate(evs) if e["kind"] == "set" and e.get("value") == "ann again") + 1
    st = fold(evs[:edited])
    [author] = [o for o in st.sessions[sess.id].identity_map.values() if o.cls == "Author"]
    assert author.changes == {"name": ["annie", "ann again"]}


def test_the_journal_pairs_statements_and_tells_an_objects_story():
    journal = Journal()
    journal.extend(events())
    assert len(journal.statements) == sum(1 for e in events() if e["kind"] == "before_cursor_execute")
    assert all(st.duration is not None for st in journal.statements)
    lazy = [st for st in journal.statements if st.cause.get("kind") == "lazy_load"]
    assert lazy and all(st.cause_text.startswith("lazy load ") for st in lazy)
    obj = lazy[0].cause["obj"]
    story = journal.story(lazy[0].pid, obj["key"])
    assert story[0]["kind"] == "loaded_as_persistent"
    assert lazy[0] in journal.statements_for(lazy[0].pid, obj["key"])


def test_the_journal_stays_bounded():
    journal = Journal(max_events=100)
    journal.extend(events())
    assert len(journal.events) == 100 and len(journal.statements) <= 100


@pytest.mark.parametrize(("query", "kinds"), [
    ("kind:flush", {"before_flush", "after_flush", "after_flush_postexec"}),
    ("cls:Order kind:to_", {"transient_to_pending", "pending_to_persistent", "persistent_to_detached",
                            "loaded_as_persistent", "persistent_to_deleted", "deleted_to_detached",
                            "persistent_to_transient"}),
])
def test_the_log_filter_keeps_what_it_names(query, kinds):
    kept = [e for e in events() if matches(e, query)]
    assert kept and {e["kind"] for e in kept} <= kinds


def test_the_log_filter_finds_words_in_statements():
    kept = [e for e in events() if matches(e, "insert order_lines")]
    assert kept and all("INSERT INTO order_lines" in one_line(e) for e in kept)
    assert not [e for e in events() if matches(e, "session:s2 session:s3")]


def test_replay_view_equals_a_fold_at_every_point_it_visits():
    view = ReplayView(Timeline(TRACE, every=100))
    evs = events()
    for seq in (1, 411, 412, 700, 699, 150, view.last_seq):
        view.seek(seq)
        assert view.processes[view.pid].state.to_json() == fold(evs, upto=seq).to_json()
        assert view.journal.events[-1]["seq"] == seq  # the log ends at the event shown
    view.seek(400)
    view.step(1)
    assert view.seq == 401 and [e["seq"] for e in list(view.journal.events)[-2:]] == [400, 401]


def test_replay_jumps_land_on_the_marks():
    view = ReplayView(Timeline(TRACE))
    view.seek(0)
    flushes = [e["seq"] for e in events() if e["kind"] == "before_flush"]
    assert view.jump("flush", 1) and view.seq == flushes[0]
    assert view.jump("flush", 1) and view.seq == flushes[1]
    assert view.jump("flush", -1) and view.seq == flushes[0]
    assert not view.jump("flush", -1)
    commits = [e["seq"] for e in events() if e["kind"] == "after_commit"]
    assert view.jump("commit", 1) and view.seq == commits[0]
    key = "o58"
    mine = [e["seq"] for e in events() if (e.get("obj") or {}).get("key") == key]
    view.seek(0)
    assert view.jump("object", 1, key) and view.seq == mine[0]
    assert view.jump("object", 1, key) and view.seq == mine[1]
    assert [e["seq"] for e in view.story(key)] == mine[:2]


def test_touched_keys_name_exactly_the_objects_that_changed():
    view = View()
    evs = events()
    for e in evs[:300]:
        view.apply(e)
    pid = evs[0]["pid"]
    sid = next(e["session"] for e in evs[300:] if e.get("obj") and e.get("session"))
    view.take_touched(pid, sid)
    nxt = next(i for i, e in enumerate(evs) if i >= 300 and e.get("session") == sid and e.get("obj"))
    for e in evs[300:nxt + 1]:
        view.apply(e)
    assert evs[nxt]["obj"]["key"] in view.take_touched(pid, sid)
    assert view.take_touched(pid, sid) == set()  # taken
    view.apply({"seq": 10**6, "ts": 1.0, "kind": "session_snapshot", "pid": pid, "thread": "orm-inspector",
                "session": sid, "identity_map": [], "new": [], "dirty": [], "deleted": [], "expired": []})
    assert view.take_touched(pid, sid) is None  # a snapshot replaces the session: every row may change


def test_session_status_follows_flush_and_transaction():
    view = ReplayView(Timeline(TRACE))
    first_flush = next(e for e in events() if e["kind"] == "before_flush" and (e.get("new") or e.get("dirty")))
    view.seek(first_flush["seq"])
    assert session_status(view.session(view.pid, first_flush["session"])) == "flushing"
    done = next(e for e in events() if e["kind"] == "after_flush_postexec" and e["seq"] > first_flush["seq"]
                and e["session"] == first_flush["session"])
    view.seek(done["seq"])
    assert session_status(view.session(view.pid, first_flush["session"])) == "in transaction"


def test_a_sessions_thread_is_the_apps_not_the_inspectors():
    st = State()
    st.apply({"seq": 1, "ts": 1.0, "kind": "after_transaction_create", "session": "s1", "transaction": "t1",
              "origin": "autobegin", "thread": "worker-1"})
    st.apply({"seq": 2, "ts": 2.0, "kind": "gc_evicted", "session": "s1", "thread": "orm-inspector",
              "obj": {"cls": "A", "identity": [1], "key": "o1"}})
    assert st.sessions["s1"].thread == "worker-1" and st.sessions["s1"].last == 1.0


def test_a_step_back_forgets_the_last_events_exactly():
    view = ReplayView(Timeline(TRACE, every=100))
    fresh = ReplayView(Timeline(TRACE, every=100))
    for seq in (500, 499, 480, 481, 300):
        view.seek(seq)
        fresh.seek(0)
        fresh.seek(seq)  # rebuilt from scratch
        got = [(st.seq, st.duration, st.rows) for st in view.journal.statements]
        want = [(st.seq, st.duration, st.rows) for st in fresh.journal.statements if st.seq >= got[0][0]]
        assert got == want, seq
        assert [e["seq"] for e in view.journal.events][-50:] == [e["seq"] for e in fresh.journal.events][-50:]


def test_transitions_get_the_call_site_they_happened_at_where_it_is_certain():
    journal = Journal()
    journal.extend(events())
    for e in journal.events:
        if e["kind"] == "pending_to_persistent":  # inside a flush: where the app flushed
            flush = max((f for f in events() if f["kind"] == "before_flush" and f["session"] == e["session"]
                         and f["seq"] < e["seq"]), key=lambda f: f["seq"])
            assert e["at"] == flush["site"]
        elif e["kind"] == "loaded_as_persistent":  # its SELECT
            select = max((s for s in events() if s["kind"] == "before_cursor_execute"
                          and s.get("session") == e["session"] and s["seq"] < e["seq"]), key=lambda s: s["seq"])
            assert e["at"] == select["site"]
        elif e["kind"] == "transient_to_pending":  # session.add(): no statement, no site to be sure of
            assert "at" not in e


def test_after_a_step_back_and_forth_the_story_keeps_its_call_sites():
    moved = ReplayView(Timeline(TRACE, every=100))
    fresh = ReplayView(Timeline(TRACE, every=100))
    for there, back in ((290, 270), (700, 650), (411, 400)):
        moved.seek(there)
        moved.seek(back)
        moved.seek(there)
        fresh.seek(0)
        fresh.seek(there)
        assert [e.get("at") for e in moved.journal.events][-100:] == [e.get("at") for e in fresh.journal.events][-100:]


def test_a_failed_flush_is_not_flushing_any_more(sqlite_url, tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.exc import IntegrityError

    from .models import Base

    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with orm_inspector.record(path):
        with Session(engine) as s:
            s.add(Author(id=1, name="ann"))
            s.commit()
            with s.begin_nested():
                pass
            nested = s.begin_nested()
            s.add(Author(id=1, name="again"))  # the same primary key: the flush fails
            with pytest.raises(IntegrityError):
                s.flush()
            nested.rollback()  # the root transaction stays open
            s.scalars(select(Author)).all()
    evs = list(TraceReader(path))
    failed = max(i for i, e in enumerate(evs) if e["kind"] == "before_flush")
    after = fold(evs[:failed + 1])
    [sid] = {e["session"] for e in evs if e.get("session")}
    assert session_status(after.sessions[sid]) == "flushing"
    rolled = next(i for i, e in enumerate(evs) if i > failed and e["kind"] in ("after_soft_rollback",
                                                                                 "after_transaction_end"))
    assert session_status(fold(evs[:rolled + 1]).sessions[sid]) == "in transaction"


def test_an_ended_process_stops_ageing():
    view = View()
    view.hello({"pid": 7})
    view.apply({"seq": 1, "ts": 100.0, "kind": "after_transaction_create", "pid": 7, "session": "s1",
                "transaction": "t1", "origin": "autobegin", "thread": "w"})
    assert view.processes[7].now(500.0) == 500.0  # live: the wall clock
    view.end(7, "lost", "lost: connection reset")
    p = view.processes[7]
    assert p.now(500.0) == 100.0 and (p.status, p.reason) == ("lost", "connection reset")
