"""A slice view: one patient plane of the twin's image with structure overlays.

Painted with QPainter from a numpy-built QImage: true aspect (pixel spacing), radiological
orientation (see :mod:`surgiplan.ui.views.slice_planes`), orientation letters on every edge, slice
position in mm, the value under the cursor, a scale bar and a linked crosshair.

A repaint with the same slice image costs a blit, not a rescale: the black background and the
slice scaled to the screen (the structure overlays are blended into the slice image) are kept
as a view-sized *base* image per (slice image, screen rectangle, view size, device pixel ratio,
smoothing); the crosshair, decorations (moving plan items), texts and scale bar are drawn on it
at every paint. The pixels are those of painting the slice directly (``cache_base = False``).

Scrolling follows the patient, not the file: wheel up, Up and PageUp move superior (axial),
anterior (coronal) or left (sagittal) on every acquisition. The window is bounded to the data
range. Header and corner texts are laid out so they never overlap (:meth:`SliceView.label_rects`).

Mouse: wheel = slice, left-drag = window/level, right-drag = zoom, middle-drag = pan,
Shift+move = crosshair, double-click = maximise. Keys: arrows / PageUp / PageDown = slice,
``r`` = reset, ``1``..``6`` = W/L presets, ``o`` = outline overlays, ``h`` = help overlay.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from surgiplan.model.frames import format_lps
from surgiplan.twin import Twin
from surgiplan.ui.views.fusion import FusionLayer, fuse_grey
from surgiplan.ui.views.overlay import LayerLookup, blend_labels, layer_lookups
from surgiplan.ui.views.slice_planes import Plane, PlaneMapping, plane_mapping
from surgiplan.ui.views.slice_tools import Decoration, SliceTool
from surgiplan.ui.views.windowing import (
    bounded_window,
    data_range,
    default_window,
    presets_for,
    to_grey,
)
from surgiplan.ui.widgets import pyside_guard  # noqa: F401  (PySide6 6.12 emit refcount work-around)

HELP_TEXT = """Mouse and keys (slice views)
  Wheel up, Up arrow    toward superior (axial), anterior (coronal), left (sagittal)
  PageUp/PageDown       10 slices
  Left-drag             window (left/right) and level (up/down)
  Right-drag            zoom          Middle-drag   pan
  Shift + move          move the linked crosshair
  Double-click          maximise this view / back
  1..6                  W/L presets (CT: brain, soft tissue, abdomen, liver, lung, bone)
  0                     default window (file or histogram)
  r  reset view     o  outline overlays     h  this help
