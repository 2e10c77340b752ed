"""Slice-view tools of the rehearsal panels (implant, ablation, resection).

* Screw head/tip and probe entry/tip are two-point lines: the panels reuse
  :class:`~surgiplan.ui.plan.trajectory_tools.TrajectoryPlan` (``entry`` = screw head or probe
  entry, ``target`` = screw tip or probe tip), its :class:`PlacementTool` for fine adjustment
  and its :class:`PathDecoration` to draw them.
* :class:`CutPlane` is the resection's cutting plane (LPS mm; the removed side is the one its
  unit normal points to); :class:`PlaneTool` moves it in any slice view: a press near the
  knob at the end of the normal arrow rotates the normal within the view (its component
  along the view normal is kept), elsewhere the plane jumps through the mouse and follows it.
  :class:`PlaneDecoration` draws the plane's trace on every slice and the normal arrow.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen

if TYPE_CHECKING:
    from surgiplan.ui.views.slice_view import SliceView

KNOB_MM = 25.0  # length of the drawn normal arrow (at least KNOB_PX on screen)
KNOB_PX = 45.0
GRAB_RADIUS_PX = 12.0
PLANE_RGB = (80, 200, 255)
ON_PLANE_MM = 1e-6  # a mesh vertex this close to a slice plane is taken as on its + side


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise ValueError("a plane normal must not be zero")
    return np.asarray(v, float) / n


class CutPlane(QObject):
    """A cutting plane: ``point_lps`` on it, unit ``normal_lps`` towards the removed side."""

    changed = Signal(bool)  # dragging
    released = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.point_lps: np.ndarray | None = None
        self.normal_lps = np.array([-1.0, 0.0, 0.0])

    def is_set(self) -> bool:
        return self.point_lps is not None

    def set_plane(self, point_lps, normal_lps, *, dragging: bool = False) -> None:
        """Move the plane (``ValueError`` for a zero normal); emits ``changed(dragging)``."""
        self.normal_lps = _unit(np.asarray(normal_lps, float).reshape(3))
        self.point_lps = np.asarray(point_lps, float).reshape(3).copy()
        self.changed.emit(dragging)

    def flip(self) -> None:
        """Remove the other side."""
        if self.point_lps is not None:
            self.set_plane(self.point_lps, -self.normal_lps)
            self.released.emit()

    def side_mm(self, points_lps: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of points to the plane, positive on the removed side."""
        return (np.asarray(points_lps, float) - self.point_lps) @ self.normal_lps


def slice_frame(view: SliceView) -> tuple[np.ndarray, np.ndarray]:
    """A point on the view's current slice and the slice's unit normal (LPS)."""
    on_slice = view.mapping.pixel_to_lps(0.0, 0.0, float(view.slice_index))
    return on_slice, view.mapping.screen_vectors_lps()[2]


def plane_trace(view: SliceView, plane: CutPlane) -> tuple[np.ndarray, np.ndarray] | None:
    """A point and unit direction (LPS) of the plane's intersection with the view's slice,
    or None when they are parallel."""
    s0, w = slice_frame(view)
    n = plane.normal_lps
    d = np.cross(n, w)
    if np.linalg.norm(d) < 1e-6:
        return None
    d = d / np.linalg.norm(d)
    a = np.vstack([w, n, d])
    x0 = np.linalg.solve(a, np.array([s0 @ w, plane.point_lps @ n, plane.point_lps @ d]))
    return x0, d


def on_slice(view: SliceView, point_lps: np.ndarray) -> np.ndarray:
    """``point_lps`` projected onto the view's current slice."""
    s0, w = slice_frame(view)
    return point_lps - ((point_lps - s0) @ w) * w


def knob_lps(view: SliceView, plane: CutPlane) -> tuple[np.ndarray, np.ndarray] | None:
    """Base (on the trace) and tip of the drawn normal arrow on this slice, or None."""
    trace = plane_trace(view, plane)
    if trace is None:
        return None
    x0, d = trace
    base = x0 + ((on_slice(view, plane.point_lps) - x0) @ d) * d
    _, w = slice_frame(view)
    inplane = plane.normal_lps - (plane.normal_lps @ w) * w
    if np.linalg.norm(inplane) < 1e-6:
        return None
    length_mm = max(KNOB_MM, KNOB_PX / max(view.screen_scale(), 1e-6))
    return base, base + length_mm * inplane / np.linalg.norm(inplane)


