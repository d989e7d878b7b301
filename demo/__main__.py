"""``python -m demo``: run the bookshop once, optionally under ``orm_inspector.record()``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import ArgumentError

from .app import check_url, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo",
                                     description="Run orm_inspector's demo bookshop once.")
    parser.add_argument("--record", metavar="FILE", help="record a trace of the run into FILE (.jsonl or .jsonl.gz)")
    parser.add_argument("--rounds", metavar="N", type=int, default=1, help="rounds of work per clerk (default 1)")
    parser.add_argument("--pause", metavar="S", type=float, default=0.0,
                        help="seconds to wait between steps, for a live inspector to follow (default 0)")
    parser.add_argument("--threads", metavar="N", type=int, default=3, help="clerks working at once (default 3)")
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temporary directory)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or args.pause < 0:
        print("python -m demo: --rounds and --threads must be at least 1, --pause not negative", file=sys.stderr)
        return 2
    if args.url is not None:
        try:
            check_url(args.url)
        except (ValueError, ArgumentError) as exc:
            print(f"python -m demo: --url: {exc}", file=sys.stderr)
            return 2
    options = dict(rounds=args.rounds, pause=args.pause, threads=args.threads)
    if args.record is None:
        run(args.url, **options)
        return 0
    import orm_inspector

    with orm_inspector.record(args.record):
        run(args.url, **options)
    print(f"trace written to {args.record}; to look at it: orm-inspector summary {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
