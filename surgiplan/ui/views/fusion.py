"""Fused display of a twin's further series in the slice views (issue 18), and its dock.

A further series is resampled once onto the reference grid through its transform
(:func:`surgiplan.registration.carry.series_image_on_reference`) and drawn in every slice view
under the structures, with its own window/level: *blend* (opacity fade from the reference to
the series), *checkerboard* (alternating blocks) or *flicker* (the series shown and hidden
every half second). The Fusion dock chooses the series, the opacity and the mode, adds a scan
as a series, and registers it (rigid, Mattes mutual information) in a worker with progress and
cancel; the similarity metric before/after is shown. Manual nudge: move the series by 1 mm
or turn it by 1 degree about the reference grid's centre along/about L, P or S; the overlay
follows at once (the transform's method then says "manual"). The overlay has its own window
(centre, width), kept per series. Landmark pairs (:mod:`~surgiplan.ui.views.fusion_landmarks`)
give the transform's target registration error and can align the series or start its
registration; a follow-up's structure changes are measured in
:mod:`~surgiplan.ui.views.fusion_longitudinal`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from surgiplan.twin import Twin, TwinSeries
from surgiplan.ui.views.fusion_landmarks import LandmarkPanel, with_landmarks
from surgiplan.ui.views.fusion_longitudinal import LongitudinalPanel
from surgiplan.ui.views.windowing import to_grey
from surgiplan.ui.widgets.docks import add_dock

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

MODES = ("blend", "checkerboard", "flicker")
CHECKER_PIXELS = 16
FLICKER_MS = 500


@dataclass(frozen=True)
class FusionLayer:
    """A series on the reference grid (float32 ``(nz, ny, nx)``, 0 outside its field of view)
    with its window (centre, width), opacity (0..1) and mode."""

    key: str
    array: np.ndarray
    window: tuple[float, float]
    opacity: float = 0.5
    mode: str = "blend"
    shown: bool = True  # flicker: the half-period the series is hidden


def fuse_grey(base: np.ndarray, overlay_values: np.ndarray, layer: FusionLayer) -> np.ndarray:
    """The grey slice (uint8) with ``overlay_values`` (series values on the same pixels) fused
    as ``layer`` says."""
    over = to_grey(overlay_values, *layer.window).astype(np.float32)
    if not layer.shown:
        return base
    if layer.mode == "checkerboard":
        rows, cols = np.indices(base.shape)
        cells = ((rows // CHECKER_PIXELS) + (cols // CHECKER_PIXELS)) % 2 == 1
        return np.where(cells, over, base.astype(np.float32)).astype(np.uint8)
    alpha = 1.0 if layer.mode == "flicker" else float(np.clip(layer.opacity, 0.0, 1.0))
    return np.clip(base * (1.0 - alpha) + over * alpha + 0.5, 0, 255).astype(np.uint8)


def series_window(entry: TwinSeries) -> tuple[float, float]:
    from surgiplan.ui.views.windowing import default_window

    return default_window(entry.image)


class FusionPanel(QWidget):
    """Choose the series fused over the reference, its opacity and mode; add and register."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window_ = window
        self.twin: Twin | None = None
        self.layer: FusionLayer | None = None
        self._resampled: dict[str, np.ndarray] = {}
        self._windows: dict[str, tuple[float, float]] = {}  # overlay window per series
        self.series_box = QComboBox()
        self.series_box.setObjectName("fusion_series")
        self.series_box.currentIndexChanged.connect(self._series_chosen)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setObjectName("fusion_opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(self._style_changed)
        self.mode_box = QComboBox()
        self.mode_box.setObjectName("fusion_mode")
        self.mode_box.addItems(MODES)
        self.mode_box.currentIndexChanged.connect(self._style_changed)
        self.window_centre = QDoubleSpinBox()
        self.window_centre.setObjectName("fusion_window_centre")
        self.window_width = QDoubleSpinBox()
        self.window_width.setObjectName("fusion_window_width")
        for box in (self.window_centre, self.window_width):
            box.setRange(-1e6, 1e6)
            box.setDecimals(1)
            box.setSingleStep(10.0)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(self._window_changed)
        self.window_width.setMinimum(1.0)
        self.landmarks = LandmarkPanel(window)
        self.landmarks.aligned = self._transform_changed  # type: ignore[method-assign]
        self.longitudinal = LongitudinalPanel(window)
        self.add_button = QPushButton("Add series...")
        self.add_button.clicked.connect(self._choose_series)
        self.register_button = QPushButton("Register (rigid, mutual information)")
        self.register_button.setObjectName("fusion_register")
        self.register_button.clicked.connect(self.register_current)
        self.axis_box = QComboBox()
        self.axis_box.setObjectName("fusion_axis")
        self.axis_box.addItems(["L", "P", "S"])
        self.nudge_buttons: dict[str, QPushButton] = {}
        nudges = QHBoxLayout()
        nudges.addWidget(self.axis_box)
        for label in ("-1 mm", "+1 mm", "-1 deg", "+1 deg"):
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, text=label: self.nudge_step(text))
            self.nudge_buttons[label] = button
            nudges.addWidget(button)
        self.quality = QLabel("No further series. Add a scan of the same patient.")
        self.quality.setWordWrap(True)
        self.quality.setObjectName("fusion_quality")
        self._flicker = QTimer(self, interval=FLICKER_MS)
        self._flicker.timeout.connect(self._flip)
        form = QFormLayout()
        form.addRow("Overlay series", self.series_box)
        form.addRow("Opacity", self.opacity)
        form.addRow("Mode", self.mode_box)
        levels = QHBoxLayout()
        levels.addWidget(QLabel("centre"))
        levels.addWidget(self.window_centre)
        levels.addWidget(QLabel("width"))
        levels.addWidget(self.window_width)
        form.addRow("Overlay window", levels)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.register_button)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(QLabel("Nudge the series (LPS, about the image centre):"))
        column.addLayout(nudges)
        column.addWidget(self.quality)
        column.addWidget(QLabel("<b>Landmark pairs</b> (reference, then the same point on the "
                                "series):"))
        column.addWidget(self.landmarks)
        column.addWidget(QLabel("<b>Follow-up</b>: structure change against baseline"))
        column.addWidget(self.longitudinal)
        column.addStretch(1)
        self._enable()

    # ------------------------------------------------------------------ twin
    def set_twin(self, twin: Twin | None) -> None:
        self.twin = twin
        self._resampled.clear()
        self._windows.clear()
        self._fill()

    def _fill(self, select: str | None = None) -> None:
        self.series_box.blockSignals(True)
        self.series_box.clear()
        self.series_box.addItem("(none)", None)
        for entry in [] if self.twin is None else self.twin.series:
            self.series_box.addItem(f"{entry.key} ({entry.image.modality})", entry.key)
        index = self.series_box.findData(select) if select else 0
        self.series_box.setCurrentIndex(max(index, 0))
        self.series_box.blockSignals(False)
        self._series_chosen()

    def current_key(self) -> str | None:
        key = self.series_box.currentData()
        return None if key is None else str(key)

    def _enable(self) -> None:
        has_twin = self.twin is not None
        self.add_button.setEnabled(has_twin)
        self.register_button.setEnabled(has_twin and self.current_key() is not None)
        for button in self.nudge_buttons.values():
            button.setEnabled(has_twin and self.current_key() is not None)

    # ------------------------------------------------------------------ display
    def _series_chosen(self, *_: Any) -> None:
        key = self.current_key()
        self._enable()
        if key is None or self.twin is None:
            self.layer = None
        else:
            entry = self.twin.series_by_key(key)
            window = self._windows.setdefault(key, series_window(entry))
            self.layer = FusionLayer(key, self._on_reference(key), window)
            self._show_quality(entry)
            for box, value in zip((self.window_centre, self.window_width), window, strict=True):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
        for box in (self.window_centre, self.window_width):
            box.setEnabled(self.layer is not None)
        self.landmarks.set_series(self.twin, key)
        self.longitudinal.set_series(self.twin, key)
        self._style_changed()

    def set_overlay_window(self, centre: float, width: float) -> None:
        """The overlay series' own window (its units: HU for CT, MR signal...)."""
        self.window_centre.setValue(centre)
        self.window_width.setValue(width)

    def _window_changed(self, *_: Any) -> None:
        if self.layer is None:
            return
        window = (self.window_centre.value(), max(self.window_width.value(), 1.0))
        self._windows[self.layer.key] = window
        self.layer = replace(self.layer, window=window)
        self._apply()

    def _transform_changed(self) -> None:
        """The chosen series' transform changed (landmark alignment): resample and show."""
        key = self.current_key()
        if key is not None:
            self._resampled.pop(key, None)
        self._series_chosen()

    def _on_reference(self, key: str) -> np.ndarray:
        from surgiplan.registration.carry import series_image_on_reference

        if key not in self._resampled and self.twin is not None:
            self._resampled[key] = series_image_on_reference(self.twin, key)
        return self._resampled[key]

    def _style_changed(self, *_: Any) -> None:
        mode = self.mode_box.currentText()
        if self.layer is not None:
            self.layer = replace(self.layer, opacity=self.opacity.value() / 100.0, mode=mode,
                                 shown=True)
        if mode == "flicker" and self.layer is not None:
            self._flicker.start()
        else:
            self._flicker.stop()
        self._apply()

    def _flip(self) -> None:
        if self.layer is not None:
            self.layer = replace(self.layer, shown=not self.layer.shown)
            self._apply()

    def _apply(self) -> None:
        for view in self.window_.slice_views.values():
            view.set_fusion(self.layer)

    def _show_quality(self, entry: TwinSeries) -> None:
        t, q = entry.transform, entry.transform.quality
        text = (f"{entry.key}: {t.kind} transform, rotation {t.rotation_deg():.2f} deg, "
                f"translation {t.translation_mm():.1f} mm.")
        if "metric_after" in q:
            text += (f" {q['metric']}: {q['metric_before']:.3f} -> {q['metric_after']:.3f} "
                     "(lower is better).")
        if "tre_mean_mm" in q:
            text += f" Landmark error {q['tre_mean_mm']:.2f} mm mean, {q['tre_max_mm']:.2f} max."
        else:
            text += " Landmark error: not measured."
        self.quality.setText(text)

    # ------------------------------------------------------------------ series and registration
    def _choose_series(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "DICOM folder of a further series")
        if folder:
            self.add_series_from_path(Path(folder))

    def add_series_from_path(self, path: Path, key: str | None = None) -> None:
        """Load a scan (worker) and add it as a series with the identity transform (register it
        next); the new series is shown fused."""
        from surgiplan.io.twin_build import load_image

        twin = self.twin
        if twin is None:
            return
        taken = {s.key for s in twin.series}
        key = key or next(f"series-{n}" for n in range(1, 1000) if f"series-{n}" not in taken)

        def done(image: Any) -> None:
            twin.add_series(TwinSeries(key, image, role=""))
            self.window_.mark_dirty()
            self._fill(select=key)

        self.window_.runner.submit(
            f"loading series {key}",
            lambda progress, cancel: load_image(path, progress=progress, cancel=cancel),
            on_done=done, on_error=self._failed)

    def register_current(self) -> None:
        """Register the chosen series to the reference (rigid) in a worker; progress and
        cancel in the status bar."""
        from surgiplan.registration.engine import RegistrationSettings, metric_for, register_volumes

        key, twin = self.current_key(), self.twin
        if key is None or twin is None:
            return
        entry = twin.series_by_key(key)

        start = self.landmarks.initial_reference_to_series()  # >= 3 pairs: a landmark start
        marks = entry.transform.quality.get("landmarks") or {}

        def done(result: Any) -> None:
            found = result.transform.with_quality(seconds=result.seconds,
                                                  landmark_start=start is not None)
            twin.set_series_transform(key, with_landmarks(
                found, marks.get("reference_lps", []), marks.get("series_lps", [])))
            twin.provenance.notes.append(f"series {key!r} registered: {result.transform.method}")
            self._resampled.pop(key, None)
            self.window_.mark_dirty()
            self._fill(select=key)

        self.window_.runner.submit(
            f"registering {key}",
            lambda progress, cancel: register_volumes(
                twin.image, entry.image,
                RegistrationSettings(metric=metric_for(twin.image, entry.image)),
                initial_reference_to_series=start, progress=progress, cancel=cancel),
            on_done=done, on_error=self._failed)

    def nudge_step(self, label: str) -> None:
        """One nudge from a button label ("+1 mm", "-1 deg"...) along the chosen axis."""
        sign = -1.0 if label.startswith("-") else 1.0
        axis = np.zeros(3)
        axis["LPS".index(self.axis_box.currentText())] = sign
        if label.endswith("deg"):
            self.nudge(rotation_deg=axis)
        else:
            self.nudge(translation_mm=axis)

    def nudge(self, *, translation_mm: Any = (0.0, 0.0, 0.0),
              rotation_deg: Any = (0.0, 0.0, 0.0)) -> None:
        """Move the chosen series in the reference frame (mm, degrees about L, P, S through the
        reference grid's centre) and show it at once."""
        from surgiplan.model.series_transform import SeriesTransform, rigid_matrix

        key, twin = self.current_key(), self.twin
        if key is None or twin is None:
            return
        old = twin.series_by_key(key).transform
        step = rigid_matrix(rotation_deg, translation_mm, twin.geometry.slice_centre_lps())
        kind = "rigid" if old.kind in ("identity", "rigid") else "affine"
        if old.deformation_tfm is not None:
            self.quality.setText("A deformable transform cannot be nudged: register again.")
            return
        marks = old.quality.get("landmarks") or {}
        moved = with_landmarks(
            SeriesTransform(step @ old.matrix_to_reference, kind=kind,
                            method=f"manual: nudged from ({old.method})"),
            marks.get("reference_lps", []), marks.get("series_lps", []))
        twin.set_series_transform(key, moved)
        twin.provenance.notes.append(f"series {key!r} nudged by hand")
        self._resampled.pop(key, None)
        self.window_.mark_dirty()
        self._series_chosen()

    def _failed(self, exc: BaseException) -> None:
        self.quality.setText(f"Failed: {exc}")


def install_fusion(window: MainWindow) -> FusionPanel:
    """Add the Fusion dock (right, beside Measure) and follow the window's case."""
    panel = FusionPanel(window)
    add_dock(window, "Fusion", panel, name="dock_fusion",
             area=Qt.DockWidgetArea.RightDockWidgetArea, beside=("dock_measure", "dock_segment"))
    segment = window.findChild(QDockWidget, "dock_segment")
    if segment is not None:
        segment.raise_()  # Segment stays the tab in front at start; Fusion is a tab beside it
    window.case_loaded.connect(panel.set_twin)
    return panel
