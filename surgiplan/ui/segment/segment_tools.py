"""Segment tools for the slice views: paint/erase brush, region-grow seeds, scissors, island
click and a restriction box. Each tool receives LPS points (mm) from the slice views (see
:mod:`surgiplan.ui.views.slice_tools`) and calls its *host* (the Segment panel), which owns the
:class:`~surgiplan.segmentation.editor.SegmentEditor` and the worker jobs.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QPolygonF

from surgiplan.ui.views.slice_tools import SliceToolBase

if TYPE_CHECKING:
    from surgiplan.segmentation.editor import SegmentEditor
    from surgiplan.ui.views.slice_view import SliceView


class ToolHost(Protocol):
    """What the tools need from the Segment panel."""

    @property
    def editor(self) -> SegmentEditor | None: ...

    def current_name(self) -> str | None: ...

    def brush_radius_mm(self) -> float: ...

    def brush_is_sphere(self) -> bool: ...

    def add_seed(self, point_lps: np.ndarray) -> None: ...

    def scissors_cut(self, polygon_lps: np.ndarray, normal_lps: np.ndarray, *,
                     slice_spacing_mm: float) -> None: ...

    def keep_island_at(self, point_lps: np.ndarray) -> None: ...

    def set_box(self, box_zyx: tuple[slice, slice, slice]) -> None: ...

    def edit_finished(self) -> None: ...


def _same_view(a: SliceView | None, b: SliceView) -> bool:
    return a is b


def mask_slice_image(mask: np.ndarray, view: SliceView, rgba: tuple[int, int, int, int]) -> QImage:
    """A transparent QImage of the view's slice with ``rgba`` where the full-grid ``mask`` is."""
    plane = np.ascontiguousarray(view.mapping.extract(mask, view.slice_index))
    rows, cols = plane.shape
    out = np.zeros((rows, cols, 4), np.uint8)
    out[plane] = rgba
    return QImage(out.data, cols, rows, 4 * cols, QImage.Format.Format_RGBA8888).copy()


