"""Probe's-eye view: the image resliced perpendicular to the planned path, and along it.

* left, "probe's eye": the plane through the point at ``depth_mm`` from the entry,
  perpendicular to the path, seen from the entry towards the target, with the structures'
  overlays, the tool's footprint circle (its diameter) and each critical structure's distance
  at that point. A slider slides the plane from entry (0 mm) to target.
* right, "along the path": the plane containing the path (entry at the top, target at the
  bottom) with the tool drawn to its diameter and the current depth marked.

Reslicing is numpy + ``scipy.ndimage.map_coordinates`` (linear for the image, nearest for the
label layers), a few milliseconds for the 200 x 200 pixel planes used here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget
from scipy import ndimage

from surgiplan.model.frames import format_lps
from surgiplan.model.structures import Role
from surgiplan.processing.distance import sample_volume
from surgiplan.twin import Twin
from surgiplan.ui.views.overlay import blend_labels, layer_lookups
from surgiplan.ui.views.windowing import to_grey

PROBE_FOV_MM = 40.0  # width of the probe's-eye plane
PROBE_PIXELS = 200
ALONG_MARGIN_MM = 15.0


def path_frame(entry_lps: np.ndarray, target_lps: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors ``(d, u, v)``: ``d`` along the path (entry -> target), ``u`` and ``v``
    spanning the perpendicular plane (``u`` horizontal: perpendicular to d and to S when it
    can be, so the probe's eye keeps the patient's up-down on screen)."""
    d = np.asarray(target_lps, float) - np.asarray(entry_lps, float)
    d /= np.linalg.norm(d)
    ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(d, ref)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return d, u, v


def plane_points(centre_lps: np.ndarray, right: np.ndarray, down: np.ndarray,
                 width_mm: float, height_mm: float, cols: int, rows: int) -> np.ndarray:
    """LPS points ``(rows, cols, 3)`` of a plane's pixel centres around ``centre_lps``."""
    xs = (np.arange(cols) + 0.5) / cols * width_mm - width_mm / 2.0
    ys = (np.arange(rows) + 0.5) / rows * height_mm - height_mm / 2.0
    return (np.asarray(centre_lps, float)[None, None, :] + xs[None, :, None] * right
            + ys[:, None, None] * down)


def reslice_rgb(twin: Twin, points_lps: np.ndarray, window: tuple[float, float], *,
                overlay_opacity: float = 0.45) -> np.ndarray:
    """RGB uint8 ``(rows, cols, 3)`` of the image (windowed) with structure overlays at
    ``points_lps`` (rows, cols, 3); black outside the grid."""
    geometry = twin.geometry
    zyx = geometry.lps_to_index(points_lps.reshape(-1, 3))[:, ::-1].T
    shape = points_lps.shape[:2]
    values = ndimage.map_coordinates(twin.image.array, zyx, order=1, mode="constant",
                                     cval=np.nan, prefilter=False).reshape(shape)
    grey = to_grey(np.nan_to_num(values, nan=float(np.nanmin(values)) if np.isfinite(
        values).any() else 0.0), *window)
    grey[~np.isfinite(values)] = 0
    lookups = layer_lookups(twin.segmentation, voxel_count=twin.voxel_count)
    planes = [_labels_at(twin.segmentation.layers[lut.layer], zyx).reshape(shape)
              for lut in lookups]
    if not planes:
        return np.repeat(grey[:, :, None], 3, axis=2)
    return blend_labels(grey, planes, lookups, opacity=overlay_opacity)


