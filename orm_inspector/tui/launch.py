"""What ``orm-inspector demo``, ``connect`` and ``replay`` start: a source, a view, the app.

Everything a user can get wrong (a missing file, a bad address, a wrong token) fails here, before
the screen opens, with a ``SourceError`` or ``TraceError`` the command line turns into one line.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..state.view import ReplayView, View
from ..transports.client import SourceError
from ..transports.pump import SourcePump
from .app import InspectorApp

REPLAY_CHECKPOINTS = 2000  # events between the replay's snapshots: a step back folds at most this many


def demo_app(*, threads: int = 3, pause: float = 0.5, rounds: int = 1000) -> InspectorApp:
    """The bookshop demo running in this process on a SQLite file, and the app watching it."""
    import orm_inspector
    from demo.app import run

    from ..transports.sources import FeedSource

    orm_inspector.install()
    feed = FeedSource()
    view = View()
    view.hello({"pid": os.getpid(), "argv": ["orm-inspector demo: the bookshop, 3 clerks on SQLite"]})
    stop = threading.Event()

    def shop() -> None:
        try:
            run(rounds=rounds, pause=pause, threads=threads, log=view.notes.append, stop=stop)
            view.notes.append("the demo finished; the screen stays until you quit (q)")
        except Exception as exc:  # noqa: BLE001 - shown on the screen, not printed over it
            view.notes.append(f"the demo failed: {type(exc).__name__}: {exc}")

    worker = threading.Thread(target=shop, name="demo", daemon=True)

    def finish() -> None:
        stop.set()
        worker.join(10)
        orm_inspector.uninstall()

    app = InspectorApp(view, pump=SourcePump(feed), title="demo: the bookshop, live", on_exit=finish)
    worker.start()
    return app


def replay_app(path: str | Path) -> InspectorApp:
    from ..state.timeline import Timeline

    timeline = Timeline(path, every=REPLAY_CHECKPOINTS)  # a bad file raises TraceError here
    app = InspectorApp(ReplayView(timeline), title=f"replay: {path}", on_exit=timeline.close)
    app.warnings = list(timeline.warnings)
    return app


def connect_app(address: str | None, token: str | None) -> InspectorApp:
    """The app at ``address`` and every process of its group (its forked workers, its subprocesses),
    each a process of its own on the screen, as it joins."""
    from ..transports.sources import ProcessGroupSource

    address, token = resolve(address, token)
    source = ProcessGroupSource(address, token)  # its first item is the app's own source_hello
    return InspectorApp(View(), pump=SourcePump(source), title=f"live: {address}", on_exit=source.close)


def resolve(address: str | None, token: str | None) -> tuple[str, str]:
    """The address (default: this user's most recent ``run --listen`` socket) and the token (default:
    ORM_INSPECTOR_TOKEN, or the token file next to a Unix socket)."""
    if address is None:
        address = latest_socket()
    token = token or os.environ.get("ORM_INSPECTOR_TOKEN")
    if token is None:
        path = address[5:] if address.startswith("unix:") else address
        token_file = Path(path).parent / "token"
        if "/" in path and token_file.exists():
            token = token_file.read_text().strip()
    if not token:
        raise SourceError(f"{address}: no token: pass --token, set ORM_INSPECTOR_TOKEN, or use the Unix socket "
                          "whose folder holds the token file")
    return address, token


def latest_socket() -> str:
    import tempfile

    mine = []
    for folder in Path(tempfile.gettempdir()).glob("orm-inspector-*"):
        sock = folder / "live.sock"
        try:
            if folder.stat().st_uid == os.getuid() and sock.exists():
                mine.append((sock.stat().st_mtime, sock))
        except OSError:
            continue
    if not mine:
        raise SourceError("no running app found: start one with `orm-inspector run --listen -- python app.py`, "
                          "or give its address")
    return f"unix:{max(mine)[1]}"
