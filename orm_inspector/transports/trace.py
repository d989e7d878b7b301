"""Reading trace files: streamed line by line, never loaded whole.

``read_trace(path)`` checks the header, then yields each event as a dict. A malformed line stops the
reading with ``TraceError`` naming its line number, except a truncated *last* line (what a crash
leaves behind), which is reported in ``TraceReader.warnings`` and skipped.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from ..events import TRACE_FORMAT, TRACE_VERSION

_decode = msgspec.json.Decoder(dict).decode


class TraceError(Exception):
    """A trace file that cannot be read; the message is one line meant for the user."""


class TraceReader:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.header: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.lines = 0
        self.line = 0
        """The line number of the event last yielded: for messages about it."""
        if not self.path.exists():
            raise TraceError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise TraceError(f"{self.path}: is a directory, not a trace file")

    def _lines(self) -> Iterator[bytes]:
        try:
            if self.path.suffix == ".gz":
                with gzip.open(self.path, "rb") as f:
                    try:
                        yield from f
                    except (EOFError, zlib.error):
                        self.warnings.append("the compressed file ends abruptly (the recording was cut off)")
            else:
                with open(self.path, "rb") as f:
                    yield from f
        except gzip.BadGzipFile as exc:
            raise TraceError(f"{self.path}: not a gzip file ({exc})") from None
        except OSError as exc:
            raise TraceError(f"{self.path}: {exc.strerror or exc}") from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        lines = self._lines()
        pending: tuple[int, bytes] | None = None
        number = 0
        for number, line in enumerate(lines, 1):
            if pending is not None:
                self.line = pending[0]
                yield self._parse(*pending, last=False)
            pending = (number, line)
            if number == 1:
                self.header = self._check_header(self._parse(number, line, last=False))
                pending = None
        if number == 0:
            raise TraceError(f"{self.path}: empty file, not a trace")
        if pending is not None:
            event = self._parse(*pending, last=True)
            if event is not None:
                self.line = pending[0]
                yield event
        self.lines = number

    def _parse(self, number: int, line: bytes, last: bool) -> Any:
        try:
            event = _decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            if last and not line.endswith(b"\n"):
                self.warnings.append(f"line {number}: truncated last line skipped (the recording was cut off)")
                return None
            raise TraceError(f"{self.path}: line {number}: not a JSON object ({exc})") from None
        if number > 1 and not ("seq" in event and "kind" in event):
            raise TraceError(f"{self.path}: line {number}: an event needs 'seq' and 'kind'")
        return event

    def _check_header(self, header: dict[str, Any]) -> dict[str, Any]:
        if header.get("kind") != "trace_header" or header.get("format") != TRACE_FORMAT:
            raise TraceError(f"{self.path}: line 1: not an orm-inspector trace (no '{TRACE_FORMAT}' header)")
        version = header.get("version")
        if type(version) is not int or version < 1:
            raise TraceError(f"{self.path}: line 1: trace format version {version!r} is not a version")
        if version > TRACE_VERSION:
            raise TraceError(f"{self.path}: trace format version {version!r} is newer than this orm-inspector "
                             f"reads (version {TRACE_VERSION}): upgrade orm-inspector")
        return header


def read_trace(path: str | Path) -> TraceReader:
    return TraceReader(path)
