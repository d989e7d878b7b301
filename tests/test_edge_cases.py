"""Edge cases found in review: each of these once went wrong."""

from __future__ import annotations

import gc

import pytest

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import (DeclarativeBase, DynamicMapped, Mapped, Session, WriteOnlyMapped, mapped_column,
                            relationship)

import orm_inspector

from .models import Author, Base


def test_batched_insert_parameters_are_redacted(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    t = Table("creds", MetaData(), Column("id", Integer, primary_key=True), Column("password", String(20)))
    t.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert().returning(t.c.id), [{"password": "hunter2"}, {"password": "s3cret"}])
    [insert] = [e for e in captured.of("before_cursor_execute") if e.statement.startswith("INSERT")]
    assert "hunter2" not in repr(insert.parameters) and "s3cret" not in repr(insert.parameters)
    assert insert.parameters == {"count": 2, "first": [{"password": "<redacted>"}] * 2}


def test_a_redacted_attribute_in_a_column_of_another_name_and_keys_inside_json(sqlite_url, captured):
    """``password`` kept in a column named ``pw``: the statements' bind names are the column's; and a
    JSON value's own keys match the rule too."""
    from sqlalchemy import JSON

    class CredBase(DeclarativeBase):
        pass

    class Cred(CredBase):
        __tablename__ = "cred"
        id: Mapped[int] = mapped_column(primary_key=True)
        password: Mapped[str] = mapped_column("pw", String(20))
        settings: Mapped[dict] = mapped_column(JSON)

    from orm_inspector.hooks.values import redacts

    engine = create_engine(sqlite_url)
    CredBase.metadata.create_all(engine)
    with Session(engine) as s:
        cred = Cred(password="hunter2", settings={"smtp_password": "s3cr3t", "port": 25})
        s.add(cred)
        s.commit()
        cred.password = "hunter3"
        s.commit()
        cred.settings = [{"smtp_password": "s3cr3t-2", "port": 587}]  # alone in its flush: a list of dicts
        s.commit()
        s.scalars(select(Cred).where(Cred.password == "hunter4")).all()
    events = captured.sync()
    for secret in ("hunter2", "hunter3", "hunter4", "s3cr3t"):
        assert secret not in repr(events)
    [edit] = [e for e in events if e.kind == "set" and e.attr == "settings"]
    assert edit.value == [{"smtp_password": "<redacted>", "port": 587}]
    [flushed] = [r for e in captured.of("after_flush") for r in e.dirty or ()
                 if r.cls == "Cred" and "settings" in (r.changes or {})]
    assert flushed.changes["settings"][1] == [{"smtp_password": "<redacted>", "port": 587}]
    [update] = [e for e in captured.of("before_cursor_execute") if e.statement.startswith("UPDATE cred SET pw")]
    assert update.parameters["pw"] == "<redacted>"
    # the bind names SQLAlchemy makes for the column: pw_1 in a WHERE, pw__0 in a batched INSERT
    assert redacts("pw_1") and redacts("pw__0") and redacts("pw_1__2") and not redacts("port")


def test_write_only_and_dynamic_relationships_are_collections(sqlite_url, captured):
    """Their edits fire append/remove like any collection, and a flush writes SQLAlchemy's pending
    history of them: both reach the trace as a collection's changes do."""
    class WBase(DeclarativeBase):
        pass

    class Owner(WBase):
        __tablename__ = "owner"
        id: Mapped[int] = mapped_column(primary_key=True)
        posts: WriteOnlyMapped["Post"] = relationship()
        notes: DynamicMapped["Note"] = relationship()

    class Post(WBase):
        __tablename__ = "post"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("owner.id"))

    class Note(WBase):
        __tablename__ = "note"
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("owner.id"))

    engine = create_engine(sqlite_url)
    WBase.metadata.create_all(engine)
    with Session(engine) as s:
        owner = Owner()
        s.add(owner)
        s.commit()
        post, note = Post(), Note()
        owner.posts.add(post)
        owner.notes.append(note)
        assert owner in s.dirty
        s.flush()
        s.rollback()
    events = captured.sync()
    edits = [(e.kind, e.attr, e.value.cls) for e in events if e.kind in ("append", "remove")]
    assert edits == [("append", "posts", "Post"), ("append", "notes", "Note")]
    [flushed] = [r for e in captured.of("after_flush") for r in e.dirty or () if r.cls == "Owner"]
    assert {k: [m.cls for m in v["added"]] for k, v in flushed.changes.items()} == {"posts": ["Post"], "notes": ["Note"]}
    assert all(v["removed"] == [] for v in flushed.changes.values())


