"""Result tables are rewritten in place (issue 15, item 11): a live drag frame changes the
cells' texts and colours, keeps the rows' items, and looks like a freshly filled table."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from surgiplan.ui.widgets.table_rows import Cell, new_item, write_rows


def look(table) -> list[list[tuple]]:
    """Every cell's text, background, foreground, tooltip and flags (None: no item)."""
    out = []
    for r in range(table.rowCount()):
        row = []
        for c in range(table.columnCount()):
            item = table.item(r, c)
            row.append(None if item is None else (
                item.text(), item.data(Qt.ItemDataRole.BackgroundRole),
                item.data(Qt.ItemDataRole.ForegroundRole), item.toolTip(), item.flags()))
        out.append(row)
    return out


def fresh(qtbot, rows: list[list[Cell]]):
    """A new table filled with new items (what the tables were rebuilt with before)."""
    from PySide6.QtWidgets import QTableWidget

    table = QTableWidget(len(rows), 3)
    qtbot.addWidget(table)
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            if cell.text is not None:
                table.setItem(r, c, new_item(cell.text, color=cell.color, tooltip=cell.tooltip))
    return table


def test_rows_are_rewritten_in_place_and_look_as_new(qtbot):
    from PySide6.QtWidgets import QTableWidget

    red, green = QColor(200, 40, 40), QColor(40, 200, 40)
    table = QTableWidget(0, 3)
    qtbot.addWidget(table)
    first = [[Cell("brain"), Cell("caution", red), Cell("3.10 mm", tooltip="min_distance_mm")],
             [Cell("vessel"), Cell("safe", green), Cell("9.00 mm")],
             [Cell("skin"), Cell(None), Cell("—")]]
    write_rows(table, first)
    assert look(table) == look(fresh(qtbot, first))
    kept = table.item(0, 2)
    second = [[Cell("brain"), Cell("safe"), Cell("3.60 mm", green)],  # red cleared, green set
              [Cell("vessel"), Cell(None), Cell("8.50 mm", tooltip="key")]]
    write_rows(table, second)
    assert look(table) == look(fresh(qtbot, second))
    assert table.item(0, 2) is kept  # the same item, its text changed
    assert table.rowCount() == 2 and table.item(1, 1) is None
