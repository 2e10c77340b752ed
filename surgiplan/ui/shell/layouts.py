"""View layouts in resizable splitters: four-up, three slices + 3D, one view alone.

Two columns in a horizontal splitter, each a vertical splitter. The 3D view always stays in the
right column (re-parenting an OpenGL widget is fragile); slice views (plain QPainter widgets)
move between columns. Every layout starts with equal shares (equal columns, equal rows in a
column: in "slices+3d" the 3D view is as wide as the slices); dragged sizes are kept per layout
(:meth:`ViewGrid.state` / :meth:`ViewGrid.restore_state`). In four-up the two columns' row
dividers move together. Double-click maximises a view; double-click again restores the layout.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

VIEW_NAMES = ("axial", "coronal", "sagittal", "3d")

# layout name -> (left column views, right column views), top to bottom
LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "four-up": (("axial", "coronal"), ("3d", "sagittal")),
    "slices+3d": (("axial", "coronal", "sagittal"), ("3d",)),
    "axial": (("axial",), ()),
    "coronal": (("coronal",), ()),
    "sagittal": (("sagittal",), ()),
    "3d": ((), ("3d",)),
}
LAYOUT_TITLES = {
    "four-up": "Four-up", "slices+3d": "3 slices + 3D", "axial": "Axial only",
    "coronal": "Coronal only", "sagittal": "Sagittal only", "3d": "3D only",
}
HANDLE_PX = 5
MIN_VIEW_PX = 80


def _splitter(orientation: Qt.Orientation, name: str) -> QSplitter:
    splitter = QSplitter(orientation)
    splitter.setObjectName(name)
    splitter.setChildrenCollapsible(False)
    splitter.setHandleWidth(HANDLE_PX)
    splitter.setOpaqueResize(True)
    return splitter


class ViewGrid(QWidget):
    """Holds the four views in splitters and arranges them by layout name."""

    def __init__(self, views: dict[str, QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = views
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.columns = _splitter(Qt.Orientation.Horizontal, "view_columns")
        self.left = _splitter(Qt.Orientation.Vertical, "view_left")
        self.right = _splitter(Qt.Orientation.Vertical, "view_right")
        self.columns.addWidget(self.left)
        self.columns.addWidget(self.right)
        box.addWidget(self.columns)
        for view in views.values():
            view.setMinimumSize(MIN_VIEW_PX, MIN_VIEW_PX)
        self.right.addWidget(views["3d"])
        self.left.splitterMoved.connect(lambda *_: self._mirror_rows(self.left, self.right))
        self.right.splitterMoved.connect(lambda *_: self._mirror_rows(self.right, self.left))
        self.layout_name = ""
        self._before_maximize: str | None = None
        self._sizes: dict[str, dict[str, list[int]]] = {}
        self.set_layout("four-up")

    # ------------------------------------------------------------------ layouts
    def set_layout(self, name: str) -> None:
        """Arrange the views as layout ``name`` (a key of :data:`LAYOUTS`)."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")
        if self.layout_name and self.isVisible():
            self._remember_sizes()
        left_names, right_names = LAYOUTS[name]
        for position, view_name in enumerate(left_names):
            self.left.insertWidget(position, self.views[view_name])
        slices_right = [n for n in right_names if n != "3d"]
        for view_name in slices_right:
            self.right.addWidget(self.views[view_name])
        shown = set(left_names) | set(right_names)
        for view_name, view in self.views.items():
            view.setVisible(view_name in shown)
        self.left.setVisible(bool(left_names))
        self.right.setVisible(bool(right_names))
        self.layout_name = name
        self._before_maximize = None
        self.equalize()
        if name in self._sizes:
            self._apply_sizes(self._sizes[name])

    def equalize(self) -> None:
        """Give every shown view its default share: equal columns, equal rows."""
        big = 10_000
        self.columns.setSizes([big, big])
        for splitter in (self.left, self.right):
            splitter.setSizes([big if w.isVisibleTo(self) else 0
                               for w in self._children(splitter)])

    def _children(self, splitter: QSplitter) -> list[QWidget]:
        return [splitter.widget(i) for i in range(splitter.count())]

    def _mirror_rows(self, moved: QSplitter, other: QSplitter) -> None:
        """Four-up: the other column's row divider follows the one dragged."""
        if self.layout_name != "four-up":
            return
        other.setSizes(moved.sizes())

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

    # ------------------------------------------------------------------ persistence
    def _remember_sizes(self) -> None:
        self._sizes[self.layout_name] = {
            "columns": self.columns.sizes(), "left": self.left.sizes(),
            "right": self.right.sizes()}

    def _apply_sizes(self, sizes: dict[str, list[int]]) -> None:
        for key, splitter in (("columns", self.columns), ("left", self.left),
                              ("right", self.right)):
            value = sizes.get(key)
            if isinstance(value, list) and len(value) == splitter.count():
                splitter.setSizes([max(0, int(v)) for v in value])

    def state(self) -> dict[str, Any]:
        """Layout name and the splitter sizes of every layout used (JSON-ready)."""
        self._remember_sizes()
        name = self._before_maximize or self.layout_name
        return {"layout": name, "sizes": self._sizes}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Bring back :meth:`state` (unknown or malformed parts are ignored)."""
        sizes = state.get("sizes") if isinstance(state, dict) else None
        if isinstance(sizes, dict):
            self._sizes = {k: v for k, v in sizes.items()
                           if k in LAYOUTS and isinstance(v, dict)}
        name = state.get("layout") if isinstance(state, dict) else None
        if name in LAYOUTS:
            self.layout_name = ""
            self.set_layout(name)