class BrushTool(SliceToolBase):
    """Paint (or erase) a 2D disc in the slice plane or a 3D sphere; radius in mm.

    One drag is one undo step; dabs are spaced at most half a radius apart along the drag.
    """

    def __init__(self, host: ToolHost, *, erase: bool = False) -> None:
        self.host = host
        self.erase = erase
        self.name = "erase" if erase else "paint"
        self._stroke: ExitStack | None = None
        self._last: np.ndarray | None = None
        self._hover: tuple[SliceView, np.ndarray] | None = None

    def _dab(self, view: SliceView, point_lps: np.ndarray) -> None:
        editor, name = self.host.editor, self.host.current_name()
        if editor is None or name is None:
            return
        radius = self.host.brush_radius_mm()
        axis = None if self.host.brush_is_sphere() else view.mapping.slice_axis
        points = [point_lps]
        if self._last is not None:
            distance = float(np.linalg.norm(point_lps - self._last))
            n = max(1, math.ceil(distance / max(radius / 2.0, 1e-3)))
            points = [self._last + (point_lps - self._last) * (t / n) for t in range(1, n + 1)]
        for p in points:
            editor.paint(name, p, radius, axis=axis, erase=self.erase)
        self._last = np.asarray(point_lps, float)

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        editor = self.host.editor
        if editor is None or self.host.current_name() is None:
            return
        self._stroke = ExitStack()
        self._stroke.enter_context(editor.stroke(self.name))
        self._last = None
        self._dab(view, point_lps)

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self._hover = (view, point_lps)
        if self._stroke is not None:
            self._dab(view, point_lps)
        view.update()

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self._stroke is not None:
            self._stroke.close()  # one undo step for the whole drag
            self.host.edit_finished()
        self._stroke, self._last = None, None

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        self._hover = (view, point_lps)
        view.update()

    def paint(self, view: SliceView, painter: QPainter) -> None:
        """The brush outline (true size in mm) under the mouse."""
        if self._hover is None or not _same_view(self._hover[0], view):
            return
        centre = view.lps_to_screen(self._hover[1])
        r = self.host.brush_radius_mm() * view.screen_scale()
        color = QColor(255, 80, 80) if self.erase else QColor(80, 255, 120)
        painter.setPen(QPen(color, 1.5, Qt.PenStyle.DashLine if self.erase
                            else Qt.PenStyle.SolidLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(centre, r, r)


class SeedTool(SliceToolBase):
    """Region-grow seed clicks (Ctrl+click: a background seed, what must stay out); the host
    previews the growth (in a worker) and draws it."""

    name = "grow"

    def __init__(self, host: ToolHost) -> None:
        self.host = host
        self.seeds: list[np.ndarray] = []
        self.background: list[np.ndarray] = []
        self.preview_mask: np.ndarray | None = None  # full grid, set by the host

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        background = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.host.add_seed(np.asarray(point_lps, float), background=background)




    def paint(self, view: SliceView, painter: QPainter) -> None:
        """The preview (translucent cyan) and the seeds of this slice (crosses)."""
        if self.preview_mask is not None:
            painter.drawImage(view.image_rect(),
                              mask_slice_image(self.preview_mask, view, (0, 230, 255, 110)))
        for seeds, colour in ((self.seeds, QColor(0, 230, 255)),
                              (self.background, QColor(255, 140, 0))):
            painter.setPen(QPen(colour, 2))
            for seed in seeds:
                if view.mapping.slice_index_of(seed) != view.slice_index:
                    continue
                c = view.lps_to_screen(seed)
                painter.drawLine(c + QPointF(-5, 0), c + QPointF(5, 0))
                painter.drawLine(c + QPointF(0, -5), c + QPointF(0, 5))


class IslandTool(SliceToolBase):
    """Click an island of the current structure to keep only that one."""

    name = "island"

    def __init__(self, host: ToolHost) -> None:
        self.host = host

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self.host.keep_island_at(np.asarray(point_lps, float))






class ScissorsTool(QObject, SliceToolBase):
    """Click polygon vertices in one view; double-click or Enter cuts, Escape drops the outline.

    The polygon is extruded along the view normal through the whole volume (or through the
    current slice only, as the host decides) and removes the inside or the outside.
    """

    name = "scissors"

    def __init__(self, host: ToolHost) -> None:
        super().__init__()
        self.host = host
        self.points: list[np.ndarray] = []
        self.view: SliceView | None = None
        self._hover: np.ndarray | None = None
        self._filtered: list[SliceView] = []

    def attach(self, views: list[SliceView]) -> None:
        """Watch double-clicks and Enter/Escape in ``views`` while the tool is active."""
        for v in views:
            v.installEventFilter(self)
        self._filtered = list(views)

    def detach(self) -> None:
        for v in self._filtered:
            v.removeEventFilter(self)
        self._filtered = []
        self.clear()

    def clear(self) -> None:
        view, self.view, self.points, self._hover = self.view, None, [], None
        if view is not None:
            view.update()

    def finish(self) -> bool:
        """Cut with the polygon drawn so far (at least 3 points); True when a cut was asked."""
        view, points = self.view, list(self.points)
        self.clear()
        if view is None or len(points) < 3:
            return False
        normal = view.mapping.screen_vectors_lps()[2]
        self.host.scissors_cut(np.array(points), normal,
                               slice_spacing_mm=view.mapping.slice_spacing_mm)
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseButtonDblClick and watched is self.view:
            self.finish()
            return True  # not a maximise while cutting
        if event.type() == QEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                return self.finish() or True
            if event.key() == Qt.Key.Key_Escape:
                self.clear()
                return True
        return False

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if view is not self.view:
            self.clear()
            self.view = view
        self.points.append(np.asarray(point_lps, float))
        view.update()



    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        if view is self.view and self.points:
            self._hover = np.asarray(point_lps, float)
            view.update()

    def paint(self, view: SliceView, painter: QPainter) -> None:
        if view is not self.view or not self.points:
            return
        pts = [view.lps_to_screen(p) for p in self.points]
        if self._hover is not None:
            pts.append(view.lps_to_screen(self._hover))
        painter.setPen(QPen(QColor(255, 170, 0), 1.5))
        painter.setBrush(QColor(255, 170, 0, 40))
        painter.drawPolygon(QPolygonF(pts))
        for p in pts[: len(self.points)]:
            painter.drawEllipse(p, 2.5, 2.5)


class BoxTool(SliceToolBase):
    """Drag a rectangle in a slice view: limits the box on that view's two in-plane axes.

    A drag in an orthogonal view then limits the third axis. The box restricts threshold.
    """

    name = "box"

    def __init__(self, host: ToolHost) -> None:
        self.host = host
        self.bounds_ijk: np.ndarray | None = None  # (3, 2) inclusive index bounds per axis
        self._start: np.ndarray | None = None
        self._drag: tuple[SliceView, np.ndarray, np.ndarray] | None = None

    def reset(self, size_ijk: tuple[int, int, int] | None) -> None:
        self.bounds_ijk = None if size_ijk is None else np.array(
            [[0, n - 1] for n in size_ijk], dtype=int)

    def box_zyx(self) -> tuple[slice, slice, slice] | None:
        if self.bounds_ijk is None:
            return None
        b = self.bounds_ijk
        return tuple(slice(int(b[a, 0]), int(b[a, 1]) + 1) for a in (2, 1, 0))  # type: ignore

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self.bounds_ijk is None:
            self.reset(view.twin.geometry.size)
        self._start = np.asarray(point_lps, float)
        self._drag = (view, self._start, self._start)

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self._start is not None:
            self._drag = (view, self._start, np.asarray(point_lps, float))
            view.update()

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        if self._start is None:
            return
        geometry = view.twin.geometry
        ijk = np.rint(geometry.lps_to_index(np.stack([self._start, point_lps]))).astype(int)
        ijk = np.clip(ijk, 0, np.asarray(geometry.size) - 1)
        for axis in (view.mapping.col_axis, view.mapping.row_axis):
            lo, hi = sorted(ijk[:, axis])
            self.bounds_ijk[axis] = (lo, hi)
        self._start, self._drag = None, None
        box = self.box_zyx()
        if box is not None:
            self.host.set_box(box)
        view.update()


    def paint(self, view: SliceView, painter: QPainter) -> None:
        draw_box(view, painter, self.bounds_ijk, self._drag)


def draw_box(view: SliceView, painter: QPainter, bounds_ijk: np.ndarray | None,
             drag: tuple[SliceView, np.ndarray, np.ndarray] | None = None) -> None:
    """The restriction box's in-plane rectangle (dashed) and a rectangle being dragged."""
    painter.setBrush(Qt.BrushStyle.NoBrush)
    if bounds_ijk is not None and view.mapping is not None:
        lo, hi = bounds_ijk[:, 0] - 0.5, bounds_ijk[:, 1] + 0.5
        c0, r0, _ = view.mapping.index_to_pixel(lo)
        c1, r1, _ = view.mapping.index_to_pixel(hi)
        a = view.pixel_to_screen(min(c0, c1), min(r0, r1))
        b = view.pixel_to_screen(max(c0, c1), max(r0, r1))
        painter.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
        painter.drawRect(QRectF(a, b))
    if drag is not None and drag[0] is view:
        a, b = view.lps_to_screen(drag[1]), view.lps_to_screen(drag[2])
        painter.setPen(QPen(QColor(255, 255, 0), 1))
        painter.drawRect(QRectF(a, b).normalized())
