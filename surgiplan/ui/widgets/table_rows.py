"""Result tables rewritten in place: a live drag frame changes the numbers, not the rows.

Removing every row and inserting new items makes the view lay out, resize its columns and
repaint everything at each live score; :func:`write_rows` keeps the rows and items and changes
only the cells whose text, colour or tooltip differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem


@dataclass(frozen=True)
class Cell:
    """A read-only cell: ``text`` (None: no item), background ``color`` (black text on it) or
    None, ``tooltip``."""

    text: str | None
    color: QColor | None = None
    tooltip: str = ""


def new_item(text: str, *, color: QColor | None = None, tooltip: str = "") -> QTableWidgetItem:
    """A read-only item: ``text`` on ``color`` (black text) or the default colours."""
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if color is not None:
        item.setBackground(QBrush(color))
        item.setForeground(QBrush(QColor(0, 0, 0)))
    if tooltip:
        item.setToolTip(tooltip)
    return item


def _set_role(item: QTableWidgetItem, role: Qt.ItemDataRole, value: QBrush | None) -> None:
    if item.data(role) != value:
        item.setData(role, value)


def set_cell(table: QTableWidget, row: int, col: int, cell: Cell) -> None:
    """Show ``cell`` at (``row``, ``col``), changing the existing item only where it differs
    (the same look as a :func:`new_item`)."""
    item = table.item(row, col)
    if cell.text is None:
        if item is not None:
            table.takeItem(row, col)
        return
    if item is None:
        table.setItem(row, col, new_item(cell.text, color=cell.color, tooltip=cell.tooltip))
        return
    if item.text() != cell.text:
        item.setText(cell.text)
    colored = cell.color is not None
    _set_role(item, Qt.ItemDataRole.BackgroundRole, QBrush(cell.color) if colored else None)
    _set_role(item, Qt.ItemDataRole.ForegroundRole, QBrush(QColor(0, 0, 0)) if colored else None)
    if item.toolTip() != cell.tooltip:
        item.setToolTip(cell.tooltip)


def write_rows(table: QTableWidget, rows: list[list[Cell]]) -> None:
    """Make ``table`` show exactly ``rows`` (missing columns: no item), in place."""
    if table.rowCount() != len(rows):
        table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c in range(table.columnCount()):
            set_cell(table, r, c, cells[c] if c < len(cells) else Cell(None))
