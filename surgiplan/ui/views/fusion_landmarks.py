"""Landmark pairs on a fused series (issue 18): pick a point on the reference, then the same
anatomical point on the series as the overlay shows it; the target registration error (TRE) of
the series' transform is read out, and three or more pairs align the series (least squares
rigid) or start its registration.

The slice views show everything on the reference grid, so a click is a reference LPS point. The
first click of a pair is the reference landmark; the second, made on the fused series, is
carried into the series' own frame through the current transform (``from_reference``) and kept
there, so that after a new registration or nudge the same anatomical point gives the new
transform's error. Pairs are stored with the transform's quality (``landmarks``,
``tre_mean_mm``, ``tre_max_mm``, ``landmark_pairs``), so they are saved in the bundle.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from surgiplan.model.series_transform import SeriesTransform
from surgiplan.ui.views.slice_tools import SliceToolBase

if TYPE_CHECKING:
    from PySide6.QtGui import QMouseEvent

    from surgiplan.twin import Twin
    from surgiplan.ui.shell.main_window import MainWindow
    from surgiplan.ui.views.slice_view import SliceView

REFERENCE_COLOUR = QColor(40, 220, 90)
SERIES_COLOUR = QColor(255, 150, 30)
MARK_PIXELS = 6


def stored_pairs(transform: SeriesTransform) -> tuple[np.ndarray, np.ndarray]:
    """The landmark pairs kept with a transform: ``(reference_lps, series_lps)``, (n, 3) mm."""
    marks = transform.quality.get("landmarks") or {}
    ref = np.asarray(marks.get("reference_lps", []), dtype=float).reshape(-1, 3)
    ser = np.asarray(marks.get("series_lps", []), dtype=float).reshape(-1, 3)
    return ref, ser


def with_landmarks(transform: SeriesTransform, reference_lps: Any, series_lps: Any
                   ) -> SeriesTransform:
    """``transform`` with the pairs and its landmark error in its quality (none: removed)."""
    from surgiplan.registration.quality import landmark_error

    ref = np.asarray(reference_lps, dtype=float).reshape(-1, 3)
    ser = np.asarray(series_lps, dtype=float).reshape(-1, 3)
    quality = {k: v for k, v in transform.quality.items()
               if k not in ("landmarks", "tre_mean_mm", "tre_max_mm", "landmark_pairs")}
    if len(ref):
        quality.update(landmark_error(transform, ref, ser).to_json())
        quality["landmarks"] = {"reference_lps": ref.tolist(), "series_lps": ser.tolist()}
    return replace(transform, quality=quality)


class LandmarkTool(SliceToolBase):
    """Left click places the next landmark; the pairs crossing the slice are drawn (reference
    points green, series points orange where the transform puts them)."""

    name = "landmark"

    def __init__(self, panel: LandmarkPanel) -> None:
        self.panel = panel

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        self.panel.pick(point_lps)

    def paint(self, view: SliceView, painter: QPainter) -> None:
        if view.mapping is None:
            return
        half = view.mapping.slice_spacing_mm / 2.0 + 1e-6
        for points, colour in ((self.panel.reference_points(), REFERENCE_COLOUR),
                               (self.panel.series_points_on_reference(), SERIES_COLOUR)):
            painter.setPen(QPen(colour, 2))
            for n, p in enumerate(points, start=1):
                if abs(view.mapping.depth_from_slice_mm(p, view.slice_index)) > half:
                    continue
                c = view.lps_to_screen(p)
                painter.drawLine(c + QPointF(-MARK_PIXELS, 0), c + QPointF(MARK_PIXELS, 0))
                painter.drawLine(c + QPointF(0, -MARK_PIXELS), c + QPointF(0, MARK_PIXELS))
                painter.drawText(c + QPointF(MARK_PIXELS + 2, -2), str(n))


class LandmarkPanel(QWidget):
    """Pick landmark pairs on the fused series; TRE readout; align on them."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window_ = window
        self.twin: Twin | None = None
        self.key: str | None = None
        self.pending: np.ndarray | None = None  # a reference point waiting for its partner
        self.tool = LandmarkTool(self)
        self.pick_button = QPushButton("Pick landmark pairs")
        self.pick_button.setObjectName("fusion_pick_landmarks")
        self.pick_button.setCheckable(True)
        self.pick_button.toggled.connect(self._picking)
        self.align_button = QPushButton("Align on landmarks")
        self.align_button.setObjectName("fusion_align_landmarks")
        self.align_button.clicked.connect(self.align)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.readout = QLabel()
        self.readout.setObjectName("fusion_landmarks")
        self.readout.setWordWrap(True)
        row = QHBoxLayout()
        for button in (self.pick_button, self.align_button, self.clear_button):
            row.addWidget(button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.readout)
        self.set_series(None, None)

    # ------------------------------------------------------------------ state
    def set_series(self, twin: Twin | None, key: str | None) -> None:
        """Follow the series chosen in the Fusion dock (None: no series)."""
        self.twin, self.key, self.pending = twin, key, None
        if key is None and self.pick_button.isChecked():
            self.pick_button.setChecked(False)
        for button in (self.pick_button, self.clear_button):
            button.setEnabled(key is not None)
        self._show()

    def _transform(self) -> SeriesTransform | None:
        if self.twin is None or self.key is None:
            return None
        return self.twin.series_by_key(self.key).transform

    def reference_points(self) -> np.ndarray:
        t = self._transform()
        ref = np.zeros((0, 3)) if t is None else stored_pairs(t)[0]
        return ref if self.pending is None else np.vstack([ref, self.pending])

    def series_points_on_reference(self) -> np.ndarray:
        """The series landmarks where the current transform puts them (reference LPS mm)."""
        t = self._transform()
        if t is None:
            return np.zeros((0, 3))
        ser = stored_pairs(t)[1]
        return t.to_reference(ser) if len(ser) else ser

    # ------------------------------------------------------------------ picking
    def _picking(self, on: bool) -> None:
        self.pending = None
        self.window_.set_slice_tool(self.tool if on else None)
        self._show()

    def pick(self, point_lps: Any) -> None:
        """Place the next landmark at ``point_lps`` (reference LPS mm, where the views show
        it): the reference point of a new pair, or its partner on the fused series."""
        t = self._transform()
        if t is None or self.twin is None or self.key is None:
            return
        point = np.asarray(point_lps, dtype=float).reshape(3)
        if self.pending is None:
            self.pending = point
        else:
            ref, ser = stored_pairs(t)
            self.twin.set_series_transform(self.key, with_landmarks(
                t, np.vstack([ref, self.pending]), np.vstack([ser, t.from_reference(point)])))
            self.pending = None
            self.window_.mark_dirty()
        self._show()
        self._repaint_views()

    def clear(self) -> None:
        t = self._transform()
        if t is not None and self.twin is not None and self.key is not None:
            self.twin.set_series_transform(self.key, with_landmarks(t, [], []))
            self.window_.mark_dirty()
        self.pending = None
        self._show()
        self._repaint_views()

    def align(self) -> None:
        """Place the series by the least-squares rigid transform of its landmark pairs."""
        from surgiplan.errors import BadInputError
        from surgiplan.registration.quality import rigid_from_landmarks

        t = self._transform()
        if t is None or self.twin is None or self.key is None:
            return
        ref, ser = stored_pairs(t)
        try:
            found = rigid_from_landmarks(ref, ser)
        except BadInputError as exc:
            self.readout.setText(str(exc))
            return
        self.twin.set_series_transform(self.key, with_landmarks(found, ref, ser))
        self.twin.provenance.notes.append(f"series {self.key!r} aligned on {len(ref)} landmarks")
        self.window_.mark_dirty()
        self.aligned()

    def aligned(self) -> None:
        """Hook for the dock: the transform changed (the overlay must be resampled)."""
        self._show()

    def initial_reference_to_series(self) -> np.ndarray | None:
        """A landmark start for registration (>= 3 pairs), else None."""
        from surgiplan.errors import BadInputError
        from surgiplan.registration.quality import rigid_from_landmarks

        t = self._transform()
        if t is None or len(stored_pairs(t)[0]) < 3:
            return None
        try:
            return rigid_from_landmarks(*stored_pairs(t)).matrix_from_reference
        except BadInputError:
            return None

    # ------------------------------------------------------------------ readout
    def _show(self) -> None:
        t = self._transform()
        n = 0 if t is None else len(stored_pairs(t)[0])
        self.align_button.setEnabled(n >= 3)
        if t is None:
            text = "Landmarks: choose a series."
        elif n == 0:
            text = "Landmarks: none."
        else:
            q = t.quality
            each = ", ".join(f"{e:.1f}" for e in self._per_pair(t))
            text = (f"Landmarks: {n} pair(s), TRE mean {q['tre_mean_mm']:.2f} mm, max "
                    f"{q['tre_max_mm']:.2f} mm ({each} mm).")
        if self.pick_button.isChecked():
            text += (" Click the same point on the series (the overlay)." if self.pending
                     is not None else " Click a landmark on the reference image.")
        self.readout.setText(text)

    @staticmethod
    def _per_pair(transform: SeriesTransform) -> list[float]:
        from surgiplan.registration.quality import landmark_error

        return list(landmark_error(transform, *stored_pairs(transform)).per_pair_mm)

    def _repaint_views(self) -> None:
        for view in self.window_.slice_views.values():
            view.update()