def test_an_identity_is_written_as_the_values_that_refer_to_it(sqlite_url, captured):
    """A bytes or enum primary key: the same text in ``obj.identity`` as in a parameter or a value."""
    import enum

    from sqlalchemy import Enum, LargeBinary

    class Color(enum.Enum):
        RED = "r"

    class KBase(DeclarativeBase):
        pass

    class Tagged(KBase):
        __tablename__ = "tagged"
        code = mapped_column(LargeBinary(8), primary_key=True)  # (no annotations: Color is local)
        color = mapped_column(Enum(Color), primary_key=True)
        note = mapped_column(String(20), default="")

    engine = create_engine(sqlite_url)
    KBase.metadata.create_all(engine)
    with Session(engine) as s:
        tagged = Tagged(code=b"\x01\x02", color=Color.RED)
        s.add(tagged)
        s.commit()
        assert s.get(Tagged, (b"\x01\x02", Color.RED)) is tagged
        tagged.note = "n"
        s.flush()
        s.rollback()
    [p2p] = captured.of("pending_to_persistent")
    assert p2p.obj.identity == ("0102", "Color.RED")
    [edit] = [e for e in captured.of("set") if e.attr == "note"]
    assert edit.obj.identity == ("0102", "Color.RED") and edit.obj.key == p2p.obj.key


class Curious:
    """A value that notes every attribute it is asked for and does not have."""

    asked: list[str] = []

    def __getattr__(self, name):
        Curious.asked.append(name)
        raise AttributeError(name)


def test_a_changed_value_is_never_asked_for_attributes(sqlite_url, captured):
    """Flush changes are read by the attribute's kind, never by probing the value (which could run
    the app's __getattr__ or load an expired object)."""
    from sqlalchemy import PickleType

    class PBase(DeclarativeBase):
        pass

    class Box(PBase):
        __tablename__ = "box"
        id = mapped_column(Integer, primary_key=True)
        thing = mapped_column(PickleType)

    engine = create_engine(sqlite_url)
    PBase.metadata.create_all(engine)
    with Session(engine) as s:
        box = Box(thing=Curious())
        s.add(box)
        s.commit()
        assert isinstance(box.thing, Curious)  # loaded: the old value of the change below
        box.thing = Curious()
        s.flush()
        s.rollback()
    captured.sync()
    assert [e for e in captured if e.kind == "after_flush" and e.dirty]  # the change was read
    assert [name for name in Curious.asked if not name.startswith("__")] == []


def test_a_long_json_parameter_is_cut_not_parsed(sqlite_url, captured):
    """Past 64 KB a document is not parsed (the app would wait for it): its start is written, or
    "<redacted>" if a redacted name is in it."""
    from sqlalchemy import JSON

    class JBase(DeclarativeBase):
        pass

    class Doc(JBase):
        __tablename__ = "doc"
        id = mapped_column(Integer, primary_key=True)
        body = mapped_column(JSON)

    engine = create_engine(sqlite_url)
    JBase.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Doc(body={"api_key": "k-123", "data": "x" * 100_000}), Doc(body={"data": "y" * 100_000})])
        s.commit()
    inserts = [e for e in captured.of("before_cursor_execute") if e.statement.startswith("INSERT INTO doc")]
    values = [p for e in inserts for p in (e.parameters.values() if isinstance(e.parameters, dict) else
                                          [v for row in e.parameters.get("first", []) for v in row.values()])]
    bodies = [v for v in values if isinstance(v, str) and ("data" in v or v == "<redacted>")]
    assert "k-123" not in repr(inserts)
    assert "<redacted>" in bodies and any(v.startswith('{"data": "yyy') and len(v) < 300 for v in bodies)


