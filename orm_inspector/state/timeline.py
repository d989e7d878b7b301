"""Time travel over a trace file: the state just after any event, without replaying from the start.

One pass over the file records, every ``every`` events, where the next event's line starts and a
snapshot of the state folded so far (pickled: a compact copy that later folding cannot change). The
same pass notes where every event's line starts (16 bytes an event), the seqs of flushes, commits and
rollbacks, and per object the seqs of what happened to it: the replay's jumps and an object's story
read just those lines.
``seek(seq)`` restores the nearest snapshot at or before ``seq`` and folds the few events after it,
reading them from the file at that offset: at most ``every`` events, whatever the trace's length.
Events are never all in memory; snapshots are.

A ``.gz`` trace cannot be read from the middle, so it is decompressed once into a temporary file.
"""

from __future__ import annotations

import bisect
import gzip
import pickle
import shutil
import tempfile
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from ..transports.trace import TraceError, TraceReader
from .journal import STORY
from .model import State

#: What the replay can jump to: a name, and the kinds of the events it lands on.
MARKS = {"flush": ("before_flush",), "commit": ("after_commit",), "rollback": ("after_rollback",)}
_MARK_OF = {kind: name for name, kinds in MARKS.items() for kind in kinds}

_decode = msgspec.json.Decoder(dict).decode


class Timeline:
    def __init__(self, path: str | Path, every: int = 5000) -> None:
        self.path = Path(path)
        self.every = every
        self._tmp = None
        self.warnings: list[str] = []
        if self.path.suffix == ".gz":
            self._plain = self._decompress()
        else:
            self._plain = self.path
        self._seqs: list[int] = []  # seq of the last event folded into each snapshot
        self._offsets: list[int] = []  # where the line after it starts
        self._snapshots: list[bytes] = []
        self.last_seq = 0
        self.header: dict[str, Any] = {}
        self._event_seqs = array("q")  # every event's seq, and where its line starts
        self._event_offsets = array("q")
        self._marks: dict[str, array] = {name: array("q") for name in MARKS}
        self._objects: dict[str, array] = {}  # object key -> seqs of its STORY events
        self._index()
        self.state = pickle.loads(self._snapshots[0])  # before the first event
        self._offset = self._offsets[0]  # where the line after self.state.seq starts

    def _decompress(self) -> Path:
        """A plain copy of a .gz trace; a cut-off one (a crashed app's) keeps what could be read."""
        if not self.path.is_file():
            TraceReader(self.path)  # its own message: no such file, a directory
        self._tmp = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=True)
        try:
            with gzip.open(self.path, "rb") as src:
                shutil.copyfileobj(src, self._tmp)
        except (EOFError, zlib.error):
            self.warnings.append("the compressed file ends abruptly (the recording was cut off)")
        except (gzip.BadGzipFile, OSError) as exc:
            self._tmp.close()
            raise TraceError(f"{self.path}: not a gzip file ({exc})") from None
        self._tmp.flush()
        return Path(self._tmp.name)

    def _index(self) -> None:
        reader = TraceReader(self._plain)
        try:
            self._read(reader)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TraceError(f"{self.path}: line {reader.line}: a malformed event "
                             f"({type(exc).__name__}: {exc})") from None
        self.warnings += reader.warnings

    def _read(self, reader: TraceReader) -> None:
        # Validate once with the reader (header, versions, malformed lines), then index by offsets.
        state = State()
        self._snapshot(state, offset=self._header_end())
        with open(self._plain, "rb") as f:
            f.readline()  # the header
            events = iter(reader)
            offset = f.tell()
            for event in events:
                line = f.readline()
                seq = event["seq"]
                self._event_seqs.append(seq)
                self._event_offsets.append(offset)
                offset += len(line)
                kind = event["kind"]
                if kind in STORY:
                    key = (event.get("obj") or {}).get("key")
                    if key is not None:
                        self._objects.setdefault(key, array("q")).append(seq)
                elif kind in _MARK_OF:
                    self._marks[_MARK_OF[kind]].append(seq)
                state.apply(event)
                if state.events % self.every == 0:
                    self._snapshot(state, offset)
        self.header = reader.header
        self.last_seq = state.seq

    def _header_end(self) -> int:
        with open(self._plain, "rb") as f:
            f.readline()
            return f.tell()

    def _snapshot(self, state: State, offset: int) -> None:
        self._seqs.append(state.seq)
        self._offsets.append(offset)
        self._snapshots.append(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def seek(self, seq: int) -> State:
        """The state just after event ``seq`` (0: before the first event)."""
        seq = max(0, min(seq, self.last_seq))
        if not (self.state.seq <= seq and seq - self.state.seq <= self.every):
            i = bisect.bisect_right(self._seqs, seq) - 1
            self.state = pickle.loads(self._snapshots[i])
            self._offset = self._offsets[i]
        self._fold_until(seq)
        return self.state

    def _fold_until(self, seq: int) -> None:
        if self.state.seq >= seq:
            return
        with open(self._plain, "rb") as f:
            f.seek(self._offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a truncated last line: skipped, as the reader does
                event: dict[str, Any] = _decode(line)
                self.state.apply(event)
                self._offset += len(line)
                if self.state.seq >= seq:
                    break

    def step(self, delta: int) -> State:
        """One event (or ``delta`` events) forward or back."""
        return self.seek(self.state.seq + delta)

    def events(self, first: int, last: int) -> Iterator[dict[str, Any]]:
        """The events with ``first <= seq <= last``, read from the file."""
        i = bisect.bisect_left(self._event_seqs, first)
        if i == len(self._event_seqs):
            return
        with open(self._plain, "rb") as f:
            f.seek(self._event_offsets[i])
            for line in f:
                if not line.endswith(b"\n"):
                    return
                event = _decode(line)
                if event["seq"] > last:
                    return
                yield event

    def event(self, seq: int) -> dict[str, Any] | None:
        return next(self.events(seq, seq), None)

    def next_mark(self, mark: str, seq: int, direction: int, key: str | None = None) -> int | None:
        """The seq of the next (direction 1) or previous (-1) mark after/before ``seq``: a flush,
        commit or rollback (see MARKS), or with mark ``object``, an event of the object ``key``."""
        seqs = self._objects.get(key or "", array("q")) if mark == "object" else self._marks[mark]
        if direction > 0:
            i = bisect.bisect_right(seqs, seq)
            return seqs[i] if i < len(seqs) else None
        i = bisect.bisect_left(seqs, seq)
        return seqs[i - 1] if i > 0 else None

    def object_events(self, key: str, upto: int) -> Iterator[dict[str, Any]]:
        """What happened to one object (transitions, edits, expiry, refresh) up to ``upto``."""
        for seq in self._objects.get(key, ()):
            if seq > upto:
                return
            event = self.event(seq)
            if event is not None:
                yield event

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