class PlaneTool:
    """Slice tool moving/rotating a :class:`CutPlane` (see the module docstring)."""

    name = "cut-plane"

    def __init__(self, plane: CutPlane) -> None:
        self.plane = plane
        self.mode: str | None = None

    def _near_knob(self, view: SliceView, point_lps: np.ndarray) -> bool:
        knob = knob_lps(view, self.plane) if self.plane.is_set() else None
        if knob is None:
            return False
        a, b = view.lps_to_screen(point_lps), view.lps_to_screen(knob[1])
        return math.hypot(a.x() - b.x(), a.y() - b.y()) <= GRAB_RADIUS_PX

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self.mode = "rotate" if self._near_knob(view, point_lps) else "move"
        self._apply(view, point_lps, dragging=True)

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.mode is not None:
            self._apply(view, point_lps, dragging=True)

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.mode is not None:
            self._apply(view, point_lps, dragging=False)
            self.mode = None
            self.plane.released.emit()

    def _apply(self, view: SliceView, point_lps: np.ndarray, *, dragging: bool) -> None:
        plane = self.plane
        if self.mode == "move" or not plane.is_set():
            plane.set_plane(point_lps, plane.normal_lps, dragging=dragging)
            return
        knob = knob_lps(view, plane)
        if knob is None:
            return
        _, w = slice_frame(view)
        towards = point_lps - knob[0]
        towards -= (towards @ w) * w
        if np.linalg.norm(towards) < 1e-3:
            return
        along_w = float(plane.normal_lps @ w)
        normal = math.sqrt(max(0.0, 1.0 - along_w ** 2)) * _unit(towards) + along_w * w
        plane.set_plane(plane.point_lps, normal, dragging=dragging)

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        near = self._near_knob(view, point_lps)
        view.setCursor(Qt.CursorShape.OpenHandCursor if near else Qt.CursorShape.CrossCursor)

    def paint(self, view: SliceView, painter: QPainter) -> None:
        pass  # the PlaneDecoration draws the plane in every view


def clip_line_to_box(x0: np.ndarray, d: np.ndarray, box_lps: np.ndarray
                     ) -> tuple[float, float] | None:
    """The parameter range ``(t0, t1)`` where the line ``x0 + t d`` (LPS mm) lies inside the
    box ((2, 3): min, max corners), or None when it misses the box (slab method)."""
    t0, t1 = -math.inf, math.inf
    for axis in range(3):
        lo, hi = float(box_lps[0][axis]), float(box_lps[1][axis])
        if abs(d[axis]) < 1e-12:
            if not lo <= x0[axis] <= hi:
                return None
            continue
        a, b = (lo - x0[axis]) / d[axis], (hi - x0[axis]) / d[axis]
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    return (t0, t1) if t1 > t0 else None


class PlaneDecoration:
    """Draws a :class:`CutPlane` on a slice view (register with ``add_decoration``): its trace
    only within ``bounds_lps`` (the organ's box, where the bounded cut acts; the whole view
    when None) and the normal arrow with its knob."""

    def __init__(self, plane: CutPlane) -> None:
        self.plane = plane
        self.visible = True
        self.bounds_lps: np.ndarray | None = None

    def segment_lps(self, view: SliceView) -> tuple[np.ndarray, np.ndarray] | None:
        """The drawn piece of the plane's trace on the view's slice (two LPS points), or
        None when the plane does not cross the slice within the bounds."""
        trace = plane_trace(view, self.plane)
        if trace is None:
            return None
        x0, d = trace
        if self.bounds_lps is None:
            reach = 2.0 * float(np.max(view.mapping.geometry.size) *
                                np.max(view.mapping.geometry.spacing_mm))
            return x0 - reach * d, x0 + reach * d
        span = clip_line_to_box(x0, d, np.asarray(self.bounds_lps, float))
        return None if span is None else (x0 + span[0] * d, x0 + span[1] * d)

    def __call__(self, view: SliceView, p: QPainter) -> None:
        if not self.visible or view.mapping is None or not self.plane.is_set():
            return
        segment = self.segment_lps(view)
        if segment is None:
            return
        color = QColor(*PLANE_RGB)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(color, 2.0))
        p.drawLine(view.lps_to_screen(segment[0]), view.lps_to_screen(segment[1]))
        knob = knob_lps(view, self.plane)
        if knob is not None:
            a, b = view.lps_to_screen(knob[0]), view.lps_to_screen(knob[1])
            p.setPen(QPen(color, 1.5, Qt.PenStyle.DashLine))
            p.drawLine(a, b)
            p.setPen(QPen(QColor(0, 0, 0), 1.0))
            p.setBrush(color)
            p.drawEllipse(b, 6.0, 6.0)
            p.setPen(color)
            p.drawText(b + QPointF(9, -7), "removed side")
        p.restore()


