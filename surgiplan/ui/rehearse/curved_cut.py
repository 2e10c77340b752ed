"""A curved resection cut in the app (issue 15, item 7; as Slicer-Liver's deformable surface):
"Curved cut" turns the cutting plane into a grid of control points (CURVE_ROWS x CURVE_COLS
over the organ's extent in the plane) that the user drags along the plane's normal in any
slice view; an interpolating spline (the resection plug-in's ``curved_cut``) joins them.

* :func:`install_curve` adds the check box and "Flatten" to the resection panel and wraps its
  slice tool: a press within GRAB_RADIUS_PX of a drawn control point drags that point (its
  height changes by the drag's component along the normal, mm); elsewhere the plane tool
  moves or rotates the whole surface as before.
* :class:`CurveDecoration` draws the surface's section on every slice (from its triangle
  mesh) and the control points (filled when within half a control spacing of the slice).
* The panel's cut is the curved one while the box is ticked; its input mesh (LPS mm) is
  sampled every CURVE_MESH_SPACING_MM over the organ's box, so saved plans, Compare and the
  report score the same curved, bounded surface.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QVBoxLayout

from surgiplan.ui.rehearse.rehearsal_tools import (
    GRAB_RADIUS_PX,
    PLANE_RGB,
    mesh_section_lps,
    view_plane_lps,
)

if TYPE_CHECKING:
    from surgiplan.ui.views.slice_view import SliceView

CURVE_ROWS = CURVE_COLS = 3
CURVE_MESH_SPACING_MM = 4.0  # the saved surface's sampling (a curve needs more than a plane)
CURVE_DRAW_SPACING_MM = 3.0
CURVE_PAD_MM = 10.0  # the control grid reaches this far beyond the organ's projection


def curve_size_mm(panel: Any) -> tuple[float, float] | None:
    """Width along u and v (mm) of the control grid: the organ's box projected on the
    plane, padded (None without an organ or a plane)."""
    from surgiplan.ui.rehearse.resection_panel import organ_bounds_lps

    organ = panel.organ()
    if panel.twin is None or organ is None or not panel.plane.is_set():
        return None
    flat = panel.simulator.curved_cut(panel.plane.point_lps, panel.plane.normal_lps,
                                      (1.0, 1.0), np.zeros((2, 2)))
    u, v, _ = flat.frame
    cache = panel.curve_bounds
    if cache.get("key") != (id(panel.twin), organ):  # the organ's box: argwhere over its mask
        cache.update(key=(id(panel.twin), organ), box=organ_bounds_lps(panel.twin, organ))
    box = cache["box"]
    corners = np.array([[box[x, 0], box[y, 1], box[z, 2]] for x in (0, 1) for y in (0, 1)
                        for z in (0, 1)]) - panel.plane.point_lps
    half_u = float(np.abs(corners @ u).max()) + CURVE_PAD_MM
    half_v = float(np.abs(corners @ v).max()) + CURVE_PAD_MM
    return 2.0 * half_u, 2.0 * half_v


def curve_cut(panel: Any) -> Any:
    """The panel's curved cut (the plug-in's HeightFieldCut), or None when not curved."""
    heights = getattr(panel, "curve_heights", None)
    if heights is None or panel.ensure_simulator() is None or not panel.plane.is_set():
        return None
    size = curve_size_mm(panel)
    if size is None:
        return None
    return panel.simulator.curved_cut(panel.plane.point_lps, panel.plane.normal_lps, size,
                                      heights)


def set_curve_heights(panel: Any, heights: Any, *, dragging: bool = False,
                      run: bool = True) -> None:
    """Curve the cut with these control heights (mm along the normal; None: a plane)."""
    panel.curve_heights = None if heights is None else np.asarray(heights, float).copy()
    panel.curve_box.blockSignals(True)
    panel.curve_box.setChecked(heights is not None)
    panel.curve_box.blockSignals(False)
    panel.decoration.visible = panel.isVisible() and heights is None
    panel.curve_decoration.invalidate()
    if run and panel.plane.is_set():
        panel.plane.changed.emit(dragging)
        if not dragging:
            panel.plane.released.emit()
    for view in panel.window.slice_views.values():
        view.update()


def curve_heights_mm(panel: Any) -> list[list[float]] | None:
    heights = getattr(panel, "curve_heights", None)
    return None if heights is None else np.asarray(heights, float).tolist()


class CurveDecoration:
    """Draws the curved cut's section and its control points on a slice view."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel
        self._mesh: tuple[Any, Any] | None = None
        self._key: tuple | None = None

    def invalidate(self) -> None:
        self._mesh, self._key = None, None

    def mesh(self) -> tuple[np.ndarray, np.ndarray] | None:
        from surgiplan.ui.rehearse.resection_panel import organ_bounds_lps

        cut = curve_cut(self.panel)
        if cut is None:
            return None
        key = (tuple(self.panel.plane.point_lps), tuple(self.panel.plane.normal_lps),
               cut.heights_mm)
        if key != self._key:
            surface = cut.surface_mesh(organ_bounds_lps(self.panel.twin, self.panel.organ()),
                                       spacing_mm=CURVE_DRAW_SPACING_MM)
            self._mesh, self._key = (surface.vertices_lps, surface.faces), key
        return self._mesh

    def __call__(self, view: SliceView, p: QPainter) -> None:
        panel = self.panel
        if view.mapping is None or panel.curve_heights is None or not panel.isVisible():
            return
        mesh = self.mesh()
        if mesh is None:
            return
        origin, normal = view_plane_lps(view)
        a, b = mesh_section_lps(mesh[0], mesh[1], origin, normal)
        color = QColor(*PLANE_RGB)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(color, 2.0))
        for pa, pb in zip(a, b, strict=True):
            p.drawLine(view.lps_to_screen(pa), view.lps_to_screen(pb))
        cut = curve_cut(panel)
        points = cut.control_points_lps().reshape(-1, 3)
        near = 0.5 * min(cut.size_mm) / max(CURVE_ROWS - 1, 1)
        for point in points:
            on = abs(float((point - origin) @ normal)) <= near
            p.setPen(QPen(QColor(0, 0, 0), 1.0))
            p.setBrush(color if on else QColor(0, 0, 0, 0))
            p.drawRect(_square(view.lps_to_screen(point), 5.0 if on else 3.5))
        p.setPen(color)
        if len(a):
            top = min((view.lps_to_screen(q) for q in a), key=lambda q: q.y())
            p.drawText(top + QPointF(4, -4), "curved cut")
        p.restore()