def test_a_mapper_configured_while_capture_is_off_is_instrumented_later(sqlite_url, captured):
    orm_inspector.uninstall()

    class LateBase(DeclarativeBase):
        pass

    class Late(LateBase):
        __tablename__ = "late"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(20))

    engine = create_engine(sqlite_url)
    LateBase.metadata.create_all(engine)
    with Session(engine) as s:  # configures the mapper while capture is off
        s.add(Late(name="a"))
        s.commit()
    orm_inspector.install()
    with Session(engine) as s:
        late = s.scalars(select(Late)).one()
        late.name = "b"
        [edit] = [e for e in captured.of("set") if e.obj.cls == "Late"]
        assert (edit.old, edit.value) == ("a", "b")


@pytest.mark.filterwarnings("ignore:The `objects` parameter")
def test_a_flush_with_nothing_to_do_does_not_claim_later_statements(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="ann"))
        s.commit()
        ann = s.scalars(select(Author)).one()
        bob = Author(name="bob")
        s.add(bob)  # the session is dirty, so flush([ann]) fires before_flush, and ann has nothing to do
        s.flush([ann])
        mark = len(captured.sync())
        with s.no_autoflush:  # bob stays pending: the query is the only statement
            s.scalars(select(Author)).all()
        [query] = [e for e in captured.sync()[mark:] if e.kind == "before_cursor_execute"]
        assert query.cause == {"kind": "execute"}


def test_every_close_that_changes_something_is_reported(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    s = Session(engine)
    for i in range(30):
        s.add(Author(name=f"a{i}"))
        s.commit()
        s.scalars(select(Author)).all()
        s.close()
        gc.collect()
    assert len(captured.of("session_close")) == 30


def test_the_flush_subtransaction_stays_hidden(sqlite_url, captured):
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Author(name="x"))
        s.commit()
        s.add(Author(name=None))  # NOT NULL: the flush fails and rolls back its subtransaction
        try:
            s.flush()
        except Exception:
            s.rollback()
    created = {e.transaction for e in captured.of("after_transaction_create")}
    for e in captured.of("after_soft_rollback") + captured.of("after_transaction_end"):
        assert e.transaction in created


def test_instrument_after_install_keeps_everything(sqlite_url, captured):
    engine, other = create_engine(sqlite_url), create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    orm_inspector.instrument(engine)
    with Session(other) as s:
        s.add(Author(name="still seen"))
        s.commit()
    assert captured.of("pending_to_persistent")


def test_uninstall_finishes_a_recording_exactly(sqlite_url, tmp_path):
    from orm_inspector.transports.trace import TraceReader

    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with Session(engine) as s:
        s.add(Author(name="ann"))
        s.commit()
        cm = orm_inspector.record(path)
        cm.__enter__()
        ann = s.scalars(select(Author)).one()
        s.delete(ann)
        orm_inspector.uninstall()  # closes the recording: the delete must be in it
        kinds = [e["kind"] for e in TraceReader(path)]
        cm.__exit__(None, None, None)
    assert "deleted_mark" in kinds and kinds[-1] == "trace_end"


def test_values_of_builtin_subclasses_are_written_plain_without_their_methods(sqlite_url, tmp_path):
    from orm_inspector.transports.trace import TraceReader

    class Loud(str):
        def __str__(self):  # user code: must never run
            raise AssertionError("called")

        __repr__ = __str__

    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with orm_inspector.record(path):
        with Session(engine) as s:
            s.add(Author(name="ann"))
            s.commit()
            ann = s.scalars(select(Author)).one()
            ann.name = Loud("loud")
            s.commit()
    events = list(TraceReader(path))
    assert not [e for e in events if e["kind"] == "inspector_error"]
    [edit] = [e for e in events if e["kind"] == "set"]
    assert edit["value"] == "loud"
    [update] = [e for e in events if e["kind"] == "before_cursor_execute" and e["statement"].startswith("UPDATE")]
    assert update["parameters"]["name"] == "loud"
