"""Put on PYTHONPATH by ``orm-inspector run``: instruments the program at interpreter start, before
any of its threads exist, then hands over to the program's own sitecustomize, if it has one.

Configuration comes from the environment the launcher set: ORM_INSPECTOR_RECORD (trace path),
ORM_INSPECTOR_LISTEN / _ALLOW_REMOTE (live server), ORM_INSPECTOR_GROUP (the private directory of a
``--listen``: the token file, and the sockets of the processes other than the root),
ORM_INSPECTOR_ROOT_PID (the launched process's pid: it alone records to the path itself and serves
on the address itself).

With ``--listen``, every instrumented process serves: the root on ORM_INSPECTOR_LISTEN, every other
one (a subprocess, here at start; a forked child, just after the fork) on ``GROUP/live-<pid>.sock``,
with the same token, so that a viewer can follow them all (``transports.sources.ProcessGroupSource``).
The root removes the directory at exit.
"""

import os
import sys

_recording = None


def _start() -> None:
    path = os.environ.get("ORM_INSPECTOR_RECORD")
    listen = os.environ.get("ORM_INSPECTOR_LISTEN")
    root = _is_root()
    if listen:
        if root:
            import atexit

            # Registered before orm_inspector is imported, so it runs after orm_inspector's own exit
            # handler has closed the server (atexit runs the last registered first).
            atexit.register(_remove_group)
        try:
            _serve(listen if root else None)
            os.register_at_fork(after_in_child=_serve_in_forked_child)
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


def _is_root() -> bool:
    return str(os.getpid()) == os.environ.get("ORM_INSPECTOR_ROOT_PID")


def _serve(address) -> None:
    """Serve on ``address``, or (None: not the root) on this process's own socket in the group's directory."""
    import orm_inspector
    from orm_inspector.transports import server

    group = os.environ["ORM_INSPECTOR_GROUP"]
    with open(os.path.join(group, "token")) as f:
        token = f.read()
    if address is None:
        address = "unix:" + os.path.join(group, f"live-{os.getpid()}.sock")
    if address.startswith("unix:") and os.path.dirname(address[5:]) == group:
        try:  # only this pid serves there: a file left by an exec() of it, or by a process gone unclosed
            os.unlink(address[5:])
        except OSError:
            pass
    _prune(group)
    server.group_dir = group
    orm_inspector.serve(address, token=token, allow_remote=bool(os.environ.get("ORM_INSPECTOR_ALLOW_REMOTE")))


def _prune(group) -> None:
    """Remove the sockets of the group's processes that are gone without closing: os._exit(), as
    multiprocessing's workers and forking servers' children end, skips it. So the directory stays
    as small as the group, however many short-lived workers come and go."""
    for name in os.listdir(group):
        pid = name[5:-5]
        if name.startswith("live-") and name.endswith(".sock") and pid.isdigit():
            try:
                os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
            except ProcessLookupError:
                try:
                    os.unlink(os.path.join(group, name))
                except OSError:
                    pass
            except OSError:  # it exists (another user's), or we cannot tell: leave it
                pass


def _serve_in_forked_child() -> None:
    # Runs after orm_inspector's own after-fork handler (registered earlier), which has let go of the
    # parent's server: the child, a worker of a pre-fork server say, becomes a source of its own.
    try:
        _serve(None)
    except Exception as exc:  # noqa: BLE001 - never fail the app's fork
        try:
            print(f"orm-inspector: pid {os.getpid()}: not listening: {type(exc).__name__}: {exc}", file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass


def _remove_group() -> None:
    """At the root's exit: the token and the directory the launcher made go (a forked child runs the
    atexit handlers it inherited too: only the root removes)."""
    if not _is_root():
        return
    group = os.environ.get("ORM_INSPECTOR_GROUP")
    try:
        for name in os.listdir(group):
            if name in ("token", "live.sock") or (name.startswith("live-") and name.endswith(".sock")):
                os.unlink(os.path.join(group, name))
        os.rmdir(group)
    except (OSError, TypeError):
        pass


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
