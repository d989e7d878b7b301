"""Put on PYTHONPATH by ``orm-inspector run``: instruments the program at interpreter start, before
any of its threads exist, then hands over to the program's own sitecustomize, if it has one.

Configuration comes from the environment the launcher set: ORM_INSPECTOR_RECORD (trace path),
ORM_INSPECTOR_LISTEN / _TOKEN / _ALLOW_REMOTE (live server), ORM_INSPECTOR_ROOT_PID (the launched
process's pid: only it serves; it alone records to the path itself).
"""

import os
import sys

_recording = None


def _start() -> None:
    path = os.environ.get("ORM_INSPECTOR_RECORD")
    listen = os.environ.get("ORM_INSPECTOR_LISTEN")
    root = str(os.getpid()) == os.environ.get("ORM_INSPECTOR_ROOT_PID")
    if listen and root:
        try:
            import orm_inspector

            orm_inspector.serve(listen, token=os.environ.pop("ORM_INSPECTOR_TOKEN", None),
                                allow_remote=bool(os.environ.get("ORM_INSPECTOR_ALLOW_REMOTE")))
        except Exception as exc:  # noqa: BLE001 - the program runs anyway
            print(f"orm-inspector: not listening: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not path:
        return
    try:
        import orm_inspector
        from orm_inspector.transports.recorder import child_path
        from pathlib import Path

        target = Path(path)
        if not root:
            target = child_path(target, os.getpid())  # a subprocess of the program: a file of its own
        global _recording  # held for the program's lifetime: finished at exit, like any recording
        _recording = orm_inspector.record(target)
        _recording.__enter__()
    except Exception as exc:  # noqa: BLE001 - the program runs anyway
        print(f"orm-inspector: not recording: {type(exc).__name__}: {exc}", file=sys.stderr)


def _chain() -> None:
    """Import the sitecustomize this one hides (the program's or the environment's), if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    mine = sys.modules.pop("sitecustomize", None)
    sys.modules["orm_inspector_sitecustomize"] = mine  # keeps this module, and its recording, alive
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import importlib

        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":  # the program's own sitecustomize failed: say so, as Python does
            print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}",
                  file=sys.stderr)
    finally:
        sys.path[:] = saved
        if mine is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = mine


_start()
_chain()
