"""How much recording costs the app: fresh processes, plain and recorded, alternated ABBA.

    python bench/overhead.py [--rounds 5] [--quick]

Prints, per workload, the median time of each mode and their ratio (the issue's bar: <= 1.10),
the added cost per flush with 100 to 50,000 objects in the session (bar: flat within 1.2x), and
the peak memory of a short and a 10x longer recorded run (bar: bounded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(workload: str, record: bool, size: int | None = None, mode: str = "record") -> dict:
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), workload]
    if size is not None:
        cmd += ["--size", str(size)]
    with tempfile.TemporaryDirectory() as tmp:
        if record and mode == "stuck":
            cmd.append("--stuck-viewer")
        elif record and mode == "echo":
            cmd += ["--echo-to", os.path.join(tmp, "echo.log")]
        elif record:
            cmd += ["--record", os.path.join(tmp, "trace.jsonl")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def abba(workload: str, rounds: int, key: str = "seconds", size: int | None = None,
         mode: str = "record") -> tuple[list[float], list[float]]:
    plain, recorded = [], []
    for r in range(rounds):
        order = (False, True, True, False) if r % 2 == 0 else (True, False, False, True)
        for record in order:
            (recorded if record else plain).append(run(workload, record, size, mode)[key])
    return plain, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes, for a smoke run")
    parser.add_argument("--only", choices=["ratio", "flush", "memory", "stuck"])
    # (bench/floor.py: what SQLAlchemy charges for calling the listeners at all)
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds

    if args.only in (None, "ratio"):
        print(f"Time ratio, recorded / plain (median of {rounds * 2} runs each, ABBA order):")
        for workload in ("oltp", "bulk"):
            plain, recorded = abba(workload, rounds)
            p, r = statistics.median(plain), statistics.median(recorded)
            verdict = "ok" if r / p <= 1.10 else "OVER 1.10"
            print(f"  {workload:<5} plain {p:6.3f} s  recorded {r:6.3f} s  ratio {r / p:5.3f}  [{verdict}]")
        print("For comparison, SQLAlchemy's echo logging (statements and parameters only) to a file / plain:")
        for workload in ("oltp", "bulk"):
            plain, echo = abba(workload, rounds, mode="echo")
            p, r = statistics.median(plain), statistics.median(echo)
            print(f"  {workload:<5} plain {p:6.3f} s  echo     {r:6.3f} s  ratio {r / p:5.3f}")

    if args.only in (None, "stuck"):
        print(f"Time ratio with a live server and a viewer that never reads / plain ({rounds * 2} runs each):")
        plain, stuck = abba("oltp", rounds, mode="stuck")
        p, r = statistics.median(plain), statistics.median(stuck)
        print(f"  oltp  plain {p:6.3f} s  stuck viewer {r:6.3f} s  ratio {r / p:5.3f}")

    if args.only in (None, "flush"):
        print("Added cost per flush (one changed object), by objects in the session:")
        sizes = (100, 1000) if args.quick else (100, 1000, 10_000, 50_000)
        added = {}
        for size in sizes:
            plain, recorded = abba("flushes", rounds, key="per_flush", size=size)
            p, r = statistics.median(plain), statistics.median(recorded)
            added[size] = r - p
            print(f"  {size:>6} objects: plain {p * 1e6:8.1f} us  recorded {r * 1e6:8.1f} us  added {added[size] * 1e6:7.1f} us")
        lo, hi = added[sizes[0]], added[sizes[-1]]
        spread = max(added.values()) / min(added.values()) if min(added.values()) > 0 else float("inf")
        print(f"  added cost at {sizes[-1]} / at {sizes[0]}: {hi / lo:4.2f}x; largest / smallest of all sizes: "
              f"{spread:4.2f}x  (bar: <= 1.2x)" if lo > 0 else "  added cost at the smallest size is within noise")

    if args.only in (None, "memory"):
        print("Peak memory of a recorded OLTP run, short and 10x longer:")
        short = run("oltp", True, 100)["maxrss_kb"]
        long = run("oltp", True, 1000)["maxrss_kb"]
        plain_long = run("oltp", False, 1000)["maxrss_kb"]
        print(f"  100 units: {short / 1024:6.1f} MiB   1000 units: {long / 1024:6.1f} MiB   "
              f"(plain 1000 units: {plain_long / 1024:6.1f} MiB)")


if __name__ == "__main__":
    main()
