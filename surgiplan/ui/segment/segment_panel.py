"""The Segment panel: build and correct structures with the core's segmentation tools.

Every edit goes through one :class:`~surgiplan.segmentation.editor.SegmentEditor` per twin
(undo/redo by deltas). Whole-grid computations (threshold, morphology, islands, scissors,
region growing, presets, TotalSegmentator, import/export) run in the window's
:class:`~surgiplan.ui.widgets.jobs.JobRunner`; their result masks are applied on the GUI thread, and
the twin's events then refresh the slice overlays, the structures list and (in a worker) only
the edited structure's 3D surface.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.preset_merge import (
    ADD,
    KEEP,
    UPDATE,
    merge_actions,
    merge_summary,
)
from surgiplan.segmentation.presets import PRESETS
from surgiplan.ui.segment.segment_tools import (
    BoxTool,
    BrushTool,
    IslandTool,
    ScissorsTool,
    SeedTool,
    draw_box,
)
from surgiplan.ui.widgets.docks import FIXED_DOCK, add_dock
from surgiplan.ui.widgets.jobs import JobRunner

if TYPE_CHECKING:
    from surgiplan.model.structures import Segmentation
    from surgiplan.segmentation.editor import SegmentEditor
    from surgiplan.ui.shell.main_window import MainWindow

MaskFn = Callable[[np.ndarray, ImageGeometry], np.ndarray]

PRESET_NOTE = ("Assisted presets are STARTING POINTS: check every structure slice by slice "
               "and correct it before planning.")
AI_TITLE = "AI segmentation (TotalSegmentator)…"
TOOL_TITLES = {"paint": "Paint", "erase": "Erase", "grow": "Seeds", "scissors": "Scissors",
               "island": "Island", "box": "Box"}
TOOL_TIPS = {
    "paint": "Paint: left-drag adds a disc (or 3D sphere) of the brush radius",
    "erase": "Erase: left-drag removes a disc (or 3D sphere) of the brush radius",
    "grow": "Region growing: click seeds; the preview follows; Apply grow adds it",
    "scissors": "Scissors: click a polygon, double-click or Enter cuts, Escape cancels",
    "island": "Keep the clicked island of the structure",
    "box": "Draw the restriction box: drag in one view, then in an orthogonal one",
}
# (format, menu title, file filter or None for a folder, default name)
EXPORTS = (
    ("seg.nrrd", "3D Slicer segmentation (.seg.nrrd)…", "Slicer segmentation (*.seg.nrrd)",
     "structures.seg.nrrd"),
    ("nifti", "NIfTI label map + labels.json…", "NIfTI (*.nii.gz *.nii)", "structures.nii.gz"),
    ("nrrd", "NRRD label map + labels.json…", "NRRD (*.nrrd)", "structures.nrrd"),
    ("dicom-seg", "DICOM SEG…", "DICOM (*.dcm)", "structures.dcm"),
    ("dicom", "De-identified DICOM image series (PS3.15, new folder)…", None, ""),
    ("stl", "STL surfaces (LPS mm, one per structure)…", None, ""),
    ("obj", "OBJ surfaces (LPS mm)…", None, ""),
    ("ply", "PLY surfaces (LPS mm)…", None, ""),
    ("vtp", "VTP surfaces (LPS mm)…", None, ""),
)
# The core's threshold and assisted presets, named here so that building the panel does not
# import scipy (start-up time); tests check these match the core's tables.
THRESHOLD_NAMES = ("ct-bone", "ct-vessels", "ct-body", "mr-head")
ADAPTIVE_THRESHOLDS = ("ct-body", "mr-head")  # computed from the image, no fixed range
PRESET_TITLES = {name: preset.title for name, preset in PRESETS.items()}
IMPORT_FILTER = ("Segmentations (*.seg.nrrd *.nrrd *.nhdr *.nii *.nii.gz *.dcm);;"
                 "All files (*)")


def _spin(lo: float, hi: float, value: float, *, step: float = 1.0, decimals: int = 1,
          suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox(minimum=lo, maximum=hi, singleStep=step, decimals=decimals)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    return box


def _button(text: str, slot: Callable[[], Any], tip: str = "") -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(lambda _=False: slot())
    return button


def unique_name(name: str, taken: list[str]) -> str:
    """``name``, or ``name 2``, ``name 3``... when taken."""
    n, candidate = 2, name
    while candidate in taken:
        candidate, n = f"{name} {n}", n + 1
    return candidate


class SegmentPanel(QWidget):
    """Controls for the segmentation tools; owns the editor and the slice-view tools."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("segment_panel")
        self.window = window
        self._editor: SegmentEditor | None = None
        self._bridge = None
        self._grow_preview = None  # RegionGrowPreview of the current twin
        self._preview_serial = 0
        self._preview_job = None
        # previews get their own thread: never queued behind meshing or saving jobs
        self._preview_runner = JobRunner(self, max_threads=1)
        self.box_tool = BoxTool(self)
        self.seed_tool = SeedTool(self)
        self.scissors_tool = ScissorsTool(self)
        self.tools = {"paint": BrushTool(self), "erase": BrushTool(self, erase=True),
                      "grow": self.seed_tool, "scissors": self.scissors_tool,
                      "island": IslandTool(self), "box": self.box_tool}
        self.active_tool: str | None = None
        self._build()
        window.case_loaded.connect(self._twin_loaded)
        for view in window.slice_views.values():
            view.add_decoration(self._decorate)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(2, 2, 2, 2)
        for build in (self._build_structure_box, self._build_tools_box,
                      self._build_threshold_box, self._build_grow_box, self._build_fix_box,
                      self._build_logic_box, self._build_preset_box):
            layout.addWidget(build())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setObjectName("segment_message")
        layout.addWidget(self.message)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _build_structure_box(self) -> QGroupBox:
        from surgiplan.segmentation.anatomy_names import anatomy_names

        box = QGroupBox("Structure")
        grid = QGridLayout(box)
        self.structure_combo = QComboBox()
        self.structure_combo.setToolTip("The structure the tools edit")
        grid.addWidget(QLabel("Edit"), 0, 0)
        grid.addWidget(self.structure_combo, 0, 1, 1, 3)
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("new structure name (anatomy list)")
        completer = QCompleter(sorted({a.name for a in anatomy_names()}), self.new_name)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.new_name.setCompleter(completer)
        self.new_name.returnPressed.connect(self.add_structure)
        grid.addWidget(self.new_name, 1, 0, 1, 2)
        grid.addWidget(_button("Add", self.add_structure,
                               "Add an empty structure (anatomy names bring role, colour "
                               "and margin)"), 1, 2)
        grid.addWidget(_button("Remove", self.remove_structure, "Remove the structure "
                               "(undoable)"), 1, 3)
        self.undo_button = _button("Undo", self.undo, "Undo (Ctrl+Z)")
        self.redo_button = _button("Redo", self.redo, "Redo (Ctrl+Shift+Z / Ctrl+Y)")
        grid.addWidget(self.undo_button, 2, 0, 1, 2)
        grid.addWidget(self.redo_button, 2, 2, 1, 2)
        return box

    def _build_tools_box(self) -> QGroupBox:
        box = QGroupBox("Tools in the slice views (left button)")
        grid = QGridLayout(box)
        self.tool_buttons: dict[str, QToolButton] = {}
        for n, (name, title) in enumerate(TOOL_TITLES.items()):
            button = QToolButton(text=title, checkable=True)
            button.setToolTip(TOOL_TIPS[name])
            button.toggled.connect(partial(self._tool_toggled, name))
            grid.addWidget(button, n // 3, n % 3)
            self.tool_buttons[name] = button
        self.radius_spin = _spin(0.5, 100.0, 5.0, step=0.5, suffix=" mm")
        self.radius_spin.setToolTip("Brush radius (mm)")
        self.sphere_box = QCheckBox("3D sphere")
        self.sphere_box.setToolTip("Paint a ball through the slices instead of a disc")
        grid.addWidget(QLabel("Brush radius"), 2, 0)
        grid.addWidget(self.radius_spin, 2, 1)
        grid.addWidget(self.sphere_box, 2, 2)
        self.scissors_remove = QComboBox()
        self.scissors_remove.addItems(["remove inside", "remove outside"])
        self.scissors_slice_only = QCheckBox("this slice only")
        grid.addWidget(QLabel("Scissors"), 3, 0)
        grid.addWidget(self.scissors_remove, 3, 1)
        grid.addWidget(self.scissors_slice_only, 3, 2)
        self.overlap_box = QCheckBox("Keep other structures (overlap)")
        self.overlap_box.setToolTip(
            "Whole-structure edits (threshold, grow, logical...) that cover other structures "
            "leave them intact (the edited structure moves to its own layer). Unchecked: it takes "
            "their voxels. The brush always takes them.")
        self.overlap_box.setChecked(True)
        grid.addWidget(self.overlap_box, 4, 0, 1, 3)
        return box

    def _build_threshold_box(self) -> QGroupBox:
        box = QGroupBox("Threshold")
        grid = QGridLayout(box)
        self.threshold_preset = QComboBox()
        self.threshold_preset.addItem("custom", None)
        for name in THRESHOLD_NAMES:
            self.threshold_preset.addItem(name, name)
        self.threshold_preset.currentIndexChanged.connect(self._threshold_preset_chosen)
        self.lower_spin = _spin(-1e5, 1e5, 250.0, step=10.0)
        self.upper_spin = _spin(-1e5, 1e5, 1e5, step=10.0)
        self.within_combo = QComboBox()
        self.within_combo.setToolTip("Restrict the threshold to the box or to a structure")
        grid.addWidget(QLabel("Preset"), 0, 0)
        grid.addWidget(self.threshold_preset, 0, 1, 1, 3)
        grid.addWidget(QLabel("From"), 1, 0)
        grid.addWidget(self.lower_spin, 1, 1)
        grid.addWidget(QLabel("to"), 1, 2)
        grid.addWidget(self.upper_spin, 1, 3)
        grid.addWidget(QLabel("Within"), 2, 0)
        grid.addWidget(self.within_combo, 2, 1, 1, 3)
        grid.addWidget(_button("Apply threshold", self.apply_threshold,
                               "Replace the structure by the thresholded voxels"), 3, 0, 1, 4)
        return box

    def _build_grow_box(self) -> QGroupBox:
        box = QGroupBox("Region growing (Seeds tool)")
        grid = QGridLayout(box)
        self.grow_method = QComboBox()
        self.grow_method.addItems(["connected", "confidence"])
        self.grow_method.currentIndexChanged.connect(lambda _i: self.update_grow_preview())
        self.grow_multiplier = _spin(0.5, 10.0, 2.5, step=0.5, suffix=" SD")
        self.grow_multiplier.setToolTip("Interval around the seeds' mean, in standard deviations")
        self.grow_multiplier.valueChanged.connect(lambda _v: self.update_grow_preview())
        self.grow_label = QLabel("no seed")
        grid.addWidget(self.grow_method, 0, 0)
        grid.addWidget(self.grow_multiplier, 0, 1)
        grid.addWidget(self.grow_label, 1, 0, 1, 2)
        grid.addWidget(_button("Apply grow", self.apply_grow, "Add the grown region"), 2, 0)
        grid.addWidget(_button("Clear seeds", self.clear_seeds), 2, 1)
        return box

    def _build_fix_box(self) -> QGroupBox:
        box = QGroupBox("Islands, holes, margins, smoothing")
        grid = QGridLayout(box)
        grid.addWidget(_button("Keep largest", partial(self.run_op, "keep largest island")),
                       0, 0)
        self.min_island = _spin(0.0, 1e7, 100.0, step=50.0, decimals=0, suffix=" mm³")
        grid.addWidget(_button("Remove smaller than", partial(
            self.run_op, "remove small islands")), 0, 1)
        grid.addWidget(self.min_island, 0, 2)
        grid.addWidget(_button("Fill holes", partial(self.run_op, "fill holes")), 1, 0)
        self.margin_spin = _spin(0.1, 100.0, 2.0, step=0.5, suffix=" mm")
        grid.addWidget(_button("Grow", partial(self.run_op, "grow")), 1, 1)
        grid.addWidget(_button("Shrink", partial(self.run_op, "shrink")), 2, 1)
        grid.addWidget(self.margin_spin, 1, 2)
        self.smooth_method = QComboBox()
        self.smooth_method.addItems(["median", "opening", "closing"])
        self.smooth_radius = _spin(0.1, 50.0, 1.5, step=0.5, suffix=" mm")
        grid.addWidget(_button("Smooth", partial(self.run_op, "smooth")), 3, 0)
        grid.addWidget(self.smooth_method, 3, 1)
        grid.addWidget(self.smooth_radius, 3, 2)
        return box

    def _build_logic_box(self) -> QGroupBox:
        box = QGroupBox("Logical")
        row = QHBoxLayout(box)
        self.logic_op = QComboBox()
        self.logic_op.addItems(["union", "intersect", "subtract"])
        self.other_combo = QComboBox()
        self.other_combo.setToolTip("The other structure (the result goes to the edited one)")
        row.addWidget(self.logic_op)
        row.addWidget(self.other_combo, 1)
        row.addWidget(_button("Apply", partial(self.run_op, "logical")))
        return box

    def _build_preset_box(self) -> QGroupBox:
        box = QGroupBox("Assisted presets (one click)")
        layout = QVBoxLayout(box)
        for name, title in PRESET_TITLES.items():  # short label, the full title as tip
            button = _button(title.split(":")[0], partial(self.run_preset, name),
                             f"{title}.\n{PRESET_NOTE}")
            button.setObjectName(f"preset_{name}")
            layout.addWidget(button)
        note = QLabel(PRESET_NOTE)
        note.setObjectName("preset_note")
        note.setWordWrap(True)
        note.setStyleSheet("color: #d9a400;")
        layout.addWidget(note)
        self.ai_button = _button(AI_TITLE, self.run_ai)
        layout.addWidget(self.ai_button)
        return box

    # ------------------------------------------------------------------ twin and editor
    @property
    def editor(self) -> SegmentEditor | None:
        """The editor of the window's twin (a new one, with empty history, per twin)."""
        twin = self.window.twin
        if twin is None:
            return None
        if self._editor is None or self._editor.twin is not twin:
            from surgiplan.segmentation.editor import SegmentEditor

            self._editor = SegmentEditor(twin)
            self._grow_preview = None
        return self._editor

    def _twin_loaded(self, twin) -> None:
        from surgiplan.ui.widgets.twin_bridge import TwinEventBridge

        if self._bridge is not None:
            self._bridge.detach()
            self._bridge.deleteLater()
        self._bridge = TwinEventBridge(twin, self)
        self._bridge.event.connect(self._twin_event)
        self.clear_seeds()
        self.scissors_tool.clear()
        self.box_tool.reset(None)
        self._fill_combos()
        self._update_undo()

    def _twin_event(self, name: str, payload: dict) -> None:
        if name in ("structure_added", "structure_removed", "structure_renamed"):
            self._fill_combos(select=payload.get("name") if name != "structure_removed"
                              else None)
        self._update_undo()

    def _fill_combos(self, *, select: str | None = None) -> None:
        twin = self.window.twin
        names = [] if twin is None else twin.segmentation.names()
        current = select or self.structure_combo.currentText()
        within = self.within_combo.currentData()
        other = self.other_combo.currentText()
        for combo in (self.structure_combo, self.other_combo, self.within_combo):
            combo.blockSignals(True)
            combo.clear()
        self.structure_combo.addItems(names)
        self.other_combo.addItems(names)
        self.within_combo.addItem("whole image", None)
        self.within_combo.addItem("box (Box tool)", "box")
        for n in names:
            self.within_combo.addItem(f"inside {n}", n)
        if current in names:
            self.structure_combo.setCurrentText(current)
        if other in names:
            self.other_combo.setCurrentText(other)
        index = self.within_combo.findData(within)
        self.within_combo.setCurrentIndex(max(index, 0))
        for combo in (self.structure_combo, self.other_combo, self.within_combo):
            combo.blockSignals(False)

    def current_name(self) -> str | None:
        name = self.structure_combo.currentText()
        twin = self.window.twin
        return name if twin is not None and name in twin.segmentation.names() else None

    def select_structure(self, name: str) -> None:
        self.structure_combo.setCurrentText(name)

    def say(self, text: str) -> None:
        self.message.setText(text)
        self.window.statusBar().showMessage(text, 8000)

    # ------------------------------------------------------------------ undo
    def undo(self) -> None:
        editor = self.editor
        label = editor.undo() if editor is not None else None
        self.say(f"Undone: {label}" if label else "Nothing to undo")
        self._update_undo()

    def redo(self) -> None:
        editor = self.editor
        label = editor.redo() if editor is not None else None
        self.say(f"Redone: {label}" if label else "Nothing to redo")
        self._update_undo()

    def edit_finished(self) -> None:
        """A tool finished an edit (e.g. a brush stroke became one undo step)."""
        self._update_undo()

    def _update_undo(self) -> None:
        editor = self.editor
        history = None if editor is None else editor.history
        undo = None if history is None else history.undo_label
        redo = None if history is None else history.redo_label
        for widget, label, verb in ((self.undo_button, undo, "Undo"),
                                    (self.redo_button, redo, "Redo")):
            widget.setEnabled(label is not None)
            widget.setToolTip(f"{verb} {label}" if label else verb)
        actions = getattr(self, "undo_actions", None)
        if actions:
            actions[0].setEnabled(undo is not None)
            actions[0].setText(f"&Undo {undo}" if undo else "&Undo")
            actions[1].setEnabled(redo is not None)
            actions[1].setText(f"&Redo {redo}" if redo else "&Redo")

    # ------------------------------------------------------------------ structures
    def add_structure(self, name: str | None = None) -> str | None:
        """Add an empty structure (anatomy names bring their role, colour and margin)."""
        editor = self.editor
        if editor is None:
            self.say("Open a scan first")
            return None
        name = (name or self.new_name.text()).strip()
        taken = editor.twin.segmentation.names()
        name = unique_name(name or f"structure {len(taken) + 1}", taken)
        editor.add_from_anatomy(name)
        added = editor.twin.structures[-1].name
        self.new_name.clear()
        self._fill_combos(select=added)
        self.say(f"Added {added}: paint, threshold or grow it")
        return added

    def remove_structure(self) -> None:
        name, editor = self.current_name(), self.editor
        if name is not None and editor is not None:
            editor.remove_structure(name)
            self.say(f"Removed {name} (Undo brings it back)")

    # ------------------------------------------------------------------ tools
    def _tool_toggled(self, name: str, on: bool) -> None:
        if on:
            for other, button in self.tool_buttons.items():
                if other != name and button.isChecked():
                    button.setChecked(False)
            self.set_tool(name)
        elif self.active_tool == name:
            self.set_tool(None)

    def set_tool(self, name: str | None) -> None:
        """Give the slice views' left button to tool ``name`` (None: window/level)."""
        if self.active_tool == "scissors":
            self.scissors_tool.detach()
        self.active_tool = name
        if name == "scissors":
            self.scissors_tool.attach(list(self.window.slice_views.values()))
        self.window.set_slice_tool(None if name is None else self.tools[name])
        button = self.tool_buttons.get(name or "")
        if button is not None and not button.isChecked():
            button.setChecked(True)
        if name is None:
            for b in self.tool_buttons.values():
                b.blockSignals(True)
                b.setChecked(False)
                b.blockSignals(False)

    def brush_radius_mm(self) -> float:
        return float(self.radius_spin.value())

    def brush_is_sphere(self) -> bool:
        return self.sphere_box.isChecked()

    def set_box(self, box_zyx: tuple[slice, slice, slice]) -> None:
        sizes = [s.stop - s.start for s in box_zyx]
        self.within_combo.setCurrentIndex(self.within_combo.findData("box"))
        self.say(f"Box: {sizes[2]} x {sizes[1]} x {sizes[0]} voxels (threshold within it)")

    def _decorate(self, view, painter) -> None:
        if self.box_tool.bounds_ijk is not None and self.active_tool != "box" and \
                self.within_combo.currentData() == "box":
            draw_box(view, painter, self.box_tool.bounds_ijk)

    def _refresh_views(self) -> None:
        for view in self.window.slice_views.values():
            view.update()

    # ------------------------------------------------------------------ jobs
    def _run_mask_job(self, label: str, compute: MaskFn, *, name: str | None = None) -> bool:
        """Compute a new mask of the edited structure in a worker, then apply it (undoable)."""
        editor, name = self.editor, name or self.current_name()
        if editor is None or name is None:
            self.say("Add or pick a structure to edit first")
            return False
        twin = editor.twin
        mask = twin.segmentation.mask(name)  # a snapshot taken on the GUI thread

        def work(progress=None, cancel=None) -> np.ndarray:
            return compute(mask, twin.geometry)

        def done(new_mask: np.ndarray) -> None:
            if self._editor is editor and name in twin.segmentation.names():
                changed = self._apply_mask(editor, name, new_mask, f"{label} {name}")
                self.say(f"{label}: {name} now {twin.volume_ml(name):.2f} ml"
                         if changed else f"{label}: {name} unchanged")
                self._update_undo()

        self.window.runner.submit(f"{label.capitalize()} {name}", work, on_done=done,
                                  on_error=self.window.report_error)
        return True

    def _apply_mask(self, editor: SegmentEditor, name: str, mask: np.ndarray,
                    label: str) -> bool:
        """Make ``mask`` the structure's voxels (one undo step); with the overlap option, a
        mask covering other structures of its layer re-adds it on a layer of its own."""
        twin = editor.twin
        s = twin.structure(name)
        layer = twin.segmentation.layers[s.layer]
        covers_others = np.any(mask & (layer != 0) & (layer != s.label))
        if not (self.overlap_box.isChecked() and covers_others):
            return editor.replace_mask(name, mask, label=label)
        visible, opacity = s.visible, s.opacity
        with editor.stroke(label):
            editor.remove_structure(name)
            editor.add_structure(name, mask, role=s.role, color=s.color,
                                 margin_mm=s.margin_mm, description=s.description)
            if (visible, opacity) != (True, 1.0):
                editor.set_properties(name, visible=visible, opacity=opacity)
        return True

    def run_op(self, op: str) -> bool:
        """Run one of the whole-structure operations of the panel on the edited structure."""
        compute = self._op_function(op)
        return False if compute is None else self._run_mask_job(op, compute)

    def _op_function(self, op: str) -> MaskFn | None:
        from surgiplan.segmentation import islands, logical, morphology

        if op == "keep largest island":
            return lambda m, g: islands.keep_largest_island(m)
        if op == "remove small islands":
            mm3 = self.min_island.value()
            return lambda m, g: islands.remove_small_islands(m, g, min_volume_mm3=mm3)
        if op == "fill holes":
            return lambda m, g: morphology.fill_holes(m)
        margin = self.margin_spin.value()
        if op == "grow":
            return lambda m, g: morphology.grow_mask(m, g, margin)
        if op == "shrink":
            return lambda m, g: morphology.shrink_mask(m, g, margin)
        if op == "smooth":
            method, radius = self.smooth_method.currentText(), self.smooth_radius.value()
            return lambda m, g: morphology.smooth_mask(m, g, method=method, radius_mm=radius)
        if op == "logical":
            other = self.other_combo.currentText()
            twin = self.window.twin
            if twin is None or other not in twin.segmentation.names():
                self.say("Pick the other structure first")
                return None
            other_mask, kind = twin.segmentation.mask(other), self.logic_op.currentText()
            return lambda m, g: logical.combine_masks(m, other_mask, kind)
        raise ValueError(f"unknown operation {op!r}")

    def keep_island_at(self, point_lps: np.ndarray) -> None:
        from surgiplan.segmentation.islands import keep_island_at

        self._run_mask_job("keep clicked island",
                           lambda m, g: keep_island_at(m, g, point_lps))

    def scissors_cut(self, polygon_lps: np.ndarray, normal_lps: np.ndarray, *,
                     slice_spacing_mm: float) -> None:
        from surgiplan.segmentation.scissors import cut_with_polygon

        remove = "inside" if self.scissors_remove.currentIndex() == 0 else "outside"
        depth = None
        if self.scissors_slice_only.isChecked():
            half = 0.5 * slice_spacing_mm
            depth = (-half, half)
        self._run_mask_job(f"scissors ({remove})", lambda m, g: cut_with_polygon(
            m, g, polygon_lps, normal_lps, remove=remove, depth_mm=depth))

    # ------------------------------------------------------------------ threshold
    def _threshold_preset_chosen(self) -> None:
        from surgiplan.segmentation.threshold import THRESHOLD_PRESETS

        preset = THRESHOLD_PRESETS.get(self.threshold_preset.currentData() or "")
        if preset is None:
            return
        self.lower_spin.setValue(-1e5 if preset.lower is None else preset.lower)
        self.upper_spin.setValue(1e5 if preset.upper is None else preset.upper)
        adaptive = preset.name in ADAPTIVE_THRESHOLDS
        self.lower_spin.setEnabled(not adaptive)
        self.upper_spin.setEnabled(not adaptive)
        self.threshold_preset.setToolTip(preset.description)

    def _restriction(self) -> tuple[np.ndarray | None, tuple[slice, ...] | None]:
        """(mask, box) the threshold is limited to, from the Within choice."""
        choice, twin = self.within_combo.currentData(), self.window.twin
        if choice == "box":
            return None, self.box_tool.box_zyx()
        if choice and twin is not None and choice in twin.segmentation.names():
            return twin.segmentation.mask(choice), None
        return None, None

    def apply_threshold(self) -> bool:
        """Replace the edited structure by the threshold (preset or range) within the limit."""
        from surgiplan.segmentation import threshold

        twin = self.window.twin
        if twin is None:
            return False
        image = twin.image.array
        preset = self.threshold_preset.currentData()
        within, box = self._restriction()
        lower, upper = self.lower_spin.value(), self.upper_spin.value()
        if preset in ADAPTIVE_THRESHOLDS:
            def compute(m, g):
                return threshold.threshold_preset(preset, image, g, within=within, box=box)
        else:
            def compute(m, g):
                return threshold.threshold_mask(image, lower=lower, upper=upper,
                                                within=within, box=box)
        return self._run_mask_job(f"threshold {preset or f'{lower:g}..{upper:g}'}", compute)

    # ------------------------------------------------------------------ region growing
    def _grow_options(self) -> dict[str, Any]:
        return {"method": self.grow_method.currentText(),
                "multiplier": float(self.grow_multiplier.value()),
                "background_lps": [b.copy() for b in self.seed_tool.background]}

    def add_seed(self, point_lps: np.ndarray, *, background: bool = False) -> None:
        """A foreground seed, or (``background``) one marking what must stay out."""
        twin = self.window.twin
        if twin is None or not twin.geometry.contains_lps(point_lps[None])[0]:
            return
        seeds = self.seed_tool.background if background else self.seed_tool.seeds
        seeds.append(np.asarray(point_lps, float))
        self.update_grow_preview()

    def clear_seeds(self) -> None:
        self._preview_serial += 1
        self.seed_tool.seeds.clear()
        self.seed_tool.background.clear()
        self.seed_tool.preview_mask = None
        self.grow_label.setText("no seed")
        self._refresh_views()

    def update_grow_preview(self) -> None:
        """Grow from the seeds in a worker within the preview budget; stale results drop."""
        from surgiplan.progress import check
        from surgiplan.segmentation.region_grow import RegionGrowPreview

        seeds, twin = [s.copy() for s in self.seed_tool.seeds], self.window.twin
        if not seeds or twin is None:
            return
        if self._grow_preview is None or self._grow_preview.image is not twin.image.array:
            self._grow_preview = RegionGrowPreview(twin.image.array, twin.geometry)
        preview, options, shape = self._grow_preview, self._grow_options(), twin.geometry.shape_zyx
        self._preview_serial += 1
        serial = self._preview_serial
        if self._preview_job is not None:
            self._preview_job.cancel()

        def work(progress=None, cancel=None):
            check(cancel)
            result = preview.update(seeds, **options)
            check(cancel)
            return result, None if result.region is None else result.region.to_full(shape)

        self.grow_label.setText(f"{len(seeds)} seed(s): growing…")
        self._preview_job = self._preview_runner.submit(
            "Region-grow preview", work, on_done=partial(self._preview_ready, serial),
            on_error=self.window.report_error)

    def _preview_ready(self, serial: int, out) -> None:
        if serial != self._preview_serial:
            return  # a newer seed or option superseded this preview
        result, full = out
        self.seed_tool.preview_mask = full
        count = 0 if result.region is None else result.region.voxel_count
        ml = count * self.window.twin.geometry.voxel_volume_mm3 / 1000.0
        more = "" if result.complete else (
            " - stopped at the preview box (it leaks: Ctrl+click background seeds or narrow "
            "the interval); Apply adds exactly this")
        self.grow_label.setText(f"{len(self.seed_tool.seeds)} seed(s): {ml:.2f} ml "
                                f"in {result.seconds:.2f} s{more}")
        self._refresh_views()

    def apply_grow(self) -> bool:
        """Add what the preview shows (grown again in the preview's box, in a worker; the
        whole grid when no preview ran) to the current structure (undoable)."""
        from surgiplan.segmentation.region_grow import RegionGrowPreview

        editor, name, twin = self.editor, self.current_name(), self.window.twin
        seeds = [s.copy() for s in self.seed_tool.seeds]
        if editor is None or name is None or not seeds:
            self.say("Pick a structure and click seeds with the Seeds tool first")
            return False
        options = self._grow_options()
        preview = self._grow_preview
        if preview is None or preview.image is not twin.image.array:
            preview = RegionGrowPreview(twin.image.array, twin.geometry)

        def work(progress=None, cancel=None):
            return preview.commit(seeds, progress=progress, cancel=cancel, **options)

        def done(region) -> None:
            if self._editor is editor and name in twin.segmentation.names():
                editor.apply_region(name, region, label=f"region grow {name}")
                self.clear_seeds()
                self.say(f"Region grow: {name} now {twin.volume_ml(name):.2f} ml")
                self._update_undo()

        self.window.runner.submit("Region growing", work, on_done=done,
                                  on_error=self.window.report_error)
        return True

    # ------------------------------------------------------------------ adding structures
    def add_segmentation(self, seg: Segmentation, label: str, *,
                         only: set[str] | None = None) -> list[str]:
        """Add every structure of ``seg`` (same grid; those named in ``only`` when given) as
        one undoable step; taken names get a number ("tumour 2"). Returns the names added."""
        editor = self.editor
        if editor is None:
            return []
        from surgiplan.segmentation.anatomy_names import imported_style

        added: list[str] = []
        taken = {tuple(round(c, 3) for c in s.color) for s in editor.twin.structures}
        with editor.stroke(label):
            for s in seg.structures:
                if only is not None and s.name not in only:
                    continue
                mask = seg.mask(s.name)
                name = unique_name(s.name, editor.twin.segmentation.names())
                role, color, margin = imported_style(s.name, s.role, s.color, s.margin_mm,
                                                     taken)
                editor.add_structure(name, mask, role=role, color=color,
                                     margin_mm=margin, description=s.description)
                if s.opacity != 1.0:  # e.g. see-through no-go regions
                    editor.set_properties(name, opacity=s.opacity)
                added.append(name)
        self._fill_combos(select=added[0] if added else None)
        self._update_undo()
        return added

    def merge_preset(self, seg: Segmentation, preset: str) -> dict[str, str]:
        """Bring a preset's proposals into the twin as one undoable step: new names are added,
        untouched automatic structures of the same name updated, a person's kept (see
        :mod:`surgiplan.segmentation.preset_merge`). Returns name -> action."""
        editor = self.editor
        if editor is None:
            return {}
        twin = editor.twin
        actions = merge_actions(twin, seg.names())
        with editor.stroke(f"preset {preset}"):
            for name, action in actions.items():
                if action == UPDATE:
                    editor.replace_mask(name, seg.mask(name), overwrite_others=False,
                                        label=f"preset {preset}: {name}")
            self.add_segmentation(seg, f"preset {preset}",
                                  only={n for n, a in actions.items() if a == ADD})
        for name, action in actions.items():  # automatic results: method and quality flag
            if action != KEEP:
                twin.provenance.record_automatic(
                    name, f"preset {preset}: {seg.get(name).description}")
        self._fill_combos()
        self._update_undo()
        return actions

    def run_preset(self, preset: str) -> None:
        """One-click assisted preset (worker); its structures are starting points to correct."""
        from surgiplan.model.structures import Segmentation
        from surgiplan.segmentation.anatomy_names import lookup_anatomy
        from surgiplan.segmentation.presets import preset_masks

        twin = self.window.twin
        if twin is None:
            self.say("Open a scan first")
            return

        def work(progress=None, cancel=None) -> Segmentation:
            seg = Segmentation(geometry=twin.geometry)
            for p in preset_masks(twin.image, preset, progress=progress, cancel=cancel):
                entry = lookup_anatomy(p.name)
                seg.add(p.name, p.mask, role=p.role, description=p.description,
                        color=entry.color if entry else None,
                        margin_mm=entry.margin_mm if entry else 0.0).opacity = p.opacity
            return seg

        def done(seg: Segmentation) -> None:
            if twin is self.window.twin:
                actions = self.merge_preset(seg, preset)
                self.say(f"Preset {preset}: {merge_summary(actions)}. {PRESET_NOTE}")

        self.window.runner.submit(f"Preset {preset}", work, on_done=done,
                                  on_error=self.window.report_error)

    # ------------------------------------------------------------------ AI plug-in
    def refresh_ai_availability(self) -> bool:
        """Enable the TotalSegmentator entries, or disable them with the reason shown."""
        from surgiplan.ai.totalsegmentator import availability

        state = availability()
        for widget in (self.ai_button, getattr(self, "ai_action", None)):
            if widget is None:
                continue
            widget.setEnabled(state.available)
            widget.setToolTip(state.reason)
            widget.setStatusTip(state.reason)
        return state.available

    def run_ai(self) -> None:
        """Run TotalSegmentator in a child process (worker thread) and import by name."""
        from surgiplan.ai.totalsegmentator import run_totalsegmentator

        twin = self.window.twin
        if twin is None or not self.refresh_ai_availability():
            return
        warnings: list[str] = []

        def work(progress=None, cancel=None):
            return run_totalsegmentator(twin.image, warnings_out=warnings, progress=progress,
                                        cancel=cancel)

        def done(seg) -> None:
            if twin is self.window.twin:
                names = self.add_segmentation(seg, "TotalSegmentator")
                for n in names:  # automatic results: method and quality flag in provenance
                    twin.provenance.record_automatic(n, twin.structure(n).description)
                self.say(f"TotalSegmentator added {len(names)} structures. "
                         + " ".join(warnings))

        self.window.runner.submit("TotalSegmentator", work, on_done=done,
                                  on_error=self.window.report_error)

    # ------------------------------------------------------------------ import / export
    def import_segmentation(self, path: str | Path, *,
                            label_names: str | Path | None = None) -> None:
        """Import a label file (seg.nrrd, NRRD/NIfTI label map, DICOM SEG, RTSTRUCT, mask
        folder) onto the image grid in a worker; its structures are added as one step."""
        from surgiplan.io.twin_build import add_label_input
        from surgiplan.model.structures import Segmentation

        twin, path = self.window.twin, Path(path)
        if twin is None:
            self.say("Open the scan the segmentation belongs to first")
            return
        warnings: list[str] = []

        def work(progress=None, cancel=None) -> Segmentation:
            seg = Segmentation(geometry=twin.geometry)
            add_label_input(seg, path, label_names=label_names, warnings=warnings,
                            cancel=cancel)
            return seg

        def done(seg: Segmentation) -> None:
            if twin is self.window.twin:
                names = self.add_segmentation(seg, f"import {path.name}")
                self.say(f"Imported {len(names)} structure(s) from {path.name}. "
                         + " ".join(warnings))

        self.window.runner.submit(f"Importing {path.name}", work, on_done=done,
                                  on_error=self.window.report_error)

    def export_segmentation(self, fmt: str, out: str | Path) -> None:
        """Write the structures as ``fmt`` (see ``twin_export.EXPORT_FORMATS``) in a worker."""
        from surgiplan.io.twin_export import export_twin

        twin = self.window.twin
        if twin is None:
            return

        def work(progress=None, cancel=None) -> list[Path]:
            return export_twin(twin, fmt, out, progress=progress, cancel=cancel)

        def done(files: list[Path]) -> None:
            self.say(f"Exported {len(files)} file(s) to {Path(out)}"
                     + (" (LPS mm)" if fmt in ("stl", "obj", "ply", "vtp") else ""))

        self.window.runner.submit(f"Exporting {fmt}", work, on_done=done,
                                  on_error=self.window.report_error)

    def choose_import(self, *, with_names: bool = False) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import segmentation", "", IMPORT_FILTER)
        if not path:
            return
        names = None
        if with_names:
            names, _ = QFileDialog.getOpenFileName(
                self, "Label names (labels.json: value -> name)", str(Path(path).parent),
                "Label names (*.json);;All files (*)")
            if not names:
                return
        self.import_segmentation(path, label_names=names or None)

    def choose_export(self, fmt: str, file_filter: str | None, default: str) -> None:
        if file_filter is None:
            out = QFileDialog.getExistingDirectory(
                self, f"Folder for the {fmt.upper()} surfaces (LPS mm, one per structure)")
        else:
            out, _ = QFileDialog.getSaveFileName(self, f"Export {fmt}", default, file_filter)
        if out:
            self.export_segmentation(fmt, out)


def _menu_action(window: MainWindow, menu, text: str, slot, shortcuts=()) -> QAction:
    action = QAction(text, window)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    action.triggered.connect(lambda _=False: slot())
    menu.addAction(action)
    return action


def _find_menu(window: MainWindow, title: str):
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    return None


def install_segment_panel(window: MainWindow) -> SegmentPanel:
    """Add the Segment dock, the Edit (undo/redo) and Segment menus and File import/export."""
    panel = SegmentPanel(window)
    panel.setMinimumWidth(340)
    add_dock(window, "Segment", panel, name="dock_segment",
             area=Qt.DockWidgetArea.RightDockWidgetArea, features=FIXED_DOCK)
    _install_menus(window, panel)
    window.structures_panel.editor_source = lambda: panel.editor
    window.structures_panel.structure_selected.connect(panel.select_structure)
    QTimer.singleShot(0, panel, panel.refresh_ai_availability)
    return panel


def _install_menus(window: MainWindow, panel: SegmentPanel) -> None:
    bar = window.menuBar()
    view_menu = _find_menu(window, "View")
    edit = bar.insertMenu(view_menu.menuAction(), _new_menu(window, "&Edit")) \
        if view_menu is not None else bar.addMenu("&Edit")
    edit_menu = edit.menu() if isinstance(edit, QAction) else edit
    panel.undo_actions = (
        _menu_action(window, edit_menu, "&Undo", panel.undo, ("Ctrl+Z",)),
        _menu_action(window, edit_menu, "&Redo", panel.redo, ("Ctrl+Shift+Z", "Ctrl+Y")),
    )
    segment = bar.addMenu("&Segment")
    for name, preset_title in PRESET_TITLES.items():
        _menu_action(window, segment, f"Preset: {preset_title}", partial(panel.run_preset, name))
    segment.addSeparator()
    panel.ai_action = _menu_action(window, segment, AI_TITLE, panel.run_ai)
    file_menu = _find_menu(window, "File")
    if file_menu is None:
        return
    quit_action = file_menu.actions()[-1]
    imp = _new_menu(window, "&Import segmentation")
    _menu_action(window, imp, "Segmentation file (seg.nrrd, label map, DICOM SEG, "
                 "RTSTRUCT)…", panel.choose_import)
    _menu_action(window, imp, "Label map + names file…",
                 partial(panel.choose_import, with_names=True))
    exp = _new_menu(window, "&Export segmentation")
    for fmt, title, file_filter, default in EXPORTS:
        _menu_action(window, exp, title, partial(panel.choose_export, fmt, file_filter, default))
    file_menu.insertMenu(quit_action, imp)
    file_menu.insertMenu(quit_action, exp)
    file_menu.insertSeparator(quit_action)
    panel._update_undo()


def _new_menu(window: MainWindow, title: str):
    from PySide6.QtWidgets import QMenu

    return QMenu(title, window)

