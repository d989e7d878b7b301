"""Fold throughput and time travel on a 1,000,000-event trace.

    python bench/timetravel.py [--events 1000000]

Builds the trace from a recording of the demo app, repeated with renumbered seq and fresh ids (so
every copy has sessions, objects and connections of its own), then measures: fold throughput
(events/s, reading and folding the whole file), the time to index it (one pass), the time to seek to
random seqs, to step one event forward and back, and the peak memory. Bars (issue 3): >= 200,000
events/s, seek <= 100 ms, memory <= 1 GB.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time

import msgspec

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orm_inspector  # noqa: E402
from demo.app import run  # noqa: E402
from orm_inspector.state import Timeline, fold  # noqa: E402
from orm_inspector.transports.trace import TraceReader  # noqa: E402

ID = re.compile(r"^[stcpefo]\d+$")


def renamed(value, suffix):
    if isinstance(value, str):
        return value + suffix if ID.match(value) else value
    if isinstance(value, list):
        return [renamed(v, suffix) for v in value]
    if isinstance(value, dict):
        return {k: renamed(v, suffix) for k, v in value.items()}
    return value


def build(path: str, target: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        demo = os.path.join(tmp, "demo.jsonl")
        with orm_inspector.record(demo):
            run(rounds=1, pause=0, threads=3, log=lambda *a: None)
        reader = TraceReader(demo)
        events = [e for e in reader if e["kind"] != "trace_end"]
        header = reader.header
    encode = msgspec.json.encode
    seq = 0
    with open(path, "wb") as out:
        out.write(encode(header) + b"\n")
        copy = 0
        while seq < target:
            suffix = f"x{copy}"
            lines = []
            for e in events:
                seq += 1
                e2 = renamed(e, suffix)
                e2["seq"] = seq
                lines.append(encode(e2))
                if seq >= target:
                    break
            out.write(b"\n".join(lines) + b"\n")
            copy += 1
    return seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.jsonl")
        n = build(path, args.events)
        orm_inspector.uninstall()
        size = os.path.getsize(path)
        print(f"trace: {n} events, {size / 2**20:.0f} MiB")

        start = time.perf_counter()
        state = fold(TraceReader(path))
        elapsed = time.perf_counter() - start
        print(f"fold (read + fold, whole file): {n / elapsed:,.0f} events/s  ({elapsed:.1f} s; "
              f"{len(state.sessions)} sessions at the end)")

        start = time.perf_counter()
        timeline = Timeline(path)
        print(f"index (one pass, checkpoints every {timeline.every}): {time.perf_counter() - start:.1f} s")
        rnd = random.Random(1)
        seeks = []
        for _ in range(50):
            seq = rnd.randrange(1, n)
            start = time.perf_counter()
            timeline.seek(seq)
            seeks.append(time.perf_counter() - start)
            assert timeline.state.seq == seq
        print(f"seek to a random seq: median {statistics.median(seeks) * 1000:.1f} ms, "
              f"max {max(seeks) * 1000:.1f} ms (50 seeks)")
        steps = []
        for delta in (+1, -1) * 25:
            start = time.perf_counter()
            timeline.step(delta)
            steps.append(time.perf_counter() - start)
        print(f"step one event forward/back: median {statistics.median(steps) * 1000:.2f} ms, "
              f"max {max(steps) * 1000:.1f} ms")
        replay_screen(path, n, rnd)
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def replay_screen(path: str, n: int, rnd: random.Random) -> None:
    """What `orm-inspector replay` does at each key: the view (state, journal of the 5,000 events before,
    rates) at a seq, with the replay's checkpoints."""
    from orm_inspector.state.view import ReplayView
    from orm_inspector.tui.launch import REPLAY_CHECKPOINTS

    start = time.perf_counter()
    view = ReplayView(Timeline(path, every=REPLAY_CHECKPOINTS))
    print(f"replay view (checkpoints every {REPLAY_CHECKPOINTS}): opened in {time.perf_counter() - start:.1f} s")

    def timed(move) -> float:
        start = time.perf_counter()
        move()
        return time.perf_counter() - start

    seeks = [timed(lambda: view.seek(rnd.randrange(1, n))) for _ in range(50)]
    forward = [timed(lambda: view.step(1)) for _ in range(25)]
    back = [timed(lambda: view.step(-1)) for _ in range(25)]
    jumps = [timed(lambda: view.jump("flush", 1)) for _ in range(25)]
    for name, times in (("seek", seeks), ("step forward", forward), ("step back", back), ("next flush", jumps)):
        print(f"  {name}: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
