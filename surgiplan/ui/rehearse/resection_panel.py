"""The resection panel: organ, target and margin, a cutting plane dragged in slice views or with
the 3D plane handle; live volumes/remnant/margin while dragging, the full run (Monte Carlo over
the boundaries, specimen and remnant surfaces) on release; "Create specimen/remnant
structures" writes them into the twin (one undo step through the Segment panel's editor).

The plane removes the side its normal points to (the ``--plane`` convention of the CLI). The
organ is prepared once per organ/target in a worker (``prepare``); then the resection
simulator's ``live(prepared, cut)`` re-scores in milliseconds to tens of milliseconds (seconds on
a large organ): a drag frame scores on the GUI thread while the last score was cheap, else in a
worker (latest position wins), so the plane moves on the slices at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from surgiplan.model.structures import Role
from surgiplan.simulation import ResectionInput, SimulationResult
from surgiplan.simulation.capabilities import HANDLES, LIVE, STRUCTURES
from surgiplan.ui.plan.planning_panel import wrapped_label
from surgiplan.ui.rehearse.curved_cut import (
    CURVE_MESH_SPACING_MM,
    curve_cut,
    install_curve,
    set_curve_heights,
)
from surgiplan.ui.rehearse.rehearsal_panels import (
    RehearsalPanel,
    format_point,
    mm_spin,
    named_combo,
)
from surgiplan.ui.rehearse.rehearsal_tools import CutPlane, PlaneDecoration, PlaneTool

NO_TARGET = "(none)"
CUT_MESH_SPACING_MM = 50.0  # a plane needs few vertices; the simulator samples it itself


ORGAN_PAD_MM = 10.0


def organ_bounds_lps(twin: Any, name: str) -> np.ndarray:
    """The organ's LPS bounding box ((2, 3): min, max) padded by ORGAN_PAD_MM: the drawn cut
    surface covers the organ, not the whole scan (the image box when the organ is empty)."""
    idx = np.argwhere(twin.segmentation.mask(name))
    if not len(idx):
        return twin.geometry.bounds_lps()
    lo, hi = idx.min(axis=0)[::-1], idx.max(axis=0)[::-1]
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])], float)
    lps = twin.geometry.index_to_lps(corners)
    return np.stack([lps.min(axis=0) - ORGAN_PAD_MM, lps.max(axis=0) + ORGAN_PAD_MM])


def accepts(fn: Any, keyword: str) -> bool:
    """Whether ``fn`` takes the keyword argument ``keyword``."""
    import inspect

    try:
        return keyword in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def box_lps(twin: Any, name: str, pad_mm: float = 0.0) -> np.ndarray:
    """(2, 3) LPS box of a structure's voxel centres, padded."""
    idx = np.argwhere(twin.segmentation.mask(name))
    corners = twin.geometry.index_to_lps(np.array([idx.min(0), idx.max(0)])[:, ::-1]
                                         .astype(float))
    return np.vstack([corners.min(0) - pad_mm, corners.max(0) + pad_mm])


