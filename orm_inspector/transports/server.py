"""The live server: streams the event stream to viewers over a local socket (docs/wire-protocol.md).

A receiver of ``signals.events`` on the inspector's thread folds each batch into a ``State`` (so a
viewer that connects late first gets the state as it is, then the stream from there) and queues the
encoded batch for every viewer. One thread of its own accepts viewers, checks their hello and token,
and writes. Each viewer has a bounded buffer: a viewer that reads slowly, or not at all, loses events
(counted, and told with a ``dropped`` event), never slows the app or the other viewers.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import selectors
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from typing import Any

import msgspec

from .. import __version__, signals
from ..state import State
from ..state.model import FOLDED_KINDS
from .recorder import encodable, encode_lines

PROTOCOL = 1
HELLO_TIMEOUT = 5.0
MAX_HELLO = 4096
MAX_PENDING = 32  # connections waiting to say hello
# The private directory of the `orm-inspector run --listen` process group this process belongs to
# (set by boot/sitecustomize.py): every hello names it, so that a viewer can find and follow the
# group's other processes there (``transports.sources.ProcessGroupSource``). None: no group.
group_dir: str | None = None
_encode = msgspec.json.Encoder().encode


class AddressError(ValueError):
    """An address the server cannot or may not listen on; the message is for the user."""


def parse_address(address: str | None, allow_remote: bool = False) -> tuple[str, Any]:
    """("unix", path) or ("tcp", (host, port)); None: a fresh private Unix socket path.
    IPv6 hosts are written in brackets: ``[::1]:PORT``."""
    if address is None:
        folder = tempfile.mkdtemp(prefix="orm-inspector-")  # mode 0700: only this user
        return "unix", os.path.join(folder, "live.sock")
    if address.startswith("unix:"):
        return "unix", address[5:]
    if "/" in address:
        return "unix", address
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise AddressError(f"{address!r}: expected HOST:PORT, unix:PATH or a socket path")
    host = host.strip("[]") or "127.0.0.1"
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        loopback = all(ipaddress.ip_address(sockaddr[0].split("%")[0]).is_loopback for *_, sockaddr in found)
    except (OSError, ValueError):
        raise AddressError(f"{address!r}: unknown host {host!r}") from None
    if not loopback and not allow_remote:
        raise AddressError(f"{address!r} is not a loopback address: listening there lets other machines see "
                           "your application's data; pass allow_remote=True (--allow-remote) to do it anyway")
    return "tcp", (host, int(port))


def format_address(family: str, where: Any) -> str:
    """The inverse of ``parse_address``: ``unix:PATH``, ``HOST:PORT`` or ``[V6HOST]:PORT``."""
    if family == "unix":
        return f"unix:{where}"
    host, port = where[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Viewer:
    __slots__ = ("sock", "inbox", "out", "size", "ready", "dropped", "since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = b""
        self.out: deque[bytes] = deque()
        self.size = 0
        self.ready = False  # hello checked
        self.dropped = 0  # events not queued since the last "dropped" line
        self.since = time.monotonic()


class LiveServer:
    """What ``orm_inspector.serve()`` returns: ``address``, ``token``, ``close()``."""

    def __init__(self, address: str | None = None, *, token: str | None = None, allow_remote: bool = False,
                 max_buffer: int = 8 << 20) -> None:
        self.family, where = parse_address(address, allow_remote)
        self._own_folder = os.path.dirname(where) if address is None else None  # made for us: removed at close
        self.token = token or secrets.token_hex(24)
        self.max_buffer = max_buffer
        self.state = State()
        self._lock = threading.Lock()  # state and viewers' buffers: the inspector's thread vs ours
        self._viewers: dict[int, _Viewer] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        if self.family == "unix":
            if os.path.exists(where):
                raise AddressError(f"{where}: already exists")
            if not where:
                raise AddressError("unix: needs a path")
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._listener.bind(where)
            except OSError as exc:
                self._listener.close()
                raise AddressError(f"{where}: {exc.strerror}") from None
            os.chmod(where, 0o600)  # only this user (the default folder is 0700 already)
            self.address = f"unix:{where}"
        else:
            try:  # the host's first address: IPv4 or IPv6
                inet, _, _, _, sockaddr = socket.getaddrinfo(*where, type=socket.SOCK_STREAM)[0]
                self._listener = socket.socket(inet, socket.SOCK_STREAM)
            except OSError as exc:
                raise AddressError(f"{format_address('tcp', where)}: {exc.strerror or exc}") from None
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self._listener.bind(sockaddr)
            except OSError as exc:
                self._listener.close()
                raise AddressError(f"{format_address('tcp', where)}: {exc.strerror}") from None
            self.address = format_address("tcp", self._listener.getsockname())
        self._listener.listen(128)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="orm-inspector-server", daemon=True)
        self._thread.start()
        signals.events.connect(self._on_events, weak=False)

    # ---- the inspector's thread: fold and queue ----------------------------------------------------
    def _on_events(self, sender: str, events: list[Any]) -> None:
        data = encode_lines(events)
        # Only what changes the state is converted and folded: statements, most of a stream, are not.
        relevant = [e for e in events if e.kind in FOLDED_KINDS]
        plain = msgspec.to_builtins(relevant, enc_hook=str)
        with self._lock:
            try:
                for e in plain:
                    self.state.apply(e)
            except Exception as exc:  # noqa: BLE001 - the viewers still get the events
                from ..hooks import runtime

                runtime.record_error("live state", exc)
            self.state.skip(events[-1].seq, len(events) - len(relevant))
            for v in self._viewers.values():
                if not v.ready:
                    continue
                if v.size and v.size + len(data) > self.max_buffer:  # behind by a full buffer already
                    v.dropped += len(events)
                    continue
                if v.dropped:
                    v.out.append(_encode({"kind": "dropped", "count": v.dropped, "seq": events[0].seq - 1,
                                          "ts": time.time(), "pid": os.getpid(), "thread": "orm-inspector"})
                                 + b"\n")
                    v.dropped = 0
                v.out.append(data)
                v.size += len(data)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (a wake is pending anyway) or closed
            pass

    # ---- our thread: accept, handshake, write -------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            for key, mask in self._selector.select(timeout=0.5):
                try:
                    self._handle(key, mask)
                except Exception as exc:  # noqa: BLE001 - one viewer's trouble is that viewer's
                    if isinstance(key.data, _Viewer):
                        self._drop(key.data, f"server error: {exc}")
            self._expire_hellos()

    def _handle(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.data == "accept":
            while True:  # everyone waiting: a full backlog turns connections away
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # out of file descriptors, say: do not spin
                    time.sleep(0.05)
                    break
                pending = [v for v in self._viewers.values() if not v.ready]
                if len(pending) >= MAX_PENDING:  # too many that have not said hello: the oldest goes
                    self._drop(min(pending, key=lambda v: v.since), "too many connections waiting")
                sock.setblocking(False)
                viewer = _Viewer(sock)
                with self._lock:
                    self._viewers[id(viewer)] = viewer
                self._selector.register(sock, selectors.EVENT_READ, viewer)
        elif key.data == "wake":
            try:
                self._wake_r.recv(4096)
            except OSError:
                pass
            self._update_interest()
        else:
            viewer = key.data
            if mask & selectors.EVENT_READ:
                self._read(viewer)
            if mask & selectors.EVENT_WRITE and viewer.ready:
                self._write(viewer)

    def _read(self, viewer: _Viewer) -> None:
        try:
            chunk = viewer.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(viewer, None)  # the viewer went away
            return
        if viewer.ready:
            self._drop(viewer, "unexpected data from the viewer")
            return
        viewer.inbox += chunk
        if b"\n" not in viewer.inbox:
            if len(viewer.inbox) > MAX_HELLO:
                self._drop(viewer, "hello too long")
            return
        line = viewer.inbox.split(b"\n", 1)[0]
        self._hello(viewer, line)

    def _hello(self, viewer: _Viewer, line: bytes) -> None:
        try:
            hello = msgspec.json.decode(line)
        except msgspec.DecodeError:
            self._drop(viewer, "not a hello: send one JSON line first")
            return
        if not isinstance(hello, dict) or hello.get("hello") != "orm-inspector":
            self._drop(viewer, "not a hello: send one JSON line first")
        elif hello.get("version") != PROTOCOL:
            self._drop(viewer, f"protocol version {hello.get('version')!r} is not {PROTOCOL}: "
                               "use the same orm-inspector version on both sides")
        elif not isinstance(hello.get("token"), str) or not secrets.compare_digest(
                hello["token"].encode("utf-8", "replace"), self.token.encode()):
            self._drop(viewer, "wrong token")
        else:
            with self._lock:  # the snapshot and the first queued batch meet exactly here
                reply = {"hello": "orm-inspector", "version": PROTOCOL, "ok": True, "pid": os.getpid(),
                         "ppid": os.getppid(), "argv": sys.argv, "orm_inspector": __version__,
                         "group": group_dir, "state": self.state.to_json()}
                try:
                    data = _encode(reply) + b"\n"
                except UnicodeEncodeError:  # argv or a value with undecodable bytes in it
                    data = _encode(encodable(reply)) + b"\n"
                viewer.out.append(data)
                viewer.size += len(data)
                viewer.ready = True
            self._update_interest()

    def _write(self, viewer: _Viewer) -> None:
        with self._lock:
            chunks = list(viewer.out)
            viewer.out.clear()
            viewer.size = 0
        data = b"".join(chunks)
        try:
            sent = viewer.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(viewer, None)
            return
        if sent < len(data):
            with self._lock:
                rest = data[sent:]
                viewer.out.appendleft(rest)
                viewer.size += len(rest)
        self._update_interest()

    def _flush(self, viewer: _Viewer, timeout: float = 1.0) -> None:
        with self._lock:
            data = b"".join(viewer.out) if viewer.ready else b""
        if not data:
            return
        try:
            viewer.sock.setblocking(True)
            viewer.sock.settimeout(timeout)
            viewer.sock.sendall(data)
        except OSError:
            pass

    def _update_interest(self) -> None:
        with self._lock:
            wanted = {id(v): bool(v.out) for v in self._viewers.values()}
        for vid, writing in wanted.items():
            v = self._viewers.get(vid)
            if v is None:
                continue
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
            try:
                self._selector.modify(v.sock, mask, v)
            except (KeyError, ValueError, OSError):
                pass

    def _expire_hellos(self) -> None:
        now = time.monotonic()
        for v in list(self._viewers.values()):
            if not v.ready and now - v.since > HELLO_TIMEOUT:
                self._drop(v, "no hello in time")

    def _drop(self, viewer: _Viewer, reason: str | None) -> None:
        """Say why (if there is something to say) and let the viewer go: nothing else happens."""
        if reason is not None:
            try:
                viewer.sock.setblocking(True)
                viewer.sock.settimeout(0.2)
                viewer.sock.sendall(_encode({"ok": False, "error": reason}) + b"\n")
            except OSError:
                pass
        try:
            self._selector.unregister(viewer.sock)
        except (KeyError, ValueError):
            pass
        viewer.sock.close()
        with self._lock:
            self._viewers.pop(id(viewer), None)

    # ---- the end -----------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        signals.events.disconnect(self._on_events)
        self._closed = True
        self._wake()
        self._thread.join(timeout=2)
        with self._lock:
            viewers = list(self._viewers.values())
        for v in viewers:
            self._flush(v)  # the last events reach the viewers that keep up
            self._drop(v, None)
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        if self.family == "unix":
            try:
                os.unlink(self.address[5:])
                if self._own_folder:
                    os.rmdir(self._own_folder)
            except OSError:
                pass

    def abandon(self) -> None:
        """In a forked child: stop serving without touching what belongs to the parent (no unlink,
        no goodbye to its viewers): just close our copies of the descriptors."""
        signals.events.disconnect(self._on_events)
        self._closed = True
        for sock in [self._listener, self._wake_r, self._wake_w, *(v.sock for v in self._viewers.values())]:
            try:
                sock.close()
            except OSError:
                pass
        self._viewers.clear()

    def viewers(self) -> int:
        with self._lock:
            return sum(1 for v in self._viewers.values() if v.ready)
