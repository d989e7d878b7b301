"""A DataTable updated by keyed differences: rows that stay keep their place, their cursor and their
scroll position, only changed cells are written, and a big table costs only what changed.

Adding rows is what costs (about 80 µs a row to add and lay out), so new rows wait in a backlog and
go in ``CHUNK`` at a time: a 100,000-object identity map fills in over a few seconds while the
keys keep answering, instead of freezing the screen for eight. Column widths only ever grow while
rows are updated: shrinking one would measure every cell of the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

CHUNK = 1000  # rows added per call: about 80 ms of work
REBUILD_OVER = 100  # removing a row costs a pass over the table: past this many, start afresh


def _width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))


class KeyedTable(DataTable):
    BINDINGS = [Binding("home", "first_row", "first row", show=False),
                Binding("end", "last_row", "last row", show=False)]

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))

    def __init__(self, *columns: tuple[str, str], **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._columns = columns
        self._cells: dict[str, tuple] = {}  # what each row shows now
        self._backlog: dict[str, tuple] = {}  # rows still to add, in order

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    @property
    def behind(self) -> int:
        """Rows waiting to be added: call ``sync`` again (with nothing new) to add more."""
        return len(self._backlog)

    def sync(self, rows: Iterable[tuple[str, Sequence[Any]]], only: set[str] | None = None,
             follow: bool = False) -> None:
        """Make the table show ``rows`` ((key, cells) in order). With ``only``, ``rows`` holds just
        those keys: rows for other keys are left as they are, and keys in ``only`` without a row go.
        With ``follow`` (a log), a cursor on the last row stays on the last row as rows arrive."""
        at_end = self.cursor_row >= self.row_count - 1
        wanted = {key: tuple(cells) for key, cells in rows}
        known = self._cells.keys() | self._backlog.keys()
        gone = (only - wanted.keys()) if only is not None else (known - wanted.keys())
        if only is None and len(gone) > REBUILD_OVER:  # a log that moved on: cheaper to start afresh
            self.reset()
            gone = set()
        for key in gone:
            self._backlog.pop(key, None)
            if self._cells.pop(key, None) is not None:
                self.remove_row(key)
        for key, cells in wanted.items():
            before = self._cells.get(key)
            if before is None:
                self._backlog[key] = cells
            elif before != cells:
                self._update(key, before, cells)
        for key in list(self._backlog)[:CHUNK]:
            cells = self._backlog.pop(key)
            self.add_row(*cells, key=key)
            self._cells[key] = cells
        if follow and at_end and self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def _update(self, key: str, before: tuple, cells: tuple) -> None:
        for (column_key, _), old, new in zip(self._columns, before, cells, strict=True):
            if old != new:
                column = self.columns.get(column_key)  # type: ignore[call-overload]
                grow = column is not None and _width(new) > column.content_width
                self.update_cell(key, column_key, new, update_width=grow)
        self._cells[key] = cells

    # Textual caches drawn rows by content, not by column widths: a row drawn just before the widths
    # grew would stay drawn with the old ones. Counting the width change as an update redraws it.
    def _update_dimensions(self, new_rows: Any) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1

    def _update_column_widths(self, updated_cells: Any) -> None:
        super()._update_column_widths(updated_cells)
        self._update_count += 1

    def reset(self) -> None:
        self._cells.clear()
        self._backlog.clear()
        self.clear()

    @property
    def keys(self) -> set[str]:
        return self._cells.keys() | self._backlog.keys()

    def selected_key(self) -> str | None:
        if not self._cells or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return row_key.value
