"""Is the screen still responsive with a huge session and a busy app? (issue 4's quality bar)

A producer thread plays a synthetic live stream into the inspector: first a session that loads
OBJECTS objects (its identity map), then RATE events a second (attribute edits on random objects,
their flushes, statements, pool checkouts) for SECONDS seconds. The app runs headless at 160x50 on
the session pane (the worst case: the 100,000-row identity map) and then on the event log; a key
is pressed every KEY_EVERY seconds. Measured:

- key latency: from the key's arrival in the app's queue to its handler, p50 / p99 / max;
- frames: redraws per second (capped at FRAMES_PER_SECOND);
- events in: events folded per second, and how far the view is behind the producer at the end.

    python bench/tui_responsiveness.py [--objects 100000] [--rate 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402

from orm_inspector.state.view import View  # noqa: E402
from orm_inspector.transports.pump import SourcePump  # noqa: E402
from orm_inspector.tui.app import FRAMES_PER_SECOND, InspectorApp  # noqa: E402

PID = 4242


class Stream:
    """A live source made up on the spot: ``objects`` loaded, then ``rate`` events a second."""

    def __init__(self, objects: int, rate: int, seconds: float) -> None:
        self.objects, self.rate, self.seconds = objects, rate, seconds
        self.produced = 0
        self._closed = False
        self.hello = {"pid": PID, "state": None}

    def __iter__(self):
        seq = 0

        def event(kind: str, **fields):
            nonlocal seq
            seq += 1
            self.produced = seq
            return {"seq": seq, "ts": time.time(), "kind": kind, "pid": PID, "thread": "worker", **fields}

        yield event("after_transaction_create", session="s1", transaction="t1", origin="autobegin")
        for i in range(self.objects):
            yield event("loaded_as_persistent", session="s1", obj={"cls": "Item", "identity": [i], "key": f"o{i}"})
        rng = random.Random(1)
        start = time.monotonic()
        sent = 0
        flush = 0
        while not self._closed and time.monotonic() - start < self.seconds:
            due = int((time.monotonic() - start) * self.rate)
            while sent < due:
                i = rng.randrange(self.objects)
                ref = {"cls": "Item", "identity": [i], "key": f"o{i}"}
                if sent % 10 == 9:
                    flush += 1
                    yield event("before_cursor_execute", session="s1", transaction="t1", connection="c1",
                                statement="UPDATE items SET name=? WHERE items.id = ?", parameters=["x", i],
                                cause={"kind": "flush", "flush": f"f{flush}"})
                    yield event("after_cursor_execute", session="s1", connection="c1", duration=0.0001, rows=1)
                    sent += 2
                else:
                    yield event("set", session="s1", obj=ref, attr="name", value=f"n{sent}", old="x")
                    sent += 1
            time.sleep(0.002)

    def close(self) -> None:
        self._closed = True


class BenchApp(InspectorApp):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []
        self.sent_at: list[float] = []

    async def on_key(self, event: events.Key) -> None:
        if self.sent_at:
            self.latencies.append(time.perf_counter() - self.sent_at.pop(0))


async def measure(objects: int, rate: int, seconds: float, tab: str) -> dict:
    stream = Stream(objects, rate, seconds)
    view = View()
    view.hello(stream.hello)
    app = BenchApp(view, pump=SourcePump(stream), title="bench")
    app.hints = False
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press({"session": "2", "events": "4"}[tab])
        app.latencies.clear()
        # Loading: until the whole identity map is folded and drawn.
        t0 = time.perf_counter()
        while view.counters()["events"] < objects + 1:
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        loaded = time.perf_counter() - t0
        frames0, events0, t1 = app.frames, view.counters()["events"], time.perf_counter()
        keys = ["down", "down", "up"] * 1000
        while time.perf_counter() - t1 < seconds - 1:
            app.sent_at.append(time.perf_counter())
            app.post_message(events.Key(keys[len(app.latencies) % len(keys)], None))
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t1
        frames = app.frames - frames0
        folded = view.counters()["events"] - events0
        behind = stream.produced - view.counters()["events"]
        stream.close()
    lat = sorted(app.latencies)
    return {"tab": tab, "load_s": loaded, "keys": len(lat),
            "key_p50_ms": 1000 * statistics.median(lat), "key_p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
            "key_max_ms": 1000 * lat[-1], "frames_per_s": frames / elapsed, "events_per_s": folded / elapsed,
            "behind": behind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{args.objects} objects in one identity map, {args.rate} events/s for {args.seconds:.0f} s, "
          f"screen capped at {FRAMES_PER_SECOND} frames/s, 160x50")
    for tab in ("session", "events"):
        r = asyncio.run(measure(args.objects, args.rate, args.seconds, tab))
        print(f"{r['tab']:>8} pane: loaded in {r['load_s']:.1f} s; key latency p50 {r['key_p50_ms']:.1f} ms, "
              f"p99 {r['key_p99_ms']:.1f} ms, max {r['key_max_ms']:.1f} ms ({r['keys']} keys); "
              f"{r['frames_per_s']:.1f} frames/s; {r['events_per_s']:.0f} events/s folded, "
              f"{r['behind']} behind at the end")


if __name__ == "__main__":
    main()