class ResectionPanel(RehearsalPanel):
    """Resection rehearsal (see the module docstring)."""

    kind = "resection"
    preferred_id = "resection"
    needs = (HANDLES,)  # the dragged plane is the simulator's cut
    hint = ("Choose the organ and target; drag the cutting plane in a slice view (the knob "
            "rotates it) or with the 3D plane handle. The side the arrow points to is removed.")

    def __init__(self, window, parent=None) -> None:
        self.plane = CutPlane()
        self.tool = PlaneTool(self.plane)
        self.decoration = PlaneDecoration(self.plane)
        self.prepared = None
        self._prepared_key: tuple | None = None
        self._dragging = False
        self._live_geometry = None
        self._organ_box: tuple[tuple | None, np.ndarray | None] = (None, None)
        self._prepare_gen = 0
        super().__init__(window, parent)
        self._attach_placement(self.plane, self.decoration, self._plane_changed)

    # ------------------------------------------------------------------ construction
    def capabilities_changed(self) -> None:
        self.create_button.setEnabled(self.supports(STRUCTURES))

    def _inputs_box(self) -> QGroupBox:
        box = QGroupBox("Resection")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.organ_combo = named_combo("resection_organ")
        self.target_combo = named_combo("resection_target")
        self.margin_spin = mm_spin(0.0, 50.0, 10.0, name="resection_margin")
        self.use_plane = QCheckBox("Cut along the plane")
        self.use_plane.setChecked(True)
        form.addRow("Organ", self.organ_combo)
        form.addRow("Target", self.target_combo)
        form.addRow("Planned margin", self.margin_spin)
        form.addRow(self.use_plane)
        v.addLayout(form)
        for combo in (self.organ_combo, self.target_combo):
            combo.currentIndexChanged.connect(lambda _i: self._choice_changed())
        self.margin_spin.valueChanged.connect(lambda _v: self._rescore_and_run())
        self.use_plane.toggled.connect(lambda _c: self._rescore_and_run())
        row = QHBoxLayout()
        self.plane_button = QPushButton("Drag plane")
        self.plane_button.setCheckable(True)
        self.plane_button.toggled.connect(
            lambda on: self.window.set_slice_tool(self.tool if on else None))
        self.flip_button = QPushButton("Flip side")
        self.flip_button.clicked.connect(self.plane.flip)
        self.reset_button = QPushButton("Reset plane")
        self.reset_button.clicked.connect(lambda: (self.default_plane(), self.run_full()))
        for w in (self.plane_button, self.flip_button, self.reset_button):
            row.addWidget(w)
        v.addLayout(row)
        self.plane_label = QLabel("Plane: —")
        v.addWidget(self.plane_label)
        install_curve(self, v)  # "Curved cut": control points dragged in the slice views
        self.create_button = QPushButton("Create specimen/remnant structures")
        self.create_button.setObjectName("create_structures")
        self.create_button.clicked.connect(self.create_structures)
        v.addWidget(self.create_button)
        self.create_label = wrapped_label()
        v.addWidget(self.create_label)
        return box

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        self.prepared, self._prepared_key = None, None
        self._organ_box = (None, None)
        self._prepare_gen += 1
        self.plane.point_lps = None
        set_curve_heights(self, None, run=False)
        self.scene3d.remove_plane()
        for combo, names in ((self.organ_combo, self.structures(Role.ORGAN)),
                             (self.target_combo, [NO_TARGET, *self.structures(Role.TARGET)])):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.blockSignals(False)
        if len(self.structures(Role.TARGET)):
            self.target_combo.blockSignals(True)  # a new case: nothing runs until asked
            self.target_combo.setCurrentIndex(1)
            self.target_combo.blockSignals(False)
        self.plane_label.setText("Plane: —")
        self.create_label.setText("")
        if self.organ() and self.isVisible():
            self.default_plane()

    def showEvent(self, event) -> None:
        """The plane (slices and 3D handle) is shown only while this panel is."""
        super().showEvent(event)
        self.decoration.visible = self.curve_heights is None  # else the curve is drawn
        self.scene3d.set_plane_handle_enabled(True)
        self.scene3d.set_scalar_bar_visible(True)
        if not self.plane.is_set() and self.organ():
            self.default_plane()
        if self.organ() and self.context is not None and self.prepared is None:
            self.prepare()  # the organ's maps are built once the panel is looked at
        for view in self.window.slice_views.values():
            view.update()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.decoration.visible = False
        self.scene3d.set_plane_handle_enabled(False)
        self.scene3d.set_scalar_bar_visible(False)
        for view in self.window.slice_views.values():
            view.update()

    def organ(self) -> str | None:
        return self.organ_combo.currentText() or None

    def target(self) -> str | None:
        text = self.target_combo.currentText()
        return None if text in ("", NO_TARGET) else text

    def default_plane(self) -> None:
        """A plane ``margin`` mm beyond the target, facing away from the organ's centre (the
        target side removed); without a target, through the organ's centre facing right."""
        organ, target = self.organ(), self.target()
        if self.twin is None or organ is None:
            return
        centre = self.twin.centroid_lps(organ)
        if centre is None:  # an empty organ: no default plane
            return
        tumour = None if target is None else self.twin.centroid_lps(target)
        if tumour is None:
            self.plane.set_plane(centre, (-1.0, 0.0, 0.0))
            return
        away = tumour - centre
        normal = away / np.linalg.norm(away) if np.linalg.norm(away) > 1e-3 else \
            np.array([-1.0, 0.0, 0.0])
        radius = (3.0 * self.twin.volume_ml(target) * 1000.0 / (4.0 * np.pi)) ** (1 / 3)
        self.plane.set_plane(tumour - (radius + self.margin_spin.value()) * normal, normal)

    def _choice_changed(self) -> None:
        self.prepared, self._prepared_key = None, None
        self.default_plane()
        self.run_full()

    def _rescore_and_run(self) -> None:
        self.rescore_live()
        self.run_full()

    def cut(self) -> Any:
        """The plane as the simulator's PlaneCut (None when not cutting along a plane)."""
        if not self.use_plane.isChecked() or not self.plane.is_set() or \
                self.ensure_simulator() is None:
            return None
        curved = curve_cut(self)
        if curved is not None:
            return curved
        return self.simulator.plane_cut(self.plane.point_lps, self.plane.normal_lps)

    def inputs(self) -> ResectionInput | None:
        organ = self.organ()
        if organ is None or self.twin is None or self.ensure_simulator() is None:
            return None
        cut = self.cut()
        if cut is None and self.target() is None:
            return None
        spacing = CUT_MESH_SPACING_MM if self.curve_heights is None else CURVE_MESH_SPACING_MM
        mesh = None if cut is None else cut.surface_mesh(organ_bounds_lps(self.twin, organ),
                                                         spacing_mm=spacing)
        return ResectionInput(
            organ_structure=organ, target_structure=self.target(),
            margin_mm=float(self.margin_spin.value()),
            cut_vertices_lps=() if mesh is None else tuple(map(tuple,
                                                              mesh.vertices_lps.tolist())),
            cut_faces=() if mesh is None else tuple(map(tuple, mesh.faces.tolist())))

    def set_plane(self, point_lps, normal_lps) -> None:
        """Set the cutting plane (LPS mm; removes the side the normal points to) and score."""
        self.plane.set_plane(point_lps, normal_lps)
        self.run_full()

    # ------------------------------------------------------------------ live scoring
    def _plane_changed(self, dragging: bool) -> None:
        """A drag move is scored and painted through DragFrames (:meth:`_drag_frame`),
        the 3D handle and cut follow when the drag pauses; a set plane or release at once."""
        self._dragging = dragging
        if dragging:
            self._drag_frames.request()
            return
        self._drag_frames.cancel()
        self._scene_timer.stop()
        if not self.plane.is_set():
            return
        self._show_plane_label()
        self._show_handle()
        self._score_live()
        for view in self.window.slice_views.values():
            view.update()

    def _show_plane_label(self) -> None:
        p, n = self.plane.point_lps, self.plane.normal_lps
        self.plane_label.setText(f"Plane: {format_point(p)}, "
                                 f"normal ({n[0]:.2f}, {n[1]:.2f}, {n[2]:.2f})")

    def organ_box_lps(self) -> np.ndarray | None:
        """The chosen organ's LPS box ((2, 3); its voxel centres padded by half a voxel,
        cached per organ), None without an organ: the drawn cut is bounded to it."""
        organ = self.organ()
        if self.twin is None or organ is None:
            return None
        key = (id(self.twin), organ)
        if self._organ_box[0] != key:
            found = bool(self.twin.segmentation.mask(organ).any())
            pad = 0.5 * max(self.twin.geometry.spacing_mm)
            self._organ_box = (key, box_lps(self.twin, organ, pad) if found else None)
        return self._organ_box[1]

    def _drag_frame(self) -> None:
        if not self.plane.is_set():
            return
        self.decoration.bounds_lps = self.organ_box_lps()
        self._show_plane_label()
        self._score_live()
        for view in self.window.slice_views.values():
            view.update()
        self._scene_timer.start()

    def _score_live(self) -> None:
        """Score the current cut on this thread while live scores stay quick, else in the
        coalescing worker (a large organ, a loaded machine: the exact score on release took
        2.3-8.8 s on the real liver and froze the GUI); the slices move at once either way."""
        if self.live_on_gui_thread():
            self.rescore_live()
            return
        call, prepared = self._live_call(), self.prepared
        if call is not None:
            self.score_in_worker(call, self._show_live_result,
                                 current=lambda: prepared is self.prepared)

    def _deferred_scene(self) -> None:
        """The drag paused: the 3D handle and the live cut surface follow."""
        self._show_handle()
        if self._live_geometry is not None:
            self._show_live_3d(self._live_geometry)

    def _show_handle(self) -> None:
        """The 3D plane handle, its plane drawn within the organ's box only (as the slice
        lines: the cut is bounded to the organ)."""
        box = self.organ_box_lps()
        self.decoration.bounds_lps = box
        if box is None or not self.plane.is_set():
            return
        self.scene3d.show_plane(
            self.plane.point_lps, self.plane.normal_lps, box,
            on_move=lambda p, n: self.plane.set_plane(p, n, dragging=True),
            on_release=lambda p, n: (self.plane.set_plane(p, n), self.plane.released.emit()))
        if not self.isVisible():  # the handle shows only while this panel does
            self.scene3d.set_plane_handle_enabled(False)

    def prepare(self) -> None:
        """Gather the organ (and target) for live scoring, in a worker."""
        key = (self.organ(), self.target())
        if self.context is None or key[0] is None or self.ensure_simulator() is None or \
                self._prepared_key == key or not self.supports(LIVE):
            return
        prepare = self.simulator.prepare
        self._prepare_gen += 1
        gen, self._prepared_key = self._prepare_gen, key

        def ready(prepared) -> None:
            self.prepared = prepared

        def failed(exc: BaseException) -> None:
            if gen == self._prepare_gen:
                self._prepared_key = None
                self.show_result(SimulationResult.failed(f"preparing: {exc}"))

        self.status_label.setText("Preparing the organ… (live scores follow)")
        self.prepare_live_in_worker("Preparing resection",
                                    lambda: prepare(self.context, key[0], key[1]),
                                    current=lambda: gen == self._prepare_gen, on_ready=ready,
                                    on_error=failed)

    def _live_call(self) -> Callable[[], SimulationResult] | None:
        """The live score of the current cut as a call (quick cut-vessel diameters while
        dragging), or None when there is nothing to score yet (the organ is being prepared,
        or neither a cut nor a target)."""
        if self.context is None or self.ensure_simulator() is None or self.organ() is None \
                or not self.supports(LIVE):
            return None
        if self.prepared is None or self._prepared_key != (self.organ(), self.target()):
            self.prepare()
            return None
        cut = self.cut()
        if cut is None and self.target() is None:
            return None
        quick = {"quick": True} if self._dragging and accepts(self.simulator.live, "quick") \
            else {}  # drag frames: coarse cut-vessel diameters (the full run is exact)
        live, prepared = self.simulator.live, self.prepared
        margin, parameters = float(self.margin_spin.value()), self.form.values()
        return lambda: live(prepared, cut, margin_mm=margin, parameters=parameters, **quick)

    def rescore_live(self) -> SimulationResult | None:
        """Nominal volumes, remnant % and margin of the current cut (no intervals), on this
        thread."""
        call = self._live_call()
        if call is None:
            return None
        try:
            result = self.timed_live(call)
        except Exception as exc:
            self.show_result(SimulationResult.failed(f"live score: {exc}"))
            return None
        self._show_live_result(result)
        return result

    def _show_live_result(self, result: SimulationResult) -> None:
        self.show_result(result, live=True)
        if self._dragging:  # a 3D render per drag frame would stall the drag
            self._live_geometry = result.geometry
        else:
            self._show_live_3d(result.geometry)

    def _show_live_3d(self, geometry: Any) -> None:
        self._live_geometry = None
        self.scene3d.remove("result")
        self.scene3d.show_geometry(geometry, part="live")
        self.scene3d.set_scalar_bar_visible(self.isVisible())

    def show_geometry(self, result: SimulationResult) -> None:
        self._live_geometry = None
        self.scene3d.remove("live")
        self.scene3d.show_geometry(result.geometry, part="result")
        self.scene3d.set_scalar_bar_visible(self.isVisible())

    # ------------------------------------------------------------------ structures
    def create_structures(self) -> None:
        """Add "specimen" and "remnant" structures to the twin (worker computes the masks;
        one undo step through the Segment panel's editor when there is one)."""
        inputs = self.inputs()
        if not self.supports(STRUCTURES):
            self.create_label.setText("The chosen simulator adds no structures.")
            return
        if inputs is None or self.context is None:
            self.create_label.setText("Choose an organ and a cut or target first.")
            return
        fn = partial(self.simulator.resection_masks, self.context, inputs, self.form.values())
        twin = self.twin
        self.create_label.setText("Computing specimen and remnant…")
        self.window.runner.submit("Resection structures", lambda **_k: fn(),
                                  on_done=partial(self._add_structures, twin),
                                  on_error=lambda exc: self.create_label.setText(
                                      f"FAILED: {exc}"))

    def _add_structures(self, twin: Any, masks: Any) -> None:
        if twin is not self.twin or self.simulator is None:
            return
        segment_panel = getattr(self.window, "segment_panel", None)
        editor = None if segment_panel is None else getattr(segment_panel, "editor", None)
        added = self.simulator.add_resection_structures(twin, masks, editor=editor)
        self.create_label.setText("Added " + " and ".join(f'"{s.name}"' for s in added) +
                                  (" (Edit > Undo removes them)." if editor is not None
                                   else "."))
