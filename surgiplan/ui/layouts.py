"""View layouts: four-up, one-up of any view, 3D only, and three slices beside the 3D view.

The four views always keep the same parent; a layout only changes their grid cells and
visibility (re-parenting an OpenGL widget is fragile). Double-click maximises a view and
double-click again restores the previous layout.
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

VIEW_NAMES = ("axial", "coronal", "sagittal", "3d")

# layout name -> [(view, row, column, row span, column span)]
LAYOUTS: dict[str, list[tuple[str, int, int, int, int]]] = {
    "four-up": [("axial", 0, 0, 1, 1), ("3d", 0, 1, 1, 1),
                ("coronal", 1, 0, 1, 1), ("sagittal", 1, 1, 1, 1)],
    "slices+3d": [("axial", 0, 0, 1, 1), ("coronal", 1, 0, 1, 1),
                  ("sagittal", 2, 0, 1, 1), ("3d", 0, 1, 3, 2)],
    "axial": [("axial", 0, 0, 1, 1)],
    "coronal": [("coronal", 0, 0, 1, 1)],
    "sagittal": [("sagittal", 0, 0, 1, 1)],
    "3d": [("3d", 0, 0, 1, 1)],
}
LAYOUT_TITLES = {
    "four-up": "Four-up", "slices+3d": "3 slices + 3D", "axial": "Axial only",
    "coronal": "Coronal only", "sagittal": "Sagittal only", "3d": "3D only",
}


class ViewGrid(QWidget):
    """Holds the four views and arranges them by layout name."""

    def __init__(self, views: dict[str, QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = views
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        for view in views.values():
            view.setParent(self)
        self.layout_name = ""
        self._before_maximize: str | None = None
        self.set_layout("four-up")

    def set_layout(self, name: str) -> None:
        """Arrange the views as layout ``name`` (a key of :data:`LAYOUTS`)."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")
        for view in self.views.values():
            self._grid.removeWidget(view)
        for r in range(4):
            self._grid.setRowStretch(r, 0)
            self._grid.setColumnStretch(r, 0)
        shown = set()
        for view_name, row, col, rspan, cspan in LAYOUTS[name]:
            self._grid.addWidget(self.views[view_name], row, col, rspan, cspan)
            shown.add(view_name)
            for r in range(row, row + rspan):
                self._grid.setRowStretch(r, 1)
            for c in range(col, col + cspan):
                self._grid.setColumnStretch(c, 1)
        for view_name, view in self.views.items():
            view.setVisible(view_name in shown)
        self.layout_name = name
        self._before_maximize = None

    def toggle_maximize(self, view_name: str) -> None:
        """Show ``view_name`` alone, or go back to the layout it was maximised from."""
        if self._before_maximize is not None and self.layout_name == view_name:
            previous = self._before_maximize
            self.set_layout(previous)
            return
        previous = self.layout_name
        self.set_layout(view_name)
        self._before_maximize = previous

    def visible_views(self) -> list[str]:
        return [n for n, v in self.views.items() if v.isVisible()]
