"""What SQLAlchemy itself charges for calling our listeners, before orm_inspector does any work.

    python bench/floor.py [--rounds 6] [--callgrind]

Each workload runs in fresh processes in these modes, rotated so that none always goes first:

- ``plain``: no orm_inspector;
- ``<family> off``: only that family's listeners registered, switched off (each returns at its first
  line, as after ``uninstall()``): what SQLAlchemy's event machinery costs for that family alone;
- ``all off``: every listener registered, switched off: the floor under any recording;
- ``recorded``: ``orm_inspector.record()``, as in overhead.py.

Wall-time medians on a shared machine move by several percent; ``--callgrind`` also counts the
instructions of each mode under valgrind (about 40x slower), minus those of the same process running
no workload: deterministic for the modes without the inspector's thread, the figure to quote for
differences of one or two percent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("engine", "attribute", "lifecycle", "session", "pool", "instance")
MODES = ("plain", *(f"{f} off" for f in FAMILIES), "all off", "recorded")


def command(workload: str, mode: str, trace: str) -> list[str]:
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), workload]
    if mode == "recorded":
        return cmd + ["--record", trace]
    if mode != "plain":
        return cmd + ["--listeners-off", mode.split()[0]]
    return cmd


def seconds(workload: str, mode: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(command(workload, mode, os.path.join(tmp, "t.jsonl")), check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def instructions(workload: str, mode: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               *command(workload, mode, os.path.join(tmp, "t.jsonl"))]
        err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    return int(re.search(r"Collected : (\d+)", err).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions under valgrind")
    parser.add_argument("--workloads", default="oltp,bulk")
    args = parser.parse_args()
    for workload in args.workloads.split(","):
        times: dict[str, list[float]] = {m: [] for m in MODES}
        for r in range(args.rounds):
            for mode in (MODES if r % 2 == 0 else MODES[::-1]):
                times[mode].append(seconds(workload, mode))
        work = {}
        if args.callgrind:  # minus the same process with no workload: imports and registration
            work = {m: instructions(workload, m) - instructions("none", m) for m in MODES}
        print(f"{workload}: median time of {args.rounds} runs per mode, and / plain"
              + ("; instructions, and / plain" if work else ""))
        for mode in MODES:
            line = f"  {mode:<15}"
            if args.rounds:
                median = statistics.median(times[mode])
                line += f" {median:6.3f} s  {median / statistics.median(times['plain']):5.3f}"
            if work:
                line += f"   {work[mode] / 1e9:6.3f} G  {work[mode] / work['plain']:5.3f}"
            print(line)


if __name__ == "__main__":
    main()
