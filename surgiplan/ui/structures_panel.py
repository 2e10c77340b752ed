"""The structures list: name, role, colour swatch, visibility, opacity and safety margin.

Edits go to the twin through ``Twin.set_structure_properties`` (which emits the model event
the views redraw on); the panel itself rebuilds from the twin on :meth:`refresh`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.model.structures import Role, Structure
from surgiplan.model.twin import Twin

COLUMNS = ("Show", "Colour", "Name", "Role", "Opacity", "Margin mm")


def _swatch_style(color: tuple[float, float, float]) -> str:
    r, g, b = (round(c * 255) for c in color)
    return f"background-color: rgb({r},{g},{b}); border: 1px solid #444;"


class StructuresPanel(QWidget):
    """Table of the twin's structures plus the slice-overlay opacity and outline controls."""

    overlay_style_changed = Signal(float, bool)  # opacity 0..1, outline

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("structures_panel")
        self.twin: Twin | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Overlay"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.setToolTip("Opacity of structure overlays in the slice views")
        controls.addWidget(self.opacity_slider, 1)
        self.outline_box = QCheckBox("Outline")
        self.outline_box.setToolTip("Draw structures as outlines in the slice views (key o)")
        controls.addWidget(self.outline_box)
        layout.addLayout(controls)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.opacity_slider.valueChanged.connect(self._emit_style)
        self.outline_box.toggled.connect(self._emit_style)

    def _emit_style(self) -> None:
        self.overlay_style_changed.emit(self.opacity_slider.value() / 100.0,
                                        self.outline_box.isChecked())

    # ------------------------------------------------------------------ model -> widgets
    def set_twin(self, twin: Twin | None) -> None:
        self.twin = twin
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the rows from the twin's structures."""
        structures = [] if self.twin is None else list(self.twin.structures)
        self.table.setRowCount(len(structures))
        for row, s in enumerate(structures):
            self._fill_row(row, s)
        self.table.resizeColumnsToContents()

    def _fill_row(self, row: int, s: Structure) -> None:
        show = QCheckBox()
        show.setChecked(s.visible)
        show.toggled.connect(lambda on, n=s.name: self.set_property(n, visible=bool(on)))
        self.table.setCellWidget(row, 0, show)
        swatch = QToolButton()
        swatch.setStyleSheet(_swatch_style(s.color))
        swatch.setToolTip("Change colour")
        swatch.clicked.connect(lambda _=False, n=s.name: self._pick_color(n))
        self.table.setCellWidget(row, 1, swatch)
        item = QTableWidgetItem(s.name)
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        item.setToolTip(s.description or s.name)
        self.table.setItem(row, 2, item)
        role = QComboBox()
        role.addItems([r.value for r in Role])
        role.setCurrentText(s.role.value)
        role.currentTextChanged.connect(lambda v, n=s.name: self.set_property(n, role=v))
        self.table.setCellWidget(row, 3, role)
        opacity = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, decimals=2)
        opacity.setValue(s.opacity)
        opacity.valueChanged.connect(lambda v, n=s.name: self.set_property(n, opacity=float(v)))
        self.table.setCellWidget(row, 4, opacity)
        margin = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.5, decimals=1)
        margin.setValue(s.margin_mm)
        margin.setToolTip("Safety margin (mm): closer than this counts as caution")
        margin.valueChanged.connect(lambda v, n=s.name: self.set_property(n, margin_mm=float(v)))
        self.table.setCellWidget(row, 5, margin)

    def update_row(self, name: str) -> None:
        """Show a structure's current properties without re-emitting edits."""
        s = self.twin.structure(name)
        row = self.row_of(name)
        widgets = [self.table.cellWidget(row, c) for c in (0, 3, 4, 5)]
        for w in widgets:
            w.blockSignals(True)
        widgets[0].setChecked(s.visible)
        widgets[1].setCurrentText(s.role.value)
        widgets[2].setValue(s.opacity)
        widgets[3].setValue(s.margin_mm)
        for w in widgets:
            w.blockSignals(False)
        self.table.cellWidget(row, 1).setStyleSheet(_swatch_style(s.color))

    def row_of(self, name: str) -> int:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 2).text() == name:
                return row
        raise KeyError(name)

    def visibility_box(self, name: str) -> QCheckBox:
        return self.table.cellWidget(self.row_of(name), 0)

    # ------------------------------------------------------------------ widgets -> model
    def set_property(self, name: str, **props) -> None:
        if self.twin is not None:
            self.twin.set_structure_properties(name, **props)

    def _pick_color(self, name: str) -> None:
        s = self.twin.structure(name)
        start = QColor.fromRgbF(*s.color)
        color = QColorDialog.getColor(start, self, f"Colour of {name}")
        if color.isValid():
            self.set_property(name, color=(color.redF(), color.greenF(), color.blueF()))
            self.table.cellWidget(self.row_of(name), 1).setStyleSheet(
                _swatch_style(self.twin.structure(name).color))