def mesh_section_lps(vertices_lps: np.ndarray, faces: np.ndarray, origin_lps: np.ndarray,
                     normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments ``(a, b)`` (each ``(n, 3)``, LPS mm) where a triangle mesh crosses a plane."""
    v = np.asarray(vertices_lps, float)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    d = (v - np.asarray(origin_lps, float)) @ np.asarray(normal, float)
    # vertices on the plane count as on its positive side: a plane through a ring of vertices
    # (a zone whose axis lies in the slice, as when both ends are clicked in one view) still
    # crosses the triangles on its negative side instead of none of them
    d = np.where(np.abs(d) < ON_PLANE_MM, ON_PLANE_MM, d)
    tri = d[f]
    crossing = (tri.min(axis=1) < 0) & (tri.max(axis=1) > 0)
    f, tri = f[crossing], tri[crossing]
    points, hits = [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        di, dj = tri[:, i], tri[:, j]
        hit = (di < 0) != (dj < 0)
        t = np.where(hit, di / np.where(hit, di - dj, 1.0), 0.0)
        points.append(v[f[:, i]] + t[:, None] * (v[f[:, j]] - v[f[:, i]]))
        hits.append(hit)
    points, hits = np.stack(points, axis=1), np.stack(hits, axis=1)
    two = hits.sum(axis=1) == 2
    order = np.argsort(~hits[two], axis=1, kind="stable")[:, :2]
    rows = np.arange(int(two.sum()))
    return points[two][rows, order[:, 0]], points[two][rows, order[:, 1]]


def view_plane_lps(view: SliceView) -> tuple[np.ndarray, np.ndarray]:
    """(a point, the unit normal) of the plane a slice view shows, LPS mm."""
    k = view.slice_index
    o = view.mapping.pixel_to_lps(0.0, 0.0, k)
    u = view.mapping.pixel_to_lps(1.0, 0.0, k) - o
    w = view.mapping.pixel_to_lps(0.0, 1.0, k) - o
    n = np.cross(u, w)
    return o, n / np.linalg.norm(n)


class MeshOutlineDecoration:
    """Draws where display meshes (ablation zone, resection cut; LPS mm) cross a slice view's
    plane, as outlines in each mesh's colour with its label (register with
    ``add_decoration``)."""

    def __init__(self) -> None:
        self.meshes: list[tuple[np.ndarray, np.ndarray, QColor, str]] = []

    def set_meshes(self, meshes) -> None:
        """``meshes``: DisplayMesh objects (vertices_lps, faces, color, label)."""
        self.meshes = []
        for m in meshes:
            rgb = getattr(m, "color", None) or (1.0, 0.55, 0.1)
            color = QColor.fromRgbF(*[float(c) for c in rgb[:3]])
            self.meshes.append((np.asarray(m.vertices_lps, float),
                                np.asarray(m.faces, np.int64), color,
                                str(getattr(m, "label", "") or "")))

    def __call__(self, view: SliceView, p: QPainter) -> None:
        if not self.meshes or view.mapping is None:
            return
        origin, normal = view_plane_lps(view)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for vertices, faces, color, name in self.meshes:
            a, b = mesh_section_lps(vertices, faces, origin, normal)
            if not len(a):
                continue
            p.setPen(QPen(color, 2.0))
            for pa, pb in zip(a, b, strict=True):
                p.drawLine(view.lps_to_screen(pa), view.lps_to_screen(pb))
            if name:
                top = min((view.lps_to_screen(q) for q in a), key=lambda q: q.y())
                p.drawText(top + QPointF(4, -4), name.replace("_", " "))
        p.restore()

