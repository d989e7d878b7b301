"""A DataTable updated by keyed differences: rows that stay keep their place, their cursor and their
scroll position, only changed cells are written, and a big table costs only what changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from textual.widgets import DataTable


class KeyedTable(DataTable):
    def __init__(self, *columns: tuple[str, str], **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._columns = columns
        self._cells: dict[str, tuple] = {}  # what each row shows now

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    def sync(self, rows: Iterable[tuple[str, Sequence[Any]]], only: set[str] | None = None,
             follow: bool = False) -> None:
        """Make the table show ``rows`` ((key, cells) in order). With ``only``, ``rows`` holds just
        those keys: rows for other keys are left as they are, and keys in ``only`` without a row go.
        With ``follow`` (a log), a cursor on the last row stays on the last row as rows arrive."""
        at_end = self.cursor_row >= self.row_count - 1
        wanted = dict(rows)
        gone = (only - wanted.keys()) if only is not None else (self._cells.keys() - wanted.keys())
        for key in gone:
            if key in self._cells:
                del self._cells[key]
                self.remove_row(key)
        column_keys = [key for key, _ in self._columns]
        for key, cells in wanted.items():
            cells = tuple(cells)
            before = self._cells.get(key)
            if before is None:
                self.add_row(*cells, key=key)
            elif before != cells:
                for column, old, new in zip(column_keys, before, cells):
                    if old != new:
                        self.update_cell(key, column, new, update_width=True)
            self._cells[key] = cells
        if follow and at_end and self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def reset(self) -> None:
        self._cells.clear()
        self.clear()

    @property
    def keys(self) -> set[str]:
        return set(self._cells)

    def selected_key(self) -> str | None:
        if not self._cells or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return row_key.value
