"""The structures list: visibility, colour swatch, editable name (anatomy completion), role,
opacity, safety margin (mm), the live volume (ml) and the review state of automatic structures
(automatic results stay flagged "unreviewed" in provenance and report until a person marks them).

Edits go through the Segment panel's editor when there is one (``editor_source``; undoable),
else straight to the twin; either way the twin emits the model event the views redraw on. The
main window calls :meth:`refresh` on structure events: rows are updated in place while the
list of structures is unchanged (cheap during a brush stroke), rebuilt otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.model.provenance import EDITED, REVIEWED
from surgiplan.model.structures import Role, Structure
from surgiplan.twin import Twin

COLUMNS = ("Show", "Colour", "Name", "Role", "Opacity", "Margin mm", "Volume ml", "Review")
NAME_COLUMN, VOLUME_COLUMN, REVIEW_COLUMN = 2, 6, 7


def reviewer_name() -> str:
    """Who is marking structures reviewed: the operating-system account name."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _swatch_style(color: tuple[float, float, float]) -> str:
    r, g, b = (round(c * 255) for c in color)
    return f"background-color: rgb({r},{g},{b}); border: 1px solid #444;"


def _anatomy_completer(parent: QWidget) -> QCompleter:
    from surgiplan.segmentation.anatomy_names import anatomy_names

    completer = QCompleter(sorted({a.name for a in anatomy_names()}), parent)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return completer