def _labels_at(layer: Any, zyx: np.ndarray) -> np.ndarray:
    """Nearest-voxel labels of a label layer at ``(3, N)`` voxel coordinates (0 off the grid),
    read from its crop padded by one empty voxel (the same values as the full grid's)."""
    shape = np.asarray(layer.shape)
    lo = np.maximum(np.asarray(layer.offset) - 1, 0)
    hi = np.minimum(np.asarray(layer.offset) + np.asarray(layer.data.shape) + 1, shape)
    if not layer.data.size:
        return np.zeros(zyx.shape[1], layer.dtype)
    crop = layer.region(tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)))
    return ndimage.map_coordinates(crop, zyx - lo[:, None], order=0, mode="constant", cval=0,
                                   prefilter=False)


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _Canvas(QWidget):
    """Paints one resliced image, keeping its mm aspect, plus a drawing callback on top."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.image: QImage | None = None
        self.size_mm = (1.0, 1.0)
        self.draw_extra = None  # (painter, mm_to_screen) -> None
        self.setMinimumSize(140, 140)

    def set_image(self, image: QImage | None, size_mm: tuple[float, float]) -> None:
        self.image, self.size_mm = image, size_mm
        self.update()

    def target_rect(self) -> QRectF:
        w_mm, h_mm = self.size_mm
        scale = min(self.width() / w_mm, (self.height() - 16) / h_mm)
        w, h = w_mm * scale, h_mm * scale
        return QRectF((self.width() - w) / 2, 16 + (self.height() - 16 - h) / 2, w, h)

    def mm_to_screen(self, x_mm: float, y_mm: float) -> QPointF:
        """Plane mm (x right, y down, origin at the centre) -> widget position."""
        r = self.target_rect()
        return QPointF(r.center().x() + x_mm / self.size_mm[0] * r.width(),
                       r.center().y() + y_mm / self.size_mm[1] * r.height())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        p.setPen(QColor(220, 220, 220))
        p.drawText(QRectF(0, 0, self.width(), 16), Qt.AlignmentFlag.AlignCenter, self.title)
        if self.image is not None:
            p.drawImage(self.target_rect(), self.image)
            if self.draw_extra is not None:
                p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                self.draw_extra(p, self)
        p.end()


class ProbeView(QWidget):
    """Probe's-eye and along-the-path reslices of a planned trajectory, with a depth slider."""

    depth_changed = Signal(float)  # mm from the entry

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probe_view")
        self.twin: Twin | None = None
        self.window = (40.0, 400.0)
        self.entry_lps: np.ndarray | None = None
        self.target_lps: np.ndarray | None = None
        self.diameter_mm = 0.8
        self.color = QColor(80, 170, 255)
        self.probe = _Canvas("Probe's eye (perpendicular)")
        self.along = _Canvas("Along the path")
        self.probe.draw_extra = self._draw_probe
        self.along.draw_extra = self._draw_along
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("probe_depth")
        self.slider.setRange(0, 1000)
        self.slider.valueChanged.connect(self._slider_moved)
        self.depth_label = QLabel("Place an entry and a target to see the probe's eye.")
        self.depth_label.setWordWrap(True)
        views = QHBoxLayout()
        views.addWidget(self.probe, 1)
        views.addWidget(self.along, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(views, 1)
        layout.addWidget(self.slider)
        layout.addWidget(self.depth_label)

    # ------------------------------------------------------------------ state
    def set_twin(self, twin: Twin | None, window: tuple[float, float] | None = None) -> None:
        self.twin = twin
        if window is not None:
            self.window = window
        self.entry_lps = self.target_lps = None
        self.refresh()

    def set_window(self, center: float, width: float) -> None:
        self.window = (center, width)
        self.refresh()

    def set_path(self, entry_lps, target_lps, diameter_mm: float, color: QColor | None = None
                 ) -> None:
        """Show the path entry -> target (LPS mm); keeps the relative depth of the slider."""
        self.entry_lps = None if entry_lps is None else np.asarray(entry_lps, float)
        self.target_lps = None if target_lps is None else np.asarray(target_lps, float)
        self.diameter_mm = float(diameter_mm)
        if color is not None:
            self.color = color
        self.refresh()

    def length_mm(self) -> float:
        if self.entry_lps is None or self.target_lps is None:
            return 0.0
        return float(np.linalg.norm(self.target_lps - self.entry_lps))

    def depth_mm(self) -> float:
        return self.slider.value() / 1000.0 * self.length_mm()

    def set_depth(self, depth_mm: float) -> None:
        """Slide the probe's-eye plane to ``depth_mm`` from the entry (clamped)."""
        length = self.length_mm()
        if length > 0:
            self.slider.setValue(round(np.clip(depth_mm / length, 0.0, 1.0) * 1000))

    def _slider_moved(self, _value: int) -> None:
        self.refresh()
        self.depth_changed.emit(self.depth_mm())

    def _valid(self) -> bool:
        return self.twin is not None and self.length_mm() > 1e-3

    # ------------------------------------------------------------------ drawing
    def probe_point(self) -> np.ndarray:
        d, _, _ = path_frame(self.entry_lps, self.target_lps)
        return self.entry_lps + d * self.depth_mm()

    def refresh(self) -> None:
        if not self._valid():
            self.probe.set_image(None, (1, 1))
            self.along.set_image(None, (1, 1))
            return
        d, u, v = path_frame(self.entry_lps, self.target_lps)
        centre = self.probe_point()
        pts = plane_points(centre, u, v, PROBE_FOV_MM, PROBE_FOV_MM, PROBE_PIXELS, PROBE_PIXELS)
        self.probe.set_image(_qimage(reslice_rgb(self.twin, pts, self.window)),
                             (PROBE_FOV_MM, PROBE_FOV_MM))
        length = self.length_mm()
        height = length + 2 * ALONG_MARGIN_MM
        width = max(PROBE_FOV_MM, height * 0.6)
        mid = (self.entry_lps + self.target_lps) / 2.0
        rows = PROBE_PIXELS
        cols = max(40, round(rows * width / height))
        pts = plane_points(mid, u, d, width, height, cols, rows)
        self.along.set_image(_qimage(reslice_rgb(self.twin, pts, self.window)), (width, height))
        self.depth_label.setText(self._depth_text(centre))

    def distances_here(self) -> dict[str, float]:
        """Signed distance (mm, + outside) from the probe point's axis to each critical
        structure, minus the tool radius (negative: the tool is inside it)."""
        if not self._valid():
            return {}
        point = self.probe_point()[None]
        out = {}
        for s in self.twin.segmentation.by_role(Role.CRITICAL):
            dist = self.twin.signed_distance_mm(s.name)
            value = float(sample_volume(dist, self.twin.geometry, point, fill_value=np.inf)[0])
            out[s.name] = value - self.diameter_mm / 2.0
        return out

    def _depth_text(self, centre: np.ndarray) -> str:
        depth, length = self.depth_mm(), self.length_mm()
        text = (f"Depth {depth:.1f} mm from entry, {length - depth:.1f} mm to target "
                f"({format_lps(centre)})")
        here = self.distances_here()
        if here:
            text += "\nClearance here: " + ", ".join(f"{n} {v:.1f} mm" for n, v in here.items())
        return text

    def _draw_probe(self, p: QPainter, canvas: _Canvas) -> None:
        scale = canvas.target_rect().width() / PROBE_FOV_MM
        centre = canvas.mm_to_screen(0.0, 0.0)
        radius = max(2.0, self.diameter_mm / 2.0 * scale)
        p.setPen(QPen(self.color, 2.0))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(centre, radius, radius)
        p.setPen(QPen(QColor(255, 255, 255, 120), 1.0))
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            p.drawLine(centre + QPointF(dx, dy) * (radius + 4), centre + QPointF(dx, dy) * 14)
        bar = 10.0 * scale
        r = canvas.target_rect()
        p.setPen(QPen(QColor(235, 235, 235), 2))
        p.drawLine(QPointF(r.right() - 8 - bar, r.bottom() - 8), QPointF(r.right() - 8,
                                                                          r.bottom() - 8))
        p.drawText(QPointF(r.right() - 8 - bar, r.bottom() - 12), "10 mm")

    def _draw_along(self, p: QPainter, canvas: _Canvas) -> None:
        length = self.length_mm()
        half = length / 2.0
        scale = canvas.target_rect().width() / canvas.size_mm[0]
        w = max(1.0, self.diameter_mm * scale)
        p.setPen(QPen(self.color, w))
        p.drawLine(canvas.mm_to_screen(0, -half), canvas.mm_to_screen(0, half))
        depth_y = self.depth_mm() - half
        p.setPen(QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine))
        p.drawLine(canvas.mm_to_screen(-PROBE_FOV_MM / 2, depth_y),
                   canvas.mm_to_screen(PROBE_FOV_MM / 2, depth_y))
        for y, letter in ((-half, "E"), (half, "T")):
            at = canvas.mm_to_screen(0, y)
            p.setPen(QPen(QColor(0, 0, 0), 1))
            p.setBrush(self.color)
            p.drawEllipse(at, 5.0, 5.0)
            p.setPen(QColor(255, 255, 255))
            p.drawText(at + QPointF(8, 4), letter)
