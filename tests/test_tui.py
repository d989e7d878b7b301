"""The screen, driven by Textual's Pilot: what it shows equals the state, keys do what the footer
says, live sources keep folding while the screen is paused, and each main screen is snapshotted at
80x24 and 160x50 (tests/__snapshots__; update with --snapshot-update after looking at the change)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.state import fold
from orm_inspector.state.view import View
from orm_inspector.transports.pump import SourcePump
from orm_inspector.transports.sources import LiveSource
from orm_inspector.transports.trace import TraceReader
from orm_inspector.tui.app import InspectorApp
from orm_inspector.tui.launch import replay_app
from orm_inspector.tui.tables import KeyedTable

from .models import Author, Base, Book

TRACE = Path(__file__).parent / "data" / "bookshop.jsonl"
BUSY_SEQ = 411  # two clerks at work: objects pending and modified, a flush under way, two connections out


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Clock times on screen are local: the snapshots are drawn in UTC wherever they run."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def quiet_replay(seq: int | None = None) -> InspectorApp:
    app = replay_app(TRACE)
    app.hints = False
    app.sub_title = "replay: bookshop.jsonl"  # not the checkout's path: the snapshots hold it
    if seq is not None:
        app.view.seek(seq)
    return app


def table_keys(app, selector: str) -> set[str]:
    return app.query_one(selector, KeyedTable).keys


async def test_the_session_table_shows_exactly_the_folded_state():
    app = quiet_replay(BUSY_SEQ)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        key = app.selected_session
        pid, sid = key.split("/")
        state = fold(TraceReader(TRACE), upto=BUSY_SEQ)
        s = state.sessions[sid]
        assert table_keys(app, "#objects") == set(s.identity_map) | set(s.new)
        for seq_delta in (1, 1, 1, -1):  # and it follows each step, both ways
            await pilot.press("full_stop" if seq_delta > 0 else "comma")
            await pilot.pause()
        state = fold(TraceReader(TRACE), upto=app.view.seq)
        s = state.sessions.get(sid)
        assert app.view.seq == BUSY_SEQ + 2
        assert table_keys(app, "#objects") == (set(s.identity_map) | set(s.new) | set(s.flushed_deleted) if s else set())


async def test_replay_keys_step_jump_and_go_to():
    app = quiet_replay(0)
    events = list(TraceReader(TRACE))
    flushes = [e["seq"] for e in events if e["kind"] == "before_flush"]
    commits = [e["seq"] for e in events if e["kind"] == "after_commit"]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("full_stop", "full_stop", "full_stop", "comma")
        assert app.view.seq == 2
        await pilot.press("right_square_bracket")
        assert app.view.seq == flushes[0]
        await pilot.press("right_square_bracket", "left_square_bracket")
        assert app.view.seq == flushes[0]
        await pilot.press("c")
        assert app.view.seq == commits[0]
        await pilot.press("g")
        await pilot.press(*"700", "enter")
        await pilot.pause()
        assert app.view.seq == 700
        assert "seq 700/" in str(app.query_one("#timeline").render())


async def test_replay_plays_to_the_end_and_stops():
    app = quiet_replay(0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("plus", "plus", "plus")  # 10,000 events a second: the trace's 1,000 in a few frames
        await pilot.press("space")
        deadline = time.monotonic() + 10
        while app.view.seq < app.view.last_seq and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.view.seq == app.view.last_seq and not app.playing


async def test_object_detail_shows_changes_story_and_sql():
    app = quiet_replay(BUSY_SEQ)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#objects", KeyedTable)
        table.focus()
        state = fold(TraceReader(TRACE), upto=BUSY_SEQ)
        s = state.sessions[app.selected_session.split("/")[1]]
        changed = next(o for o in s.identity_map.values() if o.changes)
        row = list(table._cells).index(changed.key)
        table.move_cursor(row=row)
        await pilot.pause()
        detail = str(app.query_one("#object-detail").render())
        assert "changes not yet flushed" in detail and next(iter(changed.changes)) in detail
        assert "loaded_as_persistent" in detail  # its story


async def test_the_sql_filter_keeps_only_matching_statements():
    app = quiet_replay()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("5", "slash")
        await pilot.press(*"kind:lazy_load")
        await pilot.pause()
        rows = app.query_one("#statements", KeyedTable)._cells
        assert rows and all(str(cells[2]).startswith("lazy load") for cells in rows.values())


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


async def test_live_pause_freezes_the_screen_while_the_state_keeps_folding(engine):
    server = orm_inspector.serve()
    try:
        source = LiveSource(server.address, server.token)
        view = View()
        view.hello(source.hello)
        app = InspectorApp(view, pump=SourcePump(source), title="test")
        app.hints = False
        async with app.run_test(size=(120, 40)) as pilot:
            with Session(engine) as s:
                s.add(Author(name="ann", books=[Book(title="a1")]))
                s.commit()
            await wait_for(pilot, lambda: view.counters()["events"] > 10)
            await pilot.press("space")
            frames, events = app.frames, view.counters()["events"]
            with Session(engine) as s:
                for a in s.scalars(select(Author)):
                    a.name = "anne"
                s.commit()
            await wait_for(pilot, lambda: view.counters()["events"] > events)
            await pilot.pause(0.6)
            assert app.frames == frames  # frozen
            assert "PAUSED" in str(app.query_one("#status").render())
            await pilot.press("space")
            await pilot.pause(0.5)
            assert app.frames > frames
    finally:
        server.close()


async def test_a_lost_source_is_shown_not_hidden(engine):
    server = orm_inspector.serve()
    source = LiveSource(server.address, server.token)
    view = View()
    view.hello(source.hello)
    app = InspectorApp(view, pump=SourcePump(source), title="test")
    app.hints = False
    async with app.run_test(size=(120, 40)) as pilot:
        server.close()
        await wait_for(pilot, lambda: any(p.status != "live" for p in view.processes.values()))
        await pilot.pause(0.5)
        status = str(app.query_one("#status").render())
        assert f"pid {os.getpid()}" in status


async def test_the_demo_shows_its_clerks_sessions_live():
    from orm_inspector.tui.launch import demo_app

    app = demo_app(threads=2, pause=0.05)
    app.hints = False
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: any(s.thread and s.thread.startswith("clerk-") for _, s in app.view.sessions()),
                       timeout=20)
        await wait_for(pilot, lambda: any(k.split("/")[1] for k in table_keys(app, "#sessions")))
        await pilot.press("3")
        await wait_for(pilot, lambda: table_keys(app, "#connections"))
        await pilot.press("q")


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


# ---- snapshots: each main screen, small and large ---------------------------------------------------
SCREENS = {
    "overview": ("1",),
    "session": ("2", "down", "down"),
    "pool": ("3",),
    "events": ("4",),
    "sql": ("5", "up"),
}


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_snapshot(snap_compare, screen, size):
    async def keys(pilot):
        await pilot.press(*SCREENS[screen])
        await pilot.pause()

    assert snap_compare(quiet_replay(BUSY_SEQ), terminal_size=size, run_before=keys)


async def test_connect_follows_every_process_of_a_forking_app(tmp_path):
    import subprocess
    import sys
    import textwrap

    from orm_inspector.tui.launch import connect_app

    app_py = tmp_path / "app.py"
    app_py.write_text(textwrap.dedent("""
        import os, time
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session
        engine = create_engine("sqlite://")
        child = os.fork()
        for i in range(400):
            with Session(engine) as s:
                s.execute(text("SELECT 'from the worker'" if child == 0 else "SELECT 'from the parent'"))
            time.sleep(0.05)
        if child:
            os.waitpid(child, 0)
    """))
    sock = tmp_path / "live.sock"
    token_file = None
    program = subprocess.Popen([sys.executable, "-m", "orm_inspector", "run", "--listen", f"unix:{sock}", "--",
                                sys.executable, str(app_py)], stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        line = program.stderr.readline().decode()
        token_file = Path(line.rsplit("token in ", 1)[1].strip())
        token = token_file.read_text().strip()
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        app = connect_app(f"unix:{sock}", token)
        app.hints = False
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: len(app.view.processes) == 2, timeout=20)
            await pilot.press("5")
            await wait_for(pilot, lambda: {str(cells[-1]) for cells in app.query_one("#statements", KeyedTable)._cells.values()}
                           >= {"SELECT 'from the worker'", "SELECT 'from the parent'"})
            await pilot.press("1")
            await wait_for(pilot, lambda: all(f"pid {pid}" in str(app.query_one("#processes").render())
                                              for pid in app.view.processes))
    finally:
        program.kill()
        program.wait()
        if token_file is not None:  # killed: nothing removed the token's private directory
            import shutil

            shutil.rmtree(token_file.parent, ignore_errors=True)


async def test_a_log_follows_its_end_until_the_reader_moves_up():
    events = list(TraceReader(TRACE))
    view = View()
    view.hello({"pid": events[0]["pid"]})
    for e in events[:200]:
        view.apply(e)
    app = InspectorApp(view, title="test")
    app.hints = False
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#event-log", KeyedTable)
        assert table.selected_key() == f"{events[0]['pid']}/200"
        for e in events[200:210]:
            view.apply(e)
        await pilot.pause(0.4)
        assert table.selected_key() == f"{events[0]['pid']}/210"  # followed
        await pilot.press("up")
        for e in events[210:220]:
            view.apply(e)
        await pilot.pause(0.4)
        assert table.selected_key() == f"{events[0]['pid']}/209" and f"{events[0]['pid']}/220" not in table.keys
        await pilot.press("end")
        await pilot.pause(0.4)
        for e in events[220:230]:
            view.apply(e)
        await pilot.pause(0.4)
        assert table.selected_key() == f"{events[0]['pid']}/230"


async def test_the_replayed_logs_end_at_the_event_shown_in_order():
    app = quiet_replay()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#event-log", KeyedTable)
        table.move_cursor(row=0)  # a reader up the log: the replay still shows where it is
        await pilot.press("comma", "comma", "comma", "comma", "comma")
        await pilot.pause(0.3)
        seqs = [int(key.split("/")[1]) for key in table._cells]
        assert seqs == sorted(seqs) and seqs[-1] == app.view.seq == app.view.last_seq - 5
        app.view.seek(700)
        app.refresh_screen(force=True)
        await pilot.pause(0.3)
        seqs = [int(key.split("/")[1]) for key in table._cells]
        assert seqs == sorted(seqs) and seqs[-1] == 700


async def test_playing_goes_at_the_chosen_speed():
    app = quiet_replay(0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("minus")  # 1 event a second
        await pilot.press("space")
        await pilot.pause(2.2)
        assert 1 <= app.view.seq <= 3
        await pilot.press("space", "plus")  # stop; 10 a second
        start = app.view.seq
        await pilot.press("space")
        await pilot.pause(1.1)
        assert 8 <= app.view.seq - start <= 14
