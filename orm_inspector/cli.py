"""The ``orm-inspector`` command. Each subcommand is a small function; errors a user can cause end
in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


class UserError(Exception):
    """Something the user can fix: printed as one line, exit status 2."""


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import render, summarize
    from .transports.trace import TraceError, TraceReader

    try:
        reader = TraceReader(args.file)
        summary = summarize(reader)
    except TraceError as exc:
        raise UserError(str(exc)) from None
    sys.stdout.write(render(summary, args.file, reader.warnings))
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    import json

    from .state import fold
    from .state.render import render_state
    from .transports.trace import TraceError, TraceReader

    if args.at is not None and args.at < 0:
        raise UserError(f"--at {args.at}: a seq is 0 (before the first event) or more")
    try:
        reader = TraceReader(args.file)
        state = fold(reader, upto=args.at)
    except TraceError as exc:
        raise UserError(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{args.file}: line {reader.line}: a malformed event ({type(exc).__name__}: {exc})") from None
    if args.at is not None and state.seq < args.at:
        raise UserError(f"{args.file}: no event {args.at} (the trace ends at seq {state.seq})")
    if args.json:
        sys.stdout.write(json.dumps(state.to_json(), indent=1, default=str) + "\n")
    else:
        sys.stdout.write(render_state(state))
    return 0


def _listen_env(listen: str, allow_remote: bool) -> dict[str, str]:
    """Choose the address and token now, so that they can be told before the program starts. All
    the program's processes share one private directory (0700): the token file, and the sockets of
    the processes other than the program itself (boot/sitecustomize.py), which removes it at exit."""
    import os
    import secrets
    import tempfile

    from .transports.server import AddressError, format_address, parse_address

    try:
        family, where = parse_address(None if listen == "auto" else listen, allow_remote)
    except AddressError as exc:
        raise UserError(f"run: --listen {exc}") from None
    if family == "tcp" and not 0 < where[1] < 65536:
        raise UserError(f"run: --listen {listen}: give a port between 1 and 65535 (the address is printed now)")
    if family == "unix" and os.path.exists(where):
        raise UserError(f"run: --listen {listen}: {where} already exists")
    address = format_address(family, where)
    token = secrets.token_hex(24)  # hex: never starts with '-', which a command line takes for an option
    group = os.path.dirname(where) if listen == "auto" else tempfile.mkdtemp(prefix="orm-inspector-")
    token_file = os.path.join(group, "token")
    with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(token)
    print(f"orm-inspector: listening on {address}; token in {token_file}", file=sys.stderr)
    return {"ORM_INSPECTOR_LISTEN": address, "ORM_INSPECTOR_GROUP": group,
            "ORM_INSPECTOR_ALLOW_REMOTE": "1" if allow_remote else ""}


def cmd_run(args: argparse.Namespace) -> int:
    import os
    import shutil

    command = args.command_line
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UserError("run: no program given (orm-inspector run --record FILE -- python app.py ...)")
    if shutil.which(command[0]) is None:
        raise UserError(f"run: {command[0]}: command not found")
    if not args.record and not args.listen:
        raise UserError("run: say what to do: --record FILE, --listen [ADDR], or both")
    env = dict(os.environ)
    boot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot")
    env["PYTHONPATH"] = os.pathsep.join([boot, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else boot
    if args.record:
        env["ORM_INSPECTOR_RECORD"] = os.path.abspath(args.record)
    if args.listen:
        env.update(_listen_env(args.listen, args.allow_remote))
    env["ORM_INSPECTOR_ROOT_PID"] = str(os.getpid())  # exec keeps the pid: the program's own
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        if "ORM_INSPECTOR_GROUP" in env:  # no program to remove it at exit
            shutil.rmtree(env["ORM_INSPECTOR_GROUP"], ignore_errors=True)
        raise UserError(f"run: {command[0]}: {exc.strerror}") from None
    return 0  # not reached


def _run_app(make_app) -> int:
    from .transports.client import SourceError
    from .transports.trace import TraceError

    try:
        app = make_app()
    except (SourceError, TraceError) as exc:
        raise UserError(str(exc)) from None
    app.run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .tui.launch import demo_app

    if args.threads < 1 or args.pause < 0:
        raise UserError("demo: --threads must be at least 1 and --pause not negative")
    return _run_app(lambda: demo_app(threads=args.threads, pause=args.pause))


def cmd_replay(args: argparse.Namespace) -> int:
    from .tui.launch import replay_app

    return _run_app(lambda: replay_app(args.file))


def cmd_connect(args: argparse.Namespace) -> int:
    from .tui.launch import connect_app

    return _run_app(lambda: connect_app(args.address, args.token))


def cmd_learn(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .learn.lesson import LessonError, load
    from .tui.learn import LearnApp

    script = Path(args.script) if args.script else None
    if script is not None:
        try:
            load(script)  # a missing file, a syntax error or a malformed claim: said now, in one line
        except LessonError as exc:
            raise UserError(f"learn: {exc}") from None
    LearnApp(script=script).run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orm-inspector",
        description="See what the SQLAlchemy ORM does: watch an app live (demo, connect), record it (run), "
                    "replay a recording with time travel (replay), read it without a screen (summary, state), "
                    "and learn what the Session does (learn). Start with: orm-inspector demo")
    parser.add_argument("--version", action="version", version=f"orm-inspector {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    summary = commands.add_parser("summary", help="a plain-text summary of a trace file",
                                  description="Print counts per event kind, sessions, transactions, SQL by "
                                              "cause, connections and warnings found in a trace file.")
    summary.add_argument("file", help="a trace written by orm_inspector.record() (.jsonl or .jsonl.gz)")
    summary.set_defaults(run=cmd_summary)

    state = commands.add_parser("state", help="the ORM state a trace reconstructs at one event",
                                description="Fold a trace up to an event and print each session's identity map "
                                            "(class, identity, lifecycle state), new/dirty/deleted, open "
                                            "transactions, and the pooled connections (status, holder).")
    state.add_argument("file", help="a trace written by orm_inspector.record()")
    state.add_argument("--at", type=int, metavar="SEQ", help="just after event SEQ (default: the end)")
    state.add_argument("--json", action="store_true", help="the documented JSON form (docs/state-json.md)")
    state.set_defaults(run=cmd_state)

    demo = commands.add_parser("demo", help="the bundled demo app, live in the inspector (start here)",
                               description="Run the demo bookshop (clerks in threads on an embedded SQLite "
                                           "database) in this process and watch its sessions, objects, flushes, "
                                           "transactions and pooled connections live. q quits, ? shows the keys.")
    demo.add_argument("--threads", type=int, default=3, help="clerks working at once (default 3)")
    demo.add_argument("--pause", type=float, default=0.5, metavar="S",
                      help="seconds each clerk waits between steps (default 0.5)")
    demo.set_defaults(run=cmd_demo)

    replay = commands.add_parser("replay", help="the inspector over a recorded trace, with time travel",
                                 description="Open a trace file in the inspector: step through its events, jump to "
                                             "the next flush, commit, rollback or event of an object, go to any seq, "
                                             "or play it at a chosen speed.")
    replay.add_argument("file", help="a trace written by orm_inspector.record() or run --record")
    replay.set_defaults(run=cmd_replay)

    connect = commands.add_parser("connect", help="the inspector attached to a live app (run --listen, serve())",
                                  description="Attach to a running app started with `orm-inspector run --listen` or "
                                              "orm_inspector.serve(). Without ADDR, this user's most recent "
                                              "`run --listen` socket. The token comes from --token, "
                                              "ORM_INSPECTOR_TOKEN, or the token file next to a Unix socket.")
    connect.add_argument("address", nargs="?", metavar="ADDR", help="unix:PATH, a socket path, or HOST:PORT")
    connect.add_argument("--token", help="the server's token (printed by run --listen, or serve().token)")
    connect.set_defaults(run=cmd_connect)

    learn = commands.add_parser("learn", help="guided lessons on the Session: object states, flush, commit, ...",
                                description="Lessons on what the SQLAlchemy Session does, each a short script run "
                                            "one statement at a time: watch objects move between transient, "
                                            "pending, persistent, deleted and detached, and see the SQL each step "
                                            "sends and why. With SCRIPT, step through a script of your own.")
    learn.add_argument("script", nargs="?", metavar="SCRIPT", help="a Python script of your own to step through")
    learn.set_defaults(run=cmd_learn)

    run = commands.add_parser(
        "run", help="run a Python program with orm_inspector installed, no change to its code",
        description="Run a Python program (python app.py, gunicorn, pytest, ...) with the instrumentation "
                    "installed at interpreter start through a sitecustomize on PYTHONPATH (the program's own "
                    "sitecustomize still runs). Recording: one file per process; the program writes FILE, its "
                    "forked workers and subprocesses write FILE's name with -<pid> next to it. Listening: "
                    "every process serves, each a source of its own named by pid: the program on ADDR, its "
                    "forked workers and subprocesses on Unix sockets live-<pid>.sock in the private directory "
                    "that holds the token file, where a viewer connected to ADDR finds and follows them; the "
                    "program removes that directory when it exits. Does not work for interpreters started "
                    "with -S, -E or -I.")
    run.add_argument("--record", metavar="FILE", help="trace file (.jsonl or .jsonl.gz)")
    run.add_argument("--listen", metavar="ADDR", nargs="?", const="auto",
                     help="stream to viewers: unix:PATH or HOST:PORT (loopback, [::1]:PORT for IPv6); alone, "
                          "a new private Unix socket. The address and the token's file are printed on stderr")
    run.add_argument("--allow-remote", action="store_true", help="allow --listen on a non-loopback address")
    run.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    run.set_defaults(run=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"orm-inspector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
