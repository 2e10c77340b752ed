"""Placing and dragging a trajectory's entry and target in the slice views, and drawing it.

* :class:`TrajectoryPlan`: the entry and target (LPS mm), tool diameter and traffic-light
  level of the trajectory being planned; emits ``changed(dragging)`` on every move.
* :class:`PlacementTool`: a slice tool (see :mod:`surgiplan.ui.views.slice_tools`). A press near the
  entry or target marker grabs it; elsewhere it places the point of the tool's ``mode``
  (``"entry"`` or ``"target"``) and grabs it. Dragging moves the grabbed point within the
  view's slice plane; releasing ends the drag (the panel then runs the full Monte Carlo).
* :class:`PathDecoration`: draws the path in every slice view: its projection on the slice
  (dashed), the part within half a slice of it (solid), the point where it crosses the slice
  (a circle of the tool's diameter) and the entry/target markers (filled when on the slice).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen

from surgiplan.model.frames import format_lps
from surgiplan.simulation.result import Level

if TYPE_CHECKING:
    from surgiplan.ui.views.slice_view import SliceView

GRAB_RADIUS_PX = 12.0
LEVEL_RGB: dict[Level | None, tuple[int, int, int]] = {
    Level.SAFE: (60, 205, 90),
    Level.CAUTION: (250, 190, 40),
    Level.BREACH: (235, 50, 50),
    None: (80, 170, 255),  # not scored yet
}
POINTS = ("entry", "target")
__all__ = ["format_lps"]  # re-exported: the panels format points from here


GRADE_LETTERS = "ABCDE"  # the Gertzbein-Robbins grade metric is 0..4 for A..E


def grade_letter(value: float | None) -> str:
    """A Gertzbein-Robbins grade number (0..4, may be fractional in an interval) as A..E."""
    if value is None or not np.isfinite(value):
        return "—"
    return GRADE_LETTERS[int(np.clip(round(value), 0, len(GRADE_LETTERS) - 1))]


def level_color(level: Level | str | None, alpha: int = 255) -> QColor:
    r, g, b = LEVEL_RGB[None if level is None else Level(level)]
    return QColor(r, g, b, alpha)


class TrajectoryPlan(QObject):
    """The trajectory being planned. Points are LPS mm (``None`` until placed)."""

    changed = Signal(bool)  # dragging: True while a point is being dragged
    released = Signal()  # a drag ended (points final for now)
    level_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entry_lps: np.ndarray | None = None
        self.target_lps: np.ndarray | None = None
        self.diameter_mm = 0.8
        self.level: Level | None = None

    def point(self, which: str) -> np.ndarray | None:
        return self.entry_lps if which == "entry" else self.target_lps

    def complete(self) -> bool:
        """Both points placed and distinct."""
        return (self.entry_lps is not None and self.target_lps is not None
                and float(np.linalg.norm(self.target_lps - self.entry_lps)) > 1e-3)

    def set_point(self, which: str, point_lps, *, dragging: bool = False) -> None:
        if which not in POINTS:
            raise ValueError(f"which must be one of {POINTS}, got {which!r}")
        value = None if point_lps is None else np.asarray(point_lps, float).reshape(3).copy()
        setattr(self, f"{which}_lps", value)
        self.changed.emit(dragging)

    def set_points(self, entry_lps, target_lps) -> None:
        """Set both points at once (e.g. a candidate from the search); one ``changed``."""
        self.entry_lps = np.asarray(entry_lps, float).reshape(3).copy()
        self.target_lps = np.asarray(target_lps, float).reshape(3).copy()
        self.changed.emit(False)

    def set_level(self, level: Level | None) -> None:
        if level != self.level:
            self.level = level
            self.level_changed.emit()

    def length_mm(self) -> float:
        return float(np.linalg.norm(self.target_lps - self.entry_lps)) if self.complete() \
            else 0.0


class PlacementTool:
    """Slice tool placing/dragging the plan's entry and target (see the module docstring)."""

    name = "trajectory"

    def __init__(self, plan: TrajectoryPlan, mode: str = "target") -> None:
        self.plan = plan
        self.mode = mode
        self.grabbed: str | None = None

    def nearest_marker(self, view: SliceView, point_lps: np.ndarray) -> str | None:
        """The marker (entry/target) drawn within GRAB_RADIUS_PX of a point of the view."""
        at = view.lps_to_screen(point_lps)
        best, best_px = None, GRAB_RADIUS_PX
        for which in POINTS:
            p = self.plan.point(which)
            if p is None or not _on_slice(view, p, tolerance_slices=2.0):
                continue
            s = view.lps_to_screen(p)
            px = math.hypot(s.x() - at.x(), s.y() - at.y())
            if px <= best_px:
                best, best_px = which, px
        return best

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self.grabbed = self.nearest_marker(view, point_lps) or self.mode
        self.plan.set_point(self.grabbed, point_lps, dragging=True)

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.grabbed is not None:
            self.plan.set_point(self.grabbed, point_lps, dragging=True)

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.grabbed is not None:
            self.plan.set_point(self.grabbed, point_lps, dragging=False)
            self.grabbed = None
            self.plan.released.emit()

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        near = self.nearest_marker(view, point_lps) is not None
        view.setCursor(Qt.CursorShape.OpenHandCursor if near else Qt.CursorShape.CrossCursor)

    def paint(self, view: SliceView, painter: QPainter) -> None:
        pass  # the PathDecoration draws the plan in every view, tool or not


