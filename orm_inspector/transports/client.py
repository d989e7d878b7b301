"""A viewer's side of the live stream: connect, say hello, get the state, then the events."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import msgspec

from .server import PROTOCOL, AddressError, parse_address

_decode = msgspec.json.Decoder(dict).decode
_decode_lines = msgspec.json.Decoder(dict).decode_lines


class SourceError(Exception):
    """The live source cannot be had; the message is one line for the user."""


class LiveSource:
    """``LiveSource(address, token)``: ``.hello`` (pid, argv, the ``state`` at connection) and, when
    iterated, the events as dicts (trace format), in order, until the app goes away."""

    def __init__(self, address: str, token: str, timeout: float = 5.0) -> None:
        try:
            family, where = parse_address(address, allow_remote=True)
        except AddressError as exc:
            raise SourceError(str(exc)) from None
        self.address = address
        self._closed = False
        try:
            if family == "unix":
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(timeout)
                try:
                    self._sock.connect(where)
                except OSError:
                    self._sock.close()
                    raise
            else:
                self._sock = socket.create_connection(where, timeout)  # IPv4 or IPv6
        except OSError as exc:
            raise SourceError(f"{address}: cannot connect ({exc.strerror or exc})") from None
        self._file = self._sock.makefile("rb")
        try:
            self._sock.sendall(msgspec.json.encode({"hello": "orm-inspector", "version": PROTOCOL, "token": token})
                               + b"\n")
            line = self._file.readline()
        except OSError as exc:  # a timeout too
            self.close()
            raise SourceError(f"{address}: no answer ({exc.strerror or type(exc).__name__})") from None
        try:
            hello = _decode(line) if line else None
        except msgspec.DecodeError:
            hello = None
        if not isinstance(hello, dict) or "ok" not in hello:
            self.close()
            raise SourceError(f"{address}: not an orm-inspector server, or it closed the connection")
        if not hello.get("ok"):
            self.close()
            raise SourceError(f"{address}: refused: {hello.get('error', 'no reason given')}")
        self.hello: dict[str, Any] = hello
        self._sock.settimeout(None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self._file:
                if line.endswith(b"\n"):
                    yield _decode(line)
        except (ValueError, OSError):
            if not self._closed:  # closed by close() from another thread: the stream just ends
                raise

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """The same events as iterating, in lists of what arrived together: for a reader that hands
        them on to another thread (fewer hand-offs than one per event)."""
        rest = b""
        try:
            while True:
                chunk = self._file.read1(1 << 16)
                if not chunk:
                    return
                end = chunk.rfind(b"\n")
                if end < 0:
                    rest += chunk
                    continue
                lines, rest = rest + chunk[:end + 1], chunk[end + 1:]
                yield _decode_lines(lines)
        except (ValueError, OSError):
            if not self._closed:
                raise

    def close(self) -> None:
        self._closed = True
        try:  # wakes a thread blocked reading the stream, so that closing cannot wait for it
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - a reader thread may still hold the buffer: it ends anyway
            pass

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
