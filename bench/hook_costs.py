"""Time spent inside each hook, on the app's thread, while a workload is recorded.

    python bench/hook_costs.py oltp|bulk|flushes [--size N]

Wraps every listener before it is registered with a timer (which adds ~0.1 µs a call), records the
workload, and prints per hook: total, calls, mean. Run in a fresh process; for the ratio against a
plain run use overhead.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import orm_inspector  # noqa: E402
from orm_inspector import hooks  # noqa: E402
from orm_inspector.hooks import engine, pool, session  # noqa: E402

import workloads  # noqa: E402

spent: Counter = Counter()
calls: Counter = Counter()
clock = time.perf_counter


def timed(name, fn):
    def listener(*args, **kw):  # returns what the hook returns: some are registered with retval=True
        start = clock()  # (and attribute events with include_key=True, which passes key=)
        result = fn(*args, **kw)
        spent[name] += clock() - start
        calls[name] += 1
        return result

    return listener


def wrap_all() -> None:
    for table in (session.SESSION_LISTENERS, session.LIFECYCLE_LISTENERS, engine.ENGINE_LISTENERS,
                  pool.POOL_LISTENERS):
        for name, fn in list(table.items()):
            table[name] = timed(name, fn)
    make = hooks.attribute_listeners
    hooks.attribute_listeners = lambda key: {k: timed(k, f) for k, f in make(key).items()}
    hooks.on_expire = timed("expire", hooks.on_expire)
    hooks.on_refresh = timed("refresh", hooks.on_refresh)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["oltp", "bulk", "flushes"])
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    wrap_all()
    with tempfile.TemporaryDirectory() as tmp:
        engine_ = workloads.make_engine(os.path.join(tmp, "db.sqlite"))
        start = clock()
        with orm_inspector.record(os.path.join(tmp, "trace.jsonl")):
            run = getattr(workloads, args.workload)
            run(engine_, args.size) if args.size else run(engine_, {"oltp": 300, "bulk": 10_000, "flushes": 1000}[args.workload])
        wall = clock() - start
    total = sum(spent.values())
    print(f"{args.workload}: {wall:.3f} s recorded, {total:.3f} s inside hooks ({sum(calls.values())} calls)")
    for name, t in spent.most_common(15):
        print(f"  {name:<26} {t * 1000:8.1f} ms {calls[name]:8} calls {t / calls[name] * 1e6:6.2f} us")


if __name__ == "__main__":
    main()