3D view: left-drag rotate; click a surface or slice plane = move the crosshair there
  (and place the active tool's point: plan entry/target, ruler/angle/ROI corners)
Radiological convention: patient's right on screen left (axial, coronal);
axial seen from the feet with anterior up; sagittal with anterior on the left."""

_PLANE_COLORS = {
    Plane.AXIAL: QColor(230, 80, 80),
    Plane.CORONAL: QColor(80, 200, 80),
    Plane.SAGITTAL: QColor(230, 200, 60),
}


def nice_length_mm(target_mm: float) -> float:
    """The 1-2-5 series length nearest below ``target_mm`` (for scale bars)."""
    if target_mm <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(target_mm))
    return max(m * base for m in (1, 2, 5) if m * base <= target_mm)


class SliceView(QWidget):
    """Shows one patient plane; emits user intents, never edits the twin itself."""

    cursor_moved = Signal(object)  # np.ndarray LPS mm: new linked crosshair point
    window_changed = Signal(float, float)  # centre, width
    maximize_requested = Signal()
    activated = Signal()

    def __init__(self, plane: Plane | str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = Plane(plane)
        self.setObjectName(f"slice_{self.plane.value}")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self.twin: Twin | None = None
        self.mapping: PlaneMapping | None = None
        self.slice_index = 0
        self.window = (40.0, 400.0)
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.overlay_opacity = 0.5
        self.outline = False
        self.show_help = False
        self.cursor_lps: np.ndarray | None = None
        self._lookups: list[LayerLookup] = []
        self._image: QImage | None = None
        self._hover_text = ""
        self._drag_button: Qt.MouseButton | None = None
        self._drag_last = QPointF()
        self.tool: SliceTool | None = None
        self._decorations: list[Decoration] = []
        self.value_range: tuple[float, float] | None = None
        self._mouse_pos: QPointF | None = None  # last mouse position over the view
        self.fusion: FusionLayer | None = None  # a further series fused under the structures
        self.cache_base = True  # False: scale the slice at every paint (the cache's reference)
        self._base: tuple[tuple, QImage] | None = None  # (key, background + scaled slice)
        self.base_builds = 0  # how often the base image was (re)built
        self._layout: tuple[tuple, list] | None = None  # (key, label_layout())

    # ------------------------------------------------------------------ tools
    def set_tool(self, tool: SliceTool | None) -> None:
        """Give left-button interaction to ``tool`` (None: left-drag is window/level)."""
        self.tool = tool
        self.setCursor(Qt.CursorShape.ArrowCursor if tool is None
                       else Qt.CursorShape.CrossCursor)
        self.update()

    def add_decoration(self, decoration: Decoration) -> None:
        """Draw ``decoration(view, painter)`` on top of this view at every repaint."""
        self._decorations.append(decoration)
        self.update()

    def remove_decoration(self, decoration: Decoration) -> None:
        if decoration in self._decorations:
            self._decorations.remove(decoration)
            self.update()

    # ------------------------------------------------------------------ model
    def set_twin(self, twin: Twin | None, *,
                 window: tuple[float, float] | None = None) -> None:
        """Show ``twin`` (or nothing): ``window`` or the default one, centre slice, fitted."""
        self.twin = twin
        self.mapping = None if twin is None else plane_mapping(twin.geometry, self.plane)
        self.value_range = None if twin is None else data_range(twin.image)
        if twin is not None:
            self.window = self._bounded(*(window or default_window(twin.image)))
            self.cursor_lps = twin.geometry.slice_centre_lps()
            self.slice_index = self.mapping.slice_index_of(self.cursor_lps)
        self.reset_view()
        self.refresh_overlays()

    def refresh_overlays(self) -> None:
        """Re-read structure colours/visibility/opacity and redraw."""
        self._lookups = [] if self.twin is None else layer_lookups(
            self.twin.segmentation, voxel_count=self.twin.voxel_count)
        self._invalidate()

    def _bounded(self, center: float, width: float) -> tuple[float, float]:
        if self.value_range is None:
            return float(center), max(float(width), 1e-3)
        return bounded_window(center, width, self.value_range)

    def set_window(self, center: float, width: float) -> None:
        """Show the window ``(center, width)``, bounded to the data range (see
        :func:`~surgiplan.ui.views.windowing.bounded_window`)."""
        self.window = self._bounded(center, width)
        self._invalidate()

    def set_overlay_style(self, *, opacity: float | None = None, outline: bool | None = None):
        if opacity is not None:
            self.overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        if outline is not None:
            self.outline = bool(outline)
        self._invalidate()

    def set_fusion(self, layer: FusionLayer | None) -> None:
        """Fuse a further series (on the reference grid) into the slice, or none (the same
        layer again, e.g. none on a newly opened case, keeps the built image)."""
        if layer is self.fusion:
            return
        self.fusion = layer
        self._invalidate()

    def set_cursor(self, point_lps: np.ndarray) -> None:
        """Move the linked crosshair; the view shows the slice through it."""
        self.cursor_lps = np.asarray(point_lps, dtype=float)
        if self.mapping is not None:
            new = self.mapping.slice_index_of(self.cursor_lps)
            if new != self.slice_index:
                self.slice_index = new
                self._refresh_hover()
                self._invalidate()
                return
        self.update()

    def set_slice(self, index: int) -> None:
        """Show slice ``index`` (clamped) and move the crosshair onto it."""
        if self.mapping is None:
            return
        index = int(np.clip(index, 0, self.mapping.n_slices - 1))
        if index == self.slice_index:
            return
        self.slice_index = index
        if self.cursor_lps is not None:
            col, row, _ = self.mapping.lps_to_pixel(self.cursor_lps)
            self.cursor_lps = self.mapping.pixel_to_lps(col, row, index)
            self.cursor_moved.emit(self.cursor_lps.copy())
        self._refresh_hover()
        self._invalidate()

    def step_slices(self, steps: int) -> None:
        """Move ``steps`` slices toward the plane's forward patient direction (superior,
        anterior or left; negative: the opposite way)."""
        if self.mapping is not None:
            self.set_slice(self.slice_index + int(steps) * self.mapping.forward_step())

    def _refresh_hover(self) -> None:
        """Re-read the value under the mouse (the slice under it changed)."""
        if self.mapping is not None and self._mouse_pos is not None:
            self._update_hover(self._mouse_pos)

    def reset_view(self) -> None:
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.update()

    def apply_preset(self, number: int) -> bool:
        """Apply W/L preset ``number`` (1-based) of the volume's preset list; 0 = default."""
        if self.twin is None:
            return False
        if number == 0:
            self.set_window(*default_window(self.twin.image))
        else:
            presets = presets_for(self.twin.image)
            if number > len(presets):
                return False
            self.set_window(presets[number - 1].center, presets[number - 1].width)
        self.window_changed.emit(*self.window)
        return True

    # ------------------------------------------------------------------ image
    def _invalidate(self) -> None:
        self._image = None
        self._base = None
        self.update()

    def slice_rgb(self) -> np.ndarray | None:
        """The displayed slice as RGB uint8 ``(rows, cols, 3)`` (grey + overlays), or None."""
        if self.twin is None or self.mapping is None:
            return None
        values = self.mapping.extract(self.twin.image.array, self.slice_index)
        grey = to_grey(values, *self.window)
        if self.fusion is not None:
            grey = fuse_grey(grey, self.mapping.extract(self.fusion.array, self.slice_index),
                             self.fusion)
        layers = self.twin.segmentation.layers
        planes = [self.mapping.extract(layers[lut.layer], self.slice_index)
                  for lut in self._lookups]
        if not planes:
            return np.repeat(grey[:, :, None], 3, axis=2)
        return blend_labels(grey, planes, self._lookups, opacity=self.overlay_opacity,
                            outline=self.outline)

    def _qimage(self) -> QImage | None:
        if self._image is None:
            rgb = self.slice_rgb()
            if rgb is None:
                return None
            rgb = np.ascontiguousarray(rgb)
            h, w, _ = rgb.shape
            self._image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        return self._image

    # ------------------------------------------------------------------ screen geometry
    def image_rect(self) -> QRectF:
        """Screen rectangle of the whole slice image (true mm aspect, zoom and pan applied)."""
        if self.mapping is None:
            return QRectF()
        rows, cols = self.mapping.shape_rows_cols
        cw, rh = self.mapping.pixel_mm
        width_mm, height_mm = cols * cw, rows * rh
        scale = min(self.width() / width_mm, self.height() / height_mm) * self.zoom
        w, h = width_mm * scale, height_mm * scale
        cx = self.width() / 2.0 + self.pan.x()
        cy = self.height() / 2.0 + self.pan.y()
        return QRectF(cx - w / 2.0, cy - h / 2.0, w, h)

    def screen_scale(self) -> float:
        """Screen pixels per millimetre."""
        if self.mapping is None:
            return 1.0
        return self.image_rect().width() / (self.mapping.shape_rows_cols[1]
                                            * self.mapping.pixel_mm[0])

    def screen_to_pixel(self, pos: QPointF) -> tuple[float, float]:
        """Widget position -> continuous displayed pixel (col, row), centres at integers."""
        rect = self.image_rect()
        rows, cols = self.mapping.shape_rows_cols
        col = (pos.x() - rect.left()) / rect.width() * cols - 0.5
        row = (pos.y() - rect.top()) / rect.height() * rows - 0.5
        return col, row

    def pixel_to_screen(self, col: float, row: float) -> QPointF:
        rect = self.image_rect()
        rows, cols = self.mapping.shape_rows_cols
        return QPointF(rect.left() + (col + 0.5) / cols * rect.width(),
                       rect.top() + (row + 0.5) / rows * rect.height())

    def screen_to_lps(self, pos: QPointF) -> np.ndarray:
        col, row = self.screen_to_pixel(pos)
        return self.mapping.pixel_to_lps(col, row, self.slice_index)

    def lps_to_screen(self, point_lps: np.ndarray) -> QPointF:
        col, row, _ = self.mapping.lps_to_pixel(point_lps)
        return self.pixel_to_screen(col, row)

    def value_at(self, pos: QPointF) -> float | None:
        """Voxel value under a widget position, or None outside the image."""
        if self.mapping is None:
            return None
        col, row = self.screen_to_pixel(pos)
        ijk = np.rint(self.mapping.pixel_to_index(col, row, self.slice_index)).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= np.asarray(self.twin.geometry.size)):
            return None
        return float(self.twin.image.array[ijk[2], ijk[1], ijk[0]])

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        image = self._qimage()
        if image is None:
            p.fillRect(self.rect(), Qt.GlobalColor.black)
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       f"{self.plane.value}\nOpen a scan or case (File menu or drop it here)")
            p.end()
            return
        self._paint_slice(p, image)
        self._paint_crosshair(p)
        for decoration in self._decorations:
            decoration(self, p)
        if self.tool is not None:
            self.tool.paint(self, p)
        self._paint_labels(p)
        self._paint_scale_bar(p)
        if self.show_help:
            self._paint_help(p)
        if self.hasFocus():
            p.setPen(QPen(_PLANE_COLORS[self.plane], 2))
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        p.end()

    def _paint_base(self, p: QPainter, image: QImage) -> None:
        """Black background and the slice image scaled into :meth:`image_rect` (smoothed
        below zoom 3)."""
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 3)
        p.drawImage(self.image_rect(), image)

    def _paint_slice(self, p: QPainter, image: QImage) -> None:
        """The base (background and scaled slice): blitted from the cache, rebuilt when the
        slice image, its screen rectangle, the view size, the device's pixel ratio or the
        smoothing changed; painted directly when ``cache_base`` is off."""
        if not self.cache_base:
            self._paint_base(p, image)
            return
        dpr = p.device().devicePixelRatioF()
        key = (image.cacheKey(), self.image_rect().getRect(), self.width(), self.height(), dpr,
               self.zoom < 3)
        if self._base is None or self._base[0] != key:
            base = QImage(max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr)),
                          QImage.Format.Format_RGB32)
            base.setDevicePixelRatio(dpr)
            painter = QPainter(base)
            self._paint_base(painter, image)
            painter.end()
            self._base = (key, base)
            self.base_builds += 1
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 3)  # as painted
        p.drawImage(QPointF(0.0, 0.0), self._base[1])

    def _paint_crosshair(self, p: QPainter) -> None:
        if self.cursor_lps is None:
            return
        c = self.lps_to_screen(self.cursor_lps)
        pen = QPen(QColor(255, 255, 0, 150), 1)
        p.setPen(pen)
        gap = 8
        p.drawLine(QPointF(0, c.y()), QPointF(c.x() - gap, c.y()))
        p.drawLine(QPointF(c.x() + gap, c.y()), QPointF(self.width(), c.y()))
        p.drawLine(QPointF(c.x(), 0), QPointF(c.x(), c.y() - gap))
        p.drawLine(QPointF(c.x(), c.y() + gap), QPointF(c.x(), self.height()))

    def _text(self, p: QPainter, rect: QRectF, flags, text: str) -> None:
        p.setPen(QColor(0, 0, 0))
        p.drawText(rect.translated(1, 1), flags, text)
        p.setPen(QColor(235, 235, 235))
        p.drawText(rect, flags, text)

    def _fonts(self) -> tuple[QFont, QFont]:
        bold = QFont(self.font())
        bold.setBold(True)
        bold.setPointSize(max(bold.pointSize(), 11))
        small = QFont(self.font())
        small.setPointSize(max(self.font().pointSize(), 9))
        return bold, small

    def _header_texts(self) -> dict[str, str]:
        axis = {Plane.AXIAL: "S", Plane.CORONAL: "P", Plane.SAGITTAL: "L"}[self.plane]
        pos = self.mapping.slice_position_mm(self.slice_index)
        c, w = self.window
        return {"title": (f"{self.plane.value.capitalize()}  {axis} {pos:.1f} mm\n"
                          f"slice {self.slice_index + 1}/{self.mapping.n_slices}"),
                "window": f"W {w:.4g}  L {c:.4g}", "hover": self._hover_text}

    def label_layout(self) -> list[tuple[str, QRectF, QFont, str]]:
        """Every text drawn on the view as (key, screen rectangle, font, text), placed so no
        two overlap: orientation letters on the edges, the title and window at the top
        corners, the value under the cursor at the bottom left (moved away from neighbours).
        Kept while the view's size, font, mapping, texts and scale bar stay the same."""
        if self.mapping is None:
            return []
        key = (self.width(), self.height(), self.font().key(), id(self.mapping),
               tuple(self._header_texts().items()), self._scale_bar_box().getRect())
        if self._layout is None or self._layout[0] != key:
            self._layout = (key, self._label_layout())
        return self._layout[1]

    def _label_layout(self) -> list[tuple[str, QRectF, QFont, str]]:
        bold, small = self._fonts()
        area = QRectF(self.rect()).adjusted(6, 4, -6, -4)
        al = Qt.AlignmentFlag
        placed: list[tuple[str, QRectF, QFont, str]] = []

        def rect_of(font: QFont, text: str, flags) -> QRectF:
            return QFontMetricsF(font).boundingRect(area, int(flags), text)

        letters = self.mapping.edge_labels()
        for key, flags in (("top", al.AlignTop | al.AlignHCenter),
                           ("bottom", al.AlignBottom | al.AlignHCenter),
                           ("left", al.AlignLeft | al.AlignVCenter),
                           ("right", al.AlignRight | al.AlignVCenter)):
            placed.append((f"letter_{key}", rect_of(bold, letters[key], flags), bold,
                           letters[key]))
        scale_box = self._scale_bar_box()
        placed.append(("scale_bar", scale_box, small, ""))
        texts = self._header_texts()
        for key, flags, down in (("title", al.AlignLeft | al.AlignTop, True),
                                 ("window", al.AlignRight | al.AlignTop, True),
                                 ("hover", al.AlignLeft | al.AlignBottom, False)):
            if not texts[key]:
                continue
            rect = rect_of(small, texts[key], flags).translated(8 if key != "window" else -8, 0)
            placed.append((key, self._free_place(rect, [r for _k, r, _f, _t in placed], down),
                           small, texts[key]))
        return placed

    @staticmethod
    def _free_place(rect: QRectF, taken: list[QRectF], down: bool) -> QRectF:
        """``rect`` moved down (or up) just past every rectangle it overlaps."""
        for _ in range(len(taken) + 1):
            hits = [t for t in taken if t.intersects(rect)]
            if not hits:
                break
            if down:
                rect.moveTop(max(t.bottom() for t in hits) + 2)
            else:
                rect.moveBottom(min(t.top() for t in hits) - 2)
        return rect

    def label_rects(self) -> dict[str, QRectF]:
        """Screen rectangles of the drawn texts and scale bar, by key (for layout checks)."""
        return {key: rect for key, rect, _font, _text in self.label_layout()}

    def _paint_labels(self, p: QPainter) -> None:
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        for key, rect, font, text in self.label_layout():
            if key == "scale_bar":
                continue
            p.setFont(font)
            centred = key.startswith("letter_")
            self._text(p, rect, Qt.AlignmentFlag.AlignCenter if centred else flags, text)

    def _scale_bar_length(self) -> tuple[float, float]:
        """(length in mm, length in screen pixels) of the scale bar."""
        scale = self.screen_scale()
        length_mm = nice_length_mm(self.width() / 5.0 / scale)
        return length_mm, length_mm * scale

    def _scale_bar_box(self) -> QRectF:
        """Screen rectangle holding the scale bar and its label (bottom right)."""
        _mm, length_px = self._scale_bar_length()
        x1, y = self.width() - 24, self.height() - 28
        return QRectF(x1 - length_px - 4, y - 22, length_px + 8, 28)

    def _paint_scale_bar(self, p: QPainter) -> None:
        length_mm, length_px = self._scale_bar_length()
        x1 = self.width() - 24
        y = self.height() - 28
        p.setPen(QPen(QColor(235, 235, 235), 2))
        p.drawLine(QPointF(x1 - length_px, y), QPointF(x1, y))
        p.drawLine(QPointF(x1 - length_px, y - 4), QPointF(x1 - length_px, y + 4))
        p.drawLine(QPointF(x1, y - 4), QPointF(x1, y + 4))
        label = f"{length_mm:g} mm" if length_mm < 10 else f"{length_mm / 10:g} cm"
        self._text(p, QRectF(x1 - length_px - 40, y - 22, length_px + 80, 18),
                   Qt.AlignmentFlag.AlignCenter, label)

    def _paint_help(self, p: QPainter) -> None:
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        p.setFont(font)
        box = QRectF(self.rect()).adjusted(20, 40, -20, -40)
        p.fillRect(box, QColor(0, 0, 0, 200))
        p.setPen(QColor(240, 240, 240))
        p.drawText(box.adjusted(10, 10, -10, -10),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, HELP_TEXT)

    # ------------------------------------------------------------------ mouse and keys
    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1)
        if event.angleDelta().y() == 0:
            return
        self.step_slices(int(steps))
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        self.activated.emit()
        self._drag_button = event.button()
        self._drag_last = event.position()
        if self._tool_owns(event):
            self.tool.press(self, self.screen_to_lps(event.position()), event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._tool_owns(event):
            self.tool.release(self, self.screen_to_lps(event.position()), event)
        self._drag_button = None

    def _tool_owns(self, event: QMouseEvent) -> bool:
        return (self.tool is not None and self.mapping is not None
                and self._drag_button == Qt.MouseButton.LeftButton)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.maximize_requested.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.mapping is None:
            return
        pos = event.position()
        self._mouse_pos = QPointF(pos)
        delta = pos - self._drag_last
        self._drag_last = pos
        buttons = event.buttons()
        if self.tool is not None and not buttons:
            self.tool.hover(self, self.screen_to_lps(pos))
        if buttons & Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.drag(self, self.screen_to_lps(pos), event)
        elif buttons & Qt.MouseButton.LeftButton:
            self.drag_window(delta.x(), delta.y())
        elif buttons & Qt.MouseButton.RightButton:
            self.zoom = float(np.clip(self.zoom * math.exp(-delta.y() / 200.0), 0.2, 40.0))
            self.update()
        elif buttons & Qt.MouseButton.MiddleButton:
            self.pan += delta
            self.update()
        elif event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.cursor_lps = self.screen_to_lps(pos)
            self.cursor_moved.emit(self.cursor_lps.copy())
            self.update()
        self._update_hover(pos)

    def drag_window(self, dx: float, dy: float) -> None:
        """Left-drag: right widens the window, down raises the level (Slicer's convention)."""
        c, w = self.window
        step = w / 256.0
        self.set_window(c + dy * step, w + dx * step * 2.0)
        self.window_changed.emit(*self.window)

    def _update_hover(self, pos: QPointF) -> None:
        value = self.value_at(pos)
        if value is None:
            self._hover_text = ""
        else:
            lps = self.screen_to_lps(pos)
            unit = f" {self.twin.image.units}" if self.twin.image.units else ""
            shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.4g}"
            self._hover_text = f"{format_lps(lps)}\n{shown}{unit}"
        self.update()

    def leaveEvent(self, event) -> None:
        self._hover_text = ""
        self._mouse_pos = None
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        k = Qt.Key
        steps = {k.Key_Up: 1, k.Key_Down: -1, k.Key_PageUp: 10, k.Key_PageDown: -10,
                 k.Key_Right: 1, k.Key_Left: -1}
        if key in steps:
            self.step_slices(steps[key])
        elif key == k.Key_R:
            self.reset_view()
        elif key == k.Key_O:
            self.set_overlay_style(outline=not self.outline)
        elif key in (k.Key_H, k.Key_F1):
            self.show_help = not self.show_help
            self.update()
        elif k.Key_0 <= key <= k.Key_9 and self.apply_preset(int(key - k.Key_0)):
            pass
        else:
            super().keyPressEvent(event)