def _slice_offset(view: SliceView, point_lps: np.ndarray) -> float:
    """Distance of a point from the view's slice, in slices (signed, along +index)."""
    _, _, k = view.mapping.lps_to_pixel(point_lps)
    return k - view.slice_index


def _on_slice(view: SliceView, point_lps: np.ndarray, *, tolerance_slices: float = 0.5) -> bool:
    return abs(_slice_offset(view, point_lps)) <= tolerance_slices


def slice_crossing(view: SliceView, entry: np.ndarray, target: np.ndarray
                   ) -> tuple[float, float] | None:
    """Path parameters ``(t0, t1)`` (0 = entry, 1 = target) of the part within half a slice
    of the view's slice, or None when the path does not come that close."""
    k0, k1 = _slice_offset(view, entry), _slice_offset(view, target)
    if abs(k1 - k0) < 1e-9:
        return (0.0, 1.0) if abs(k0) <= 0.5 else None
    ta, tb = sorted(((-0.5 - k0) / (k1 - k0), (0.5 - k0) / (k1 - k0)))
    t0, t1 = max(ta, 0.0), min(tb, 1.0)
    return (t0, t1) if t0 <= t1 else None


class PathDecoration:
    """Draws a :class:`TrajectoryPlan` on a slice view (register with ``add_decoration``)."""

    def __init__(self, plan: TrajectoryPlan) -> None:
        self.plan = plan

    def __call__(self, view: SliceView, p: QPainter) -> None:
        plan = self.plan
        if view.mapping is None or (plan.entry_lps is None and plan.target_lps is None):
            return
        color = level_color(plan.level)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if plan.complete():
            self._path(view, p, color)
        for which, letter in (("entry", "E"), ("target", "T")):
            point = plan.point(which)
            if point is not None:
                self._marker(view, p, point, letter, color)
        p.restore()

    def _path(self, view: SliceView, p: QPainter, color: QColor) -> None:
        entry, target = self.plan.entry_lps, self.plan.target_lps
        a, b = view.lps_to_screen(entry), view.lps_to_screen(target)
        faint = QColor(color)
        faint.setAlpha(150)
        pen = QPen(faint, 1.5, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawLine(a, b)
        part = slice_crossing(view, entry, target)
        if part is None:
            return
        t0, t1 = part
        p.setPen(QPen(color, 3.0))
        p.drawLine(a + (b - a) * t0, a + (b - a) * t1)
        tc = (t0 + t1) / 2.0
        centre = a + (b - a) * tc
        radius_px = max(4.0, self.plan.diameter_mm / 2.0 * view.screen_scale())
        p.setPen(QPen(QColor(255, 255, 255), 1.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(centre, radius_px, radius_px)

    def _marker(self, view: SliceView, p: QPainter, point: np.ndarray, letter: str,
                color: QColor) -> None:
        at = view.lps_to_screen(point)
        on = _on_slice(view, point)
        p.setPen(QPen(QColor(0, 0, 0), 1.0))
        if on:
            p.setBrush(color)
            p.drawEllipse(at, 6.0, 6.0)
        else:
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(color, 1.5))
            p.drawEllipse(at, 4.0, 4.0)
        font = QFont(view.font())
        font.setBold(True)
        p.setFont(font)
        p.setPen(QColor(0, 0, 0))
        p.drawText(at + QPointF(9, -7), letter)
        p.setPen(QColor(255, 255, 255) if on else color)
        p.drawText(at + QPointF(8, -8), letter)
