"""Time travel: the state at any seq from checkpoints equals a fold from the start."""

from __future__ import annotations

import gzip
import random
import shutil

import pytest

import orm_inspector
from demo.app import run
from orm_inspector.state import Timeline, fold
from orm_inspector.transports.trace import TraceReader


@pytest.fixture(scope="module")
def demo_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("timeline") / "demo.jsonl"
    with orm_inspector.record(path):
        run(rounds=1, pause=0, threads=3, log=lambda *a: None)
    orm_inspector.uninstall()
    return path


def from_start(path, seq):
    return fold(TraceReader(path), upto=seq).to_json()


@pytest.mark.parametrize("compressed", [False, True])
def test_seek_equals_a_fold_from_the_start(demo_trace, tmp_path, compressed):
    path = demo_trace
    if compressed:
        path = tmp_path / "demo.jsonl.gz"
        with open(demo_trace, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    timeline = Timeline(path, every=100)
    try:
        last = timeline.last_seq
        assert last > 1000
        rnd = random.Random(3)
        for seq in [0, 1, 99, 100, 101, last // 2, last - 1, last] + [rnd.randrange(last) for _ in range(15)]:
            assert timeline.seek(seq).to_json() == from_start(demo_trace, seq), seq
    finally:
        timeline.close()


def test_steps_forward_and_back(demo_trace):
    timeline = Timeline(demo_trace, every=50)
    timeline.seek(500)
    for _ in range(60):  # across a checkpoint, both ways
        timeline.step(+1)
    assert timeline.state.to_json() == from_start(demo_trace, 560)
    for _ in range(120):
        timeline.step(-1)
    assert timeline.state.to_json() == from_start(demo_trace, 440)
    assert timeline.seek(10**9).seq == timeline.last_seq
