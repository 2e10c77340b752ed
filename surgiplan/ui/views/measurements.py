"""The Measure dock: rulers, angles and ROI statistics drawn in the slice views and in 3D.

Tools (left button in any slice view): *Ruler* - press at one end, drag, release at the other;
*Angle* - click the first arm's end, the vertex, the second arm's end; *ROI* - drag a
rectangle; the box spans "ROI depth" slices along the view's normal, centred on the slice. In
the 3D view, clicks on surfaces place the same points (a ROI: two opposite corners of a 3D
box, at least one voxel thick on every axis). Readings (with 95 % intervals)
come from :mod:`surgiplan.plans.measurements`; the list is saved with the case and exported as
3D Slicer markups (``.mrk.json``, LPS mm).
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.plans.measurements import (
    POINTS_PER_KIND,
    Measurement,
    load_measurements,
    measure,
    read_markups,
    store_measurements,
    write_markups,
)
from surgiplan.ui.views.slice_tools import SliceToolBase
from surgiplan.ui.widgets.docks import add_dock

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow
    from surgiplan.ui.views.slice_view import SliceView

COLOUR = QColor(80, 230, 255)
KIND_TITLES = {"ruler": "Ruler", "angle": "Angle", "roi": "ROI"}


class MeasureTool(SliceToolBase):
    """Places the points of one ruler, angle or ROI, then hands it to the panel."""

    def __init__(self, panel: MeasurementsPanel, kind: str) -> None:
        self.panel, self.kind, self.name = panel, kind, f"measure-{kind}"
        self.points: list[np.ndarray] = []
        self.points_3d: list[np.ndarray] = []  # placed by clicks in the 3D view
        self.moving: np.ndarray | None = None
        self.view: SliceView | None = None

    def place_3d(self, point_lps: np.ndarray) -> None:
        """A click on a 3D surface at ``point_lps`` (mm): the next point of the measurement;
        the last one completes it."""
        self.points_3d.append(np.asarray(point_lps, float))
        wanted = POINTS_PER_KIND[self.kind]
        if len(self.points_3d) < wanted:
            self.panel.say(f"{KIND_TITLES[self.kind]}: point {len(self.points_3d)} of {wanted} "
                           f"placed in 3D; click the next one")
            return
        pts, self.points_3d = np.array(self.points_3d), []
        if self.kind == "roi":
            pts = self.panel.thick_box(pts)
        self.panel.add(Measurement(self.kind, pts))

    def press(self, view, point_lps, event) -> None:
        self.view = view
        if self.kind in ("ruler", "roi") or not self.points:
            self.points = [point_lps]
        else:
            self.points.append(point_lps)
        self.moving = point_lps
        view.update()

    def drag(self, view, point_lps, event) -> None:
        self.moving = point_lps
        view.update()

    def hover(self, view, point_lps) -> None:
        if self.points:
            self.moving = point_lps
            view.update()

    def release(self, view, point_lps, event) -> None:
        if self.kind in ("ruler", "roi"):
            if np.linalg.norm(point_lps - self.points[0]) > 0.5:
                self.finish(view, [self.points[0], point_lps])
            self.points = []
        elif len(self.points) == POINTS_PER_KIND["angle"]:
            self.finish(view, self.points)
            self.points = []
        self.moving = None
        view.update()

    def finish(self, view, points: list[np.ndarray]) -> None:
        pts = np.array(points, float)
        if self.kind == "roi":  # "ROI depth" slices along the view's normal
            _right, _down, normal = view.mapping.screen_vectors_lps()
            half = self.panel.depth_box.value() * view.mapping.slice_spacing_mm / 2.0
            pts = np.array([pts[0] - normal * half, pts[1] + normal * half])
        self.panel.add(Measurement(self.kind, pts))

    def paint(self, view, painter: QPainter) -> None:
        if view is not self.view or not self.points:
            return
        pts = [*self.points, *([self.moving] if self.moving is not None else [])]
        painter.setPen(QPen(COLOUR, 1, Qt.PenStyle.DashLine))
        screen = [view.lps_to_screen(p) for p in pts]
        if self.kind == "roi" and len(screen) == 2:
            painter.drawRect(QRectF(screen[0], screen[1]).normalized())
        else:
            for a, b in pairwise(screen):
                painter.drawLine(a, b)


class MeasurementsPanel(QWidget):
    """The list of measurements of the open case, with tools, delete and Slicer export."""

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("measurements_panel")
        self.window = window
        self.items: list[Measurement] = []
        self.tool: MeasureTool | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.tool_buttons: dict[str, QPushButton] = {}
        for kind, title in KIND_TITLES.items():
            button = QPushButton(title)
            button.setObjectName(f"measure_{kind}")
            button.setCheckable(True)
            button.toggled.connect(lambda on, k=kind: self.set_tool(k if on else None))
            row.addWidget(button)
            self.tool_buttons[kind] = button
        layout.addLayout(row)
        depth_row = QHBoxLayout()
        depth_row.addWidget(QLabel("ROI depth (slices)"))
        self.depth_box = QSpinBox()
        self.depth_box.setObjectName("measure_roi_depth")
        self.depth_box.setRange(1, 199)
        self.depth_box.setValue(1)
        self.depth_box.setToolTip("Slices a ROI drawn in a slice view spans along the view's "
                                  "normal, centred on the slice shown")
        depth_row.addWidget(self.depth_box)
        depth_row.addStretch(1)
        layout.addLayout(depth_row)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("measurements_table")
        self.table.setHorizontalHeaderLabels(["Name", "Value", "95 % interval"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(self._go_to)
        layout.addWidget(self.table, 1)
        self.details = QLabel()
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        self.table.currentCellChanged.connect(lambda r, *_: self._show_details(r))
        buttons = QHBoxLayout()
        for title, slot in (("Delete", self.delete_selected), ("Export…", self.choose_export),
                            ("Import…", self.choose_import)):
            b = QPushButton(title)
            b.setObjectName(f"measure_{title.strip('…').lower()}")
            b.clicked.connect(slot)
            buttons.addWidget(b)
        layout.addLayout(buttons)
        for view in window.slice_views.values():
            view.add_decoration(self.paint)
        window.case_loaded.connect(self.set_twin)

    # ------------------------------------------------------------------ model
    def set_twin(self, twin) -> None:
        try:
            self.items = [] if twin is None else load_measurements(twin)
        except Exception as exc:  # a damaged entry: say so, keep the case usable
            self.items = []
            self.window.report_error(exc)
        self._refresh(store=False)

    def add(self, measurement: Measurement) -> None:
        twin = self.window.twin
        if twin is None:
            return
        kind_count = sum(m.kind == measurement.kind for m in self.items) + 1
        measurement.name = measurement.name or f"{KIND_TITLES[measurement.kind]} {kind_count}"
        self.items.append(measure(measurement, twin.image))
        self._refresh()
        self.table.selectRow(len(self.items) - 1)

    def delete_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            del self.items[r]
        if rows:
            self._refresh()

    def _refresh(self, *, store: bool = True) -> None:
        twin = self.window.twin
        if store and twin is not None:
            store_measurements(twin, self.items)
            self.window.mark_dirty()
        self.table.setRowCount(len(self.items))
        for row, m in enumerate(self.items):
            main = m.readings[0] if m.readings else None
            cells = [m.name, m.summary(),
                     "" if main is None else f"{main.interval[0]:.1f} – {main.interval[1]:.1f}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
        for view in self.window.slice_views.values():
            view.update()
        self._update_3d()

    def _show_details(self, row: int) -> None:
        if not 0 <= row < len(self.items):
            self.details.setText("")
            return
        self.details.setText("\n".join(
            f"{r.title}: {r.value:.2f} {r.unit}  (95 %: {r.interval[0]:.2f} – "
            f"{r.interval[1]:.2f})" for r in self.items[row].readings))

    def _go_to(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.items):
            self.window.set_cursor(self.items[row].points_lps.mean(axis=0))

    def thick_box(self, corners_lps: np.ndarray) -> np.ndarray:
        """Two opposite corners (LPS mm) of the box spanned by two points, grown to at least
        one voxel spacing on every LPS axis (two clicks on a surface may share a plane)."""
        lo, hi = corners_lps.min(axis=0), corners_lps.max(axis=0)
        twin = self.window.twin
        least = np.full(3, 1.0) if twin is None else np.abs(
            twin.image.geometry.direction @ np.asarray(twin.image.geometry.spacing_mm))
        grow = np.maximum(least - (hi - lo), 0.0) / 2.0
        return np.array([lo - grow, hi + grow])

    def say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)

    # ------------------------------------------------------------------ tools
    def set_tool(self, kind: str | None) -> None:
        for k, button in self.tool_buttons.items():
            if k != kind and button.isChecked():
                button.blockSignals(True)
                button.setChecked(False)
                button.blockSignals(False)
        self.tool = None if kind is None else MeasureTool(self, kind)
        self.window.set_slice_tool(self.tool)

    # ------------------------------------------------------------------ drawing
    def paint(self, view: SliceView, painter: QPainter) -> None:
        """Draw the measurements that cross the view's slice (within half a slice)."""
        if view.mapping is None:
            return
        half = view.mapping.slice_spacing_mm / 2.0 + 1e-6
        painter.setPen(QPen(COLOUR, 2))
        for m in self.items:
            depth = view.mapping.depth_from_slice_mm(m.points_lps, view.slice_index)
            if m.kind == "roi":
                if depth.min() > half or depth.max() < -half:
                    continue
                a, b = (view.lps_to_screen(p) for p in m.points_lps)
                rect = QRectF(a, b).normalized()
                painter.drawRect(rect)
                anchor = rect.topRight()
            else:
                if np.any(np.abs(depth) > half):
                    continue
                pts = [view.lps_to_screen(p) for p in m.points_lps]
                for a, b in pairwise(pts):
                    painter.drawLine(a, b)
                anchor = pts[-1]
            painter.drawText(anchor + QPointF(4, -4), f"{m.name}: {m.summary()}")

    def _update_3d(self) -> None:
        """Rulers and angles as lines, ROIs as box outlines in the 3D view."""
        view3d = self.window.view3d
        if view3d._plotter is None:
            return
        import pyvista as pv

        plotter = view3d.plotter
        for name in [n for n in plotter.actors if str(n).startswith("measure:")]:
            plotter.remove_actor(name, render=False)
        for n, m in enumerate(self.items):
            if m.kind == "roi":
                lo, hi = m.points_lps.min(axis=0), m.points_lps.max(axis=0)
                bounds = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
                shape = pv.Box(bounds=bounds).extract_all_edges()
            else:
                shape = pv.lines_from_points(m.points_lps)
            plotter.add_mesh(shape, color=COLOUR.getRgbF()[:3], line_width=3,
                             name=f"measure:{n}", reset_camera=False, render=False)
        plotter.interactor.update()

    # ------------------------------------------------------------------ files
    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export measurements", "measurements.mrk.json",
                                              "3D Slicer markups (*.mrk.json)")
        if path:
            try:
                write_markups(self.items, path)
            except Exception as exc:
                self.window.report_error(exc)

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import measurements", "",
                                              "3D Slicer markups (*.mrk.json *.json)")
        if path:
            try:
                for m in read_markups(path):
                    self.add(m)
            except Exception as exc:
                self.window.report_error(exc)


def install_measurements(window: MainWindow) -> MeasurementsPanel:
    """Add the Measure dock (right, beside Segment) to ``window``."""
    panel = MeasurementsPanel(window)
    add_dock(window, "Measure", panel, name="dock_measure",
             area=Qt.DockWidgetArea.RightDockWidgetArea, beside=("dock_segment",))
    segment = window.findChild(QDockWidget, "dock_segment")
    if segment is not None:
        segment.raise_()
    return panel
