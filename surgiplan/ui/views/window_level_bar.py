"""The window/level tool bar: typed width and level, and the presets of the volume's modality.

Values are in the image's units (HU for CT). The fields are bounded to the data range (see
:func:`surgiplan.ui.views.windowing.bounded_window`); presets come from
:func:`surgiplan.ui.views.windowing.presets_for`, so CT presets are offered on CT only.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QToolBar, QWidget

from surgiplan.model.volume import ImageVolume
from surgiplan.ui.views.windowing import WindowPreset, data_range, presets_for


class WindowLevelBar(QToolBar):
    """W and L fields plus a preset list; emits ``window_edited(center, width)``."""

    window_edited = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Window/level", parent)
        self.setObjectName("toolbar_window_level")
        self.presets: list[WindowPreset] = []
        self.width_spin = self._spin("window_width", "Window width (image units)")
        self.level_spin = self._spin("window_level", "Window level / centre (image units)")
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("window_presets")
        self.preset_combo.setToolTip("Window/level presets for this modality")
        self.preset_combo.activated.connect(self._preset_chosen)
        for label, widget in (("W", self.width_spin), ("L", self.level_spin)):
            self.addWidget(QLabel(f" {label} "))
            self.addWidget(widget)
        self.addWidget(self.preset_combo)
        self.set_volume(None)

    def _spin(self, name: str, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setObjectName(name)
        spin.setToolTip(tip)
        spin.setDecimals(1)
        spin.setKeyboardTracking(False)
        spin.setMinimumWidth(90)
        spin.valueChanged.connect(lambda _v: self._typed())
        return spin

    def set_volume(self, volume: ImageVolume | None) -> None:
        """Offer the ranges and presets of ``volume`` (None: disabled)."""
        self.presets = [] if volume is None else presets_for(volume)
        self.preset_combo.clear()
        self.preset_combo.addItem("Presets…")
        for preset in self.presets:
            self.preset_combo.addItem(f"{preset.name} ({preset.width:g}/{preset.center:g})")
        for widget in (self.width_spin, self.level_spin, self.preset_combo):
            widget.setEnabled(volume is not None)
        if volume is not None:
            lo, hi = data_range(volume)
            span = max(hi - lo, 1e-6)
            decimals = 1 if span > 50 else 4
            for spin in (self.width_spin, self.level_spin):
                spin.blockSignals(True)
                spin.setDecimals(decimals)
                spin.blockSignals(False)
            self._set_ranges(self.width_spin, span / 1000.0, 2.0 * span)
            self._set_ranges(self.level_spin, lo, hi)

    @staticmethod
    def _set_ranges(spin: QDoubleSpinBox, lo: float, hi: float) -> None:
        spin.blockSignals(True)
        spin.setRange(lo, hi)
        spin.setSingleStep(max((hi - lo) / 200.0, 10 ** -spin.decimals()))
        spin.blockSignals(False)

    def show_window(self, center: float, width: float) -> None:
        """Display the current window (no signal)."""
        for spin, value in ((self.level_spin, center), (self.width_spin, width)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def _typed(self) -> None:
        self.window_edited.emit(self.level_spin.value(), self.width_spin.value())

    def _preset_chosen(self, index: int) -> None:
        if 1 <= index <= len(self.presets):
            preset = self.presets[index - 1]
            self.window_edited.emit(preset.center, preset.width)
        self.preset_combo.setCurrentIndex(0)
