"""`orm-inspector state FILE [--at SEQ] [--json]` on real recordings."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import orm_inspector
from orm_inspector.transports.trace import TraceReader

from .models import Author, Base


def cli(*args):
    return subprocess.run([sys.executable, "-m", "orm_inspector", *args], capture_output=True, text=True)


def record(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    path = tmp_path / "t.jsonl"
    with orm_inspector.record(path):
        s = Session(engine)
        s.add(Author(name="ann"))
        s.commit()
        ann = s.scalars(select(Author)).one()
        ann.name = "anne"
        s.add(Author(name="bob"))  # pending when the recording stops
        # the session stays open, in a transaction, holding a connection
    s.close()
    return path, ann


def test_state_at_the_end_as_json(tmp_path):
    path, ann = record(tmp_path)
    r = cli("state", str(path), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    [session] = data["sessions"]
    [obj] = session["identity_map"]
    assert (obj["cls"], obj["identity"], obj["state"], obj["modified"]) == ("Author", [1], "persistent", ["name"])
    assert [o["cls"] for o in session["new"]] == ["Author"] and session["new"][0]["identity"] is None
    assert session["dirty"] == [{"cls": "Author", "identity": [1], "key": obj["key"]}]
    assert session["transaction"]["connections"] and not session["closed"]
    [conn] = data["connections"]
    assert conn["status"] == "checked_out" and conn["session"] == session["id"]


def test_state_at_an_earlier_event(tmp_path):
    path, _ = record(tmp_path)
    commit = next(e["seq"] for e in TraceReader(path) if e["kind"] == "after_commit")
    data = json.loads(cli("state", str(path), "--at", str(commit), "--json").stdout)
    assert data["seq"] == commit
    [session] = data["sessions"]
    assert session["new"] == [] and session["dirty"] == []
    [obj] = session["identity_map"]
    assert obj["expired"] is True  # expire_on_commit


def test_state_as_text_and_errors(tmp_path):
    path, _ = record(tmp_path)
    r = cli("state", str(path))
    assert r.returncode == 0 and "identity map: 1 object(s)" in r.stdout and "checked_out" in r.stdout
    r = cli("state", str(path), "--at", "100000")
    assert r.returncode != 0 and r.stderr.startswith("orm-inspector:") and "Traceback" not in r.stderr
    r = cli("state", str(path), "--at", "-5")
    assert r.returncode != 0 and "--at -5" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("state", str(tmp_path / "missing.jsonl"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