class StructuresPanel(QWidget):
    """Table of the twin's structures plus the slice-overlay opacity and outline controls."""

    overlay_style_changed = Signal(float, bool)  # opacity 0..1, outline
    structure_selected = Signal(str)  # name of the row the user picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("structures_panel")
        self.twin: Twin | None = None
        self.editor_source: Callable[[], Any] | None = None  # -> SegmentEditor | None
        self._names: list[str] = []
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
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.currentCellChanged.connect(self._row_picked)
        layout.addWidget(self.table, 1)
        self.opacity_slider.valueChanged.connect(self._emit_style)
        self.outline_box.toggled.connect(self._emit_style)

    def _emit_style(self) -> None:
        self.overlay_style_changed.emit(self.opacity_slider.value() / 100.0,
                                        self.outline_box.isChecked())

    def _row_picked(self, row: int, *_args) -> None:
        if 0 <= row < len(self._names):
            self.structure_selected.emit(self._names[row])

    # ------------------------------------------------------------------ model -> widgets
    def set_twin(self, twin: Twin | None) -> None:
        self.twin = twin
        self._names = []
        self.refresh()

    def refresh(self) -> None:
        """Show the twin's structures: update rows in place, or rebuild when the list changed."""
        structures = [] if self.twin is None else list(self.twin.structures)
        names = [s.name for s in structures]
        if names == self._names and self.table.rowCount() == len(names):
            for name in names:
                self.update_row(name)
            return
        self._names = names
        self.table.setRowCount(len(structures))
        for row, s in enumerate(structures):
            self._fill_row(row, s)
        self.table.resizeColumnsToContents()

    def _fill_row(self, row: int, s: Structure) -> None:
        show = QCheckBox()
        show.setChecked(s.visible)
        show.toggled.connect(lambda on, r=row: self._edit(r, visible=bool(on)))
        self.table.setCellWidget(row, 0, show)
        swatch = QToolButton()
        swatch.setStyleSheet(_swatch_style(s.color))
        swatch.setToolTip("Change colour")
        swatch.clicked.connect(lambda _=False, r=row: self._pick_color(self._names[r]))
        self.table.setCellWidget(row, 1, swatch)
        name = QLineEdit(s.name)
        name.setFrame(False)
        name.setToolTip("Name (anatomy names complete; they bring role, colour and margin)")
        name.setCompleter(_anatomy_completer(name))
        name.editingFinished.connect(lambda r=row, w=name: self._rename(r, w))
        self.table.setCellWidget(row, NAME_COLUMN, name)
        item = QTableWidgetItem(s.name)  # behind the editor: keeps the row findable by name
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.table.setItem(row, NAME_COLUMN, item)
        role = QComboBox()
        role.addItems([r.value for r in Role])
        role.setCurrentText(s.role.value)
        role.currentTextChanged.connect(lambda v, r=row: self._edit(r, role=v))
        self.table.setCellWidget(row, 3, role)
        opacity = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, decimals=2)
        opacity.setValue(s.opacity)
        opacity.valueChanged.connect(lambda v, r=row: self._edit(r, opacity=float(v)))
        self.table.setCellWidget(row, 4, opacity)
        margin = QDoubleSpinBox(minimum=0.0, maximum=100.0, singleStep=0.5, decimals=1)
        margin.setValue(s.margin_mm)
        margin.setToolTip("Safety margin (mm): closer than this counts as caution")
        margin.valueChanged.connect(lambda v, r=row: self._edit(r, margin_mm=float(v)))
        self.table.setCellWidget(row, 5, margin)
        volume = QTableWidgetItem("")
        volume.setFlags(volume.flags() & ~Qt.ItemFlag.ItemIsEditable)
        volume.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.table.setItem(row, VOLUME_COLUMN, volume)
        self._show_volume(row, s.name)
        review = QToolButton()
        review.setAutoRaise(True)
        review.clicked.connect(lambda _=False, r=row: self._review(r))
        self.table.setCellWidget(row, REVIEW_COLUMN, review)
        self._show_review(row, s.name)

    def _show_review(self, row: int, name: str) -> None:
        """Label the row's review button: '-' (drawn by hand), 'Mark reviewed' or '✓'."""
        button = self.table.cellWidget(row, REVIEW_COLUMN)
        entry = self.twin.provenance.automatic.get(name)
        if entry is None:
            button.setText("–")
            button.setEnabled(False)
            button.setToolTip("Drawn or imported by hand: no automatic method to review")
        elif entry.quality == REVIEWED:
            button.setText("✓ reviewed")
            button.setEnabled(False)
            button.setToolTip(f"Automatic ({entry.method}); reviewed by "
                              f"{entry.reviewed_by or 'unknown'} at {entry.changed_utc} UTC")
        else:
            edited = " (edited)" if entry.quality == EDITED else ""
            button.setText(f"Mark reviewed{edited}")
            button.setEnabled(True)
            button.setToolTip(f"Automatic ({entry.method}), {entry.quality}. Click after checking "
                              "it on every slice: the report then lists it as reviewed by you.")

    def review_text(self, name: str) -> str:
        return self.table.cellWidget(self.row_of(name), REVIEW_COLUMN).text()

    def review_button(self, name: str) -> QToolButton:
        return self.table.cellWidget(self.row_of(name), REVIEW_COLUMN)

    def _review(self, row: int) -> None:
        if self.twin is not None and 0 <= row < len(self._names):
            name = self._names[row]
            if name in self.twin.provenance.automatic:
                self.twin.mark_reviewed(name, by=reviewer_name())

    def _show_volume(self, row: int, name: str) -> None:
        ml = self.twin.volume_ml(name)
        self.table.item(row, VOLUME_COLUMN).setText(f"{ml:.2f}")
        self.table.item(row, VOLUME_COLUMN).setToolTip(
            f"{self.twin.voxel_count(name)} voxels, {ml * 1000:.0f} mm³")

    def update_row(self, name: str) -> None:
        """Show a structure's current properties and volume without re-emitting edits."""
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
        self._show_volume(row, name)
        self._show_review(row, name)

    def row_of(self, name: str) -> int:
        if name in self._names:
            return self._names.index(name)
        raise KeyError(name)

    def visibility_box(self, name: str) -> QCheckBox:
        return self.table.cellWidget(self.row_of(name), 0)

    def name_editor(self, name: str) -> QLineEdit:
        return self.table.cellWidget(self.row_of(name), NAME_COLUMN)

    def volume_text(self, name: str) -> str:
        return self.table.item(self.row_of(name), VOLUME_COLUMN).text()

    # ------------------------------------------------------------------ widgets -> model
    def _editor(self):
        editor = self.editor_source() if self.editor_source is not None else None
        return editor if editor is not None and editor.twin is self.twin else None

    def _edit(self, row: int, **props) -> None:
        if 0 <= row < len(self._names):
            self.set_property(self._names[row], **props)

    def set_property(self, name: str, **props) -> None:
        """Change role, color, margin_mm, visible or opacity (undoable through the editor)."""
        if self.twin is None:
            return
        editor = self._editor()
        if editor is not None:
            editor.set_properties(name, **props)
        else:
            self.twin.set_structure_properties(name, **props)

    def rename(self, old: str, new: str) -> bool:
        """Rename a structure; an anatomy name also sets its role, colour and margin.

        Returns False (and restores the shown name) when the new name is empty or taken.
        """
        from surgiplan.segmentation.anatomy_names import lookup_anatomy

        new = new.strip()
        if self.twin is None or new == old:
            return False
        if not new or new in self.twin.segmentation.names():
            self.name_editor(old).setText(old)
            return False
        entry = lookup_anatomy(new)
        props = {} if entry is None else {"role": entry.role, "color": entry.color,
                                          "margin_mm": entry.margin_mm}
        editor = self._editor()
        if editor is None:
            self.twin.rename_structure(old, new)
            if props:
                self.twin.set_structure_properties(new, **props)
            return True
        with editor.stroke(f"rename {old} to {new}"):
            editor.rename_structure(old, new)
            if props:
                editor.set_properties(new, **props)
        return True

    def _rename(self, row: int, widget: QLineEdit) -> None:
        if 0 <= row < len(self._names) and widget.text().strip() != self._names[row]:
            self.rename(self._names[row], widget.text())

    def _pick_color(self, name: str) -> None:
        s = self.twin.structure(name)
        start = QColor.fromRgbF(*s.color)
        color = QColorDialog.getColor(start, self, f"Colour of {name}")
        if color.isValid():
            self.set_property(name, color=(color.redF(), color.greenF(), color.blueF()))
            self.table.cellWidget(self.row_of(name), 1).setStyleSheet(
                _swatch_style(self.twin.structure(name).color))
