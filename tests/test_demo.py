"""The bundled demo (demo/): it runs, and its trace shows every ORM behaviour it claims to teach."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orm_inspector
from orm_inspector.transports.trace import TraceReader

import demo.app

ROOT = Path(__file__).resolve().parent.parent


def test_demo_trace_shows_every_unit_of_work(tmp_path):
    path = tmp_path / "demo.jsonl"
    lines: list[str] = []
    with orm_inspector.record(path):
        demo.app.run(rounds=1, pause=0, threads=3, log=lines.append)
    events = list(TraceReader(path))
    kinds = Counter(e["kind"] for e in events)

    assert {e["thread"] for e in events if e["thread"].startswith("clerk-")} == {"clerk-1", "clerk-2", "clerk-3"}
    for kind in ("after_commit", "after_rollback", "rollback_savepoint", "persistent_to_detached",
                 "persistent_to_deleted", "deleted_to_detached", "trace_end"):
        assert kinds[kind] >= 1, f"no {kind} in the demo's trace"
    nested = {e["transaction"] for e in events
              if e["kind"] == "after_transaction_create" and e.get("origin") == "nested"}
    assert nested and nested <= {e["transaction"] for e in events if e["kind"] == "after_transaction_end"}

    causes = Counter((e.get("cause") or {}).get("kind") for e in events if e["kind"] == "before_cursor_execute")
    assert causes["lazy_load"] >= 1 and causes["refresh"] >= 1 and causes["autoflush"] >= 1
    lazy = {e["cause"].get("attribute") for e in events
            if e["kind"] == "before_cursor_execute" and e["cause"]["kind"] == "lazy_load"}
    assert "Order.lines" in lazy

    assert kinds["inspector_error"] == 0 and kinds["dropped"] == 0 and kinds["handle_error"] == 0
    assert len(lines) <= 2 + 3 * 9  # one line per unit of work at most, plus opening and closing


def test_python_m_demo_records_and_says_how_to_look(tmp_path):
    path = tmp_path / "demo.jsonl"
    done = subprocess.run([sys.executable, "-m", "demo", "--record", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    last = done.stdout.strip().splitlines()[-1]
    assert f"orm-inspector summary {path}" in last
    assert sum(1 for e in TraceReader(path) if e["kind"] == "trace_end") == 1
