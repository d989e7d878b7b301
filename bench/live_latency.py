"""End-to-end latency of the live stream: from an event in the app to a viewer in another process.

    python bench/live_latency.py [--rate 10000] [--seconds 5]

Runs an app process that serves and emits about RATE events/s (statements on an open connection,
two events each), and a viewer (this process) that timestamps every event on arrival. Both use the
same machine clock. Bar (issue 3): p99 <= 50 ms at 10,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orm_inspector.transports.client import LiveSource  # noqa: E402

APP = textwrap.dedent("""
    import sys, time, pathlib
    import orm_inspector
    from sqlalchemy import create_engine
    rate, seconds, info = float(sys.argv[1]), float(sys.argv[2]), pathlib.Path(sys.argv[3])
    server = orm_inspector.serve()
    info.write_text(server.address + "\\n" + server.token)
    engine = create_engine("sqlite://")
    time.sleep(1.0)  # the viewer connects
    with engine.connect() as conn:
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            conn.exec_driver_sql("SELECT 1")
            n += 2  # before_ and after_cursor_execute
            ahead = n / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
    time.sleep(0.5)
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        info = os.path.join(tmp, "info")
        app = subprocess.Popen([sys.executable, "-c", APP, str(args.rate), str(args.seconds), info])
        try:
            while not os.path.exists(info) or "\n" not in open(info).read():
                time.sleep(0.02)
            address, token = open(info).read().split("\n")
            delays = []
            with LiveSource(address, token) as source:
                for event in source:
                    if event["kind"] in ("before_cursor_execute", "after_cursor_execute"):
                        delays.append(time.time() - event["ts"])
                    if event["kind"] == "dropped":
                        print(f"dropped: {event['count']}")
                    if len(delays) >= args.rate * args.seconds * 0.98:
                        break
        finally:
            app.wait(timeout=30)
    delays.sort()
    q = statistics.quantiles(delays, n=100)
    print(f"{len(delays)} events at ~{args.rate:,.0f}/s: latency p50 {q[49] * 1000:.1f} ms, "
          f"p99 {q[98] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