def _square(centre: QPointF, half: float):
    from PySide6.QtCore import QRectF

    return QRectF(centre.x() - half, centre.y() - half, 2 * half, 2 * half)


class CurveTool:
    """Slice tool: drags a control point of the curved cut, else works as ``plane_tool``."""

    name = "cut-curve"

    def __init__(self, panel: Any, plane_tool: Any) -> None:
        self.panel, self.plane_tool = panel, plane_tool
        self.grabbed: tuple[int, int] | None = None
        self._start: tuple[np.ndarray, float] | None = None

    def control_at(self, view: SliceView, point_lps: np.ndarray) -> tuple[int, int] | None:
        cut = curve_cut(self.panel)
        if cut is None:
            return None
        at = view.lps_to_screen(point_lps)
        points = cut.control_points_lps()
        best, best_px = None, GRAB_RADIUS_PX
        for r in range(points.shape[0]):
            for c in range(points.shape[1]):
                q = view.lps_to_screen(points[r, c])
                px = math.hypot(q.x() - at.x(), q.y() - at.y())
                if px <= best_px:
                    best, best_px = (r, c), px
        return best

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self.grabbed = self.control_at(view, point_lps)
        if self.grabbed is None:
            self.plane_tool.press(view, point_lps, event)
            return
        self._start = (np.asarray(point_lps, float),
                       float(self.panel.curve_heights[self.grabbed]))

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.grabbed is None:
            self.plane_tool.drag(view, point_lps, event)
        else:
            self._move(point_lps, dragging=True)

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.grabbed is None:
            self.plane_tool.release(view, point_lps, event)
            return
        self._move(point_lps, dragging=False)
        self.grabbed = self._start = None

    def _move(self, point_lps: np.ndarray, *, dragging: bool) -> None:
        start, height = self._start
        shift = float((np.asarray(point_lps, float) - start) @ self.panel.plane.normal_lps)
        heights = self.panel.curve_heights.copy()
        heights[self.grabbed] = height + shift
        set_curve_heights(self.panel, heights, dragging=dragging)

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        if self.control_at(view, point_lps) is not None:
            view.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.plane_tool.hover(view, point_lps)

    def paint(self, view: SliceView, painter: QPainter) -> None:
        pass  # the CurveDecoration draws the surface in every view


def install_curve(panel: Any, layout: QVBoxLayout) -> None:
    """Add the curved-cut controls to the resection panel's inputs box (``layout``)."""
    panel.curve_heights, panel.curve_bounds = None, {}
    row = QHBoxLayout()
    panel.curve_box = QCheckBox("Curved cut (drag its control points)")
    panel.curve_box.setObjectName("resection_curved")
    panel.curve_box.setToolTip("Bend the cutting surface: drag the square control points "
                               "along the plane's normal in a slice view")
    flatten = QPushButton("Flatten")
    flatten.setObjectName("resection_flatten")
    panel.curve_box.toggled.connect(lambda on: set_curve_heights(
        panel, np.zeros((CURVE_ROWS, CURVE_COLS)) if on else None))
    flatten.clicked.connect(lambda: set_curve_heights(
        panel, None if panel.curve_heights is None else np.zeros_like(panel.curve_heights)))
    row.addWidget(panel.curve_box)
    row.addWidget(flatten)
    layout.addLayout(row)
    panel.curve_decoration = CurveDecoration(panel)
    for view in panel.window.slice_views.values():
        view.add_decoration(panel.curve_decoration)
    panel.tool = CurveTool(panel, panel.tool)
