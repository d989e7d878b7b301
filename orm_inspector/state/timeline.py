"""Time travel over a trace file: the state just after any event, without replaying from the start.

One pass over the file records, every ``every`` events, where the next event's line starts and a
snapshot of the state folded so far (pickled: a compact copy that later folding cannot change).
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
from pathlib import Path
from typing import Any

import msgspec

from ..transports.trace import TraceReader
from .model import State

_decode = msgspec.json.Decoder(dict).decode


class Timeline:
    def __init__(self, path: str | Path, every: int = 5000) -> None:
        self.path = Path(path)
        self.every = every
        self._tmp = None
        if self.path.suffix == ".gz":
            self._tmp = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=True)
            with gzip.open(self.path, "rb") as src:
                shutil.copyfileobj(src, self._tmp)
            self._tmp.flush()
            self._plain = Path(self._tmp.name)
        else:
            self._plain = self.path
        self._seqs: list[int] = []  # seq of the last event folded into each snapshot
        self._offsets: list[int] = []  # where the line after it starts
        self._snapshots: list[bytes] = []
        self.last_seq = 0
        self.warnings: list[str] = []
        self._index()
        self.state = pickle.loads(self._snapshots[0])  # before the first event
        self._offset = self._offsets[0]  # where the line after self.state.seq starts

    def _index(self) -> None:
        # Validate once with the reader (header, versions, malformed lines), then index by offsets.
        reader = TraceReader(self._plain)
        state = State()
        self._snapshot(state, offset=self._header_end())
        with open(self._plain, "rb") as f:
            f.readline()  # the header
            events = iter(reader)
            offset = f.tell()
            for event in events:
                line = f.readline()
                offset += len(line)
                state.apply(event)
                if state.events % self.every == 0:
                    self._snapshot(state, offset)
        self.warnings = reader.warnings
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

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
