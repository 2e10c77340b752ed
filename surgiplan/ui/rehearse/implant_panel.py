"""The implant panel: place a pedicle screw (library size), adjust it in slice views and with a
3D move/rotate handle, auto-suggest it for a vertebra, snap it to the planned trajectory.

* The screw's head and tip are a :class:`~surgiplan.ui.plan.trajectory_tools.TrajectoryPlan`
  (``entry`` = head, ``target`` = tip direction; the tip sits ``length`` mm from the head along
  it), placed and dragged with the trajectory :class:`PlacementTool` in any slice view.
* Live: the implant simulator's ``live_scorer(context, inputs).score(pose)`` (distance grids,
  ~1 ms) re-scores every move; the full run (exact mesh check, Monte Carlo) runs on release
  in a worker. The grids are built once per case in a worker ("Preparing implant scoring").
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from surgiplan.model.structures import Role
from surgiplan.simulation import (
    IntervalKind,
    Metric,
    SimulationResult,
    StructureLevel,
    level_for,
)
from surgiplan.simulation.capabilities import HANDLES, INPUTS, LIVE, SUGGEST
from surgiplan.ui.plan.planning_panel import worst_level, wrapped_label
from surgiplan.ui.rehearse.rehearsal_panels import (
    TrajectoryRehearsalPanel,
    format_point,
    mm_spin,
    named_combo,
)

GRADES = ("A", "B", "C", "D", "E")
GRADE_RGB = {"A": (0.2, 0.8, 0.3), "B": (0.95, 0.85, 0.2), "C": (1.0, 0.55, 0.1),
             "D": (0.9, 0.15, 0.15), "E": (0.9, 0.15, 0.15), None: (0.7, 0.7, 0.75)}
SIDES = ("left", "right")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def live_metrics(score: Any, margins_mm: dict[str, float]
                 ) -> tuple[list[Metric], list[StructureLevel]]:
    """Metrics and traffic lights of a live (grid) implant score; keys as the simulator's."""
    metrics = [Metric("breach_mm", "Largest breach outside bone", "mm", score.breach_mm)]
    for d, value in score.breach_by_direction_mm.items():
        metrics.append(Metric(f"breach_{d}_mm", f"{d.capitalize()} breach", "mm", value))
    if score.grade in GRADES:
        metrics.append(Metric("gertzbein_grade", f"Gertzbein-Robbins grade {score.grade} "
                              "(0=A ... 4=E)", "", float(GRADES.index(score.grade)),
                              interval=IntervalKind.NONE, no_interval_reason="nominal (live)"))
    else:  # the screw leaves the image: no grade
        metrics.append(Metric.unassessable("gertzbein_grade", "Gertzbein-Robbins grade", "",
                                           "the screw leaves the image"))
    for band, value in score.hu_share_pct.items():
        metrics.append(Metric(f"{band}_share_pct", f"Share in {band.replace('_', ' ')}", "%",
                              value))
    levels = []
    for name, value in score.min_distance_mm.items():
        metrics.append(Metric("min_distance_mm", f"Minimum distance to {name}", "mm", value,
                              None, name))
        margin = margins_mm.get(name, 2.0)
        levels.append(StructureLevel(name, level_for(value, margin), value, margin, None,
                                     score.closest_lps.get(name)))
    return metrics, levels


class ImplantPanel(TrajectoryRehearsalPanel):
    """Pedicle-screw rehearsal (see the module docstring)."""

    kind = "implant"
    preferred_id = "implant"
    needs = (INPUTS, HANDLES)  # the panel builds a library screw and draws/drags it
    hint = ("Place the screw head (entry) and tip in a slice view, or auto-suggest it; drag "
            "the markers or the 3D handle (arrows move, rings rotate).")

    def __init__(self, window, parent=None) -> None:
        self.live = None  # the simulator's LiveScorer for the current screw and parameters
        self._live_key: tuple | None = None
        self._maps_ready = False
        self._prepare_gen = 0
        self.grade: str | None = None
        super().__init__(window, parent)

    # ------------------------------------------------------------------ construction
    def _inputs_box(self) -> QGroupBox:
        box = QGroupBox("Pedicle screw")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.diameter_spin = mm_spin(4.0, 8.5, 6.5, name="screw_diameter", step_mm=0.5,
                                     tooltip="major (outer thread) diameter of the shank")
        self.length_spin = mm_spin(25.0, 60.0, 45.0, name="screw_length", step_mm=5.0,
                                   tooltip="shank length from under the head to the tip")
        for spin in (self.diameter_spin, self.length_spin):
            spin.valueChanged.connect(lambda _v: self._size_changed())
        form.addRow("Diameter (thread, mm)", self.diameter_spin)
        form.addRow("Length (shank, mm)", self.length_spin)
        v.addLayout(form)
        buttons = self._add_placing_row(v, (("entry", "Place/drag head"),
                                            ("target", "Place/drag tip")), "Head: —\nTip: —")
        self.head_button, self.tip_button = buttons["entry"], buttons["target"]
        row = QHBoxLayout()
        self.snap_button = QPushButton("Snap axis to trajectory")
        self.snap_button.setToolTip("head at the planned trajectory's entry, axis along it")
        self.snap_button.clicked.connect(self.snap_to_trajectory)
        self.go_button = QPushButton("Go to screw")
        self.go_button.clicked.connect(self._go_to)
        row.addWidget(self.snap_button)
        row.addWidget(self.go_button)
        v.addLayout(row)
        row = QHBoxLayout()
        self.vertebra_combo = named_combo("vertebra_combo")
        self.vertebra_combo.setToolTip("a bone structure: one vertebra, or the whole skeleton "
                                       "(then the vertebra at the crosshair is used)")
        self.side_combo = QComboBox()
        self.side_combo.addItems(SIDES)
        self.suggest_button = QPushButton("Auto-suggest")
        self.suggest_button.setObjectName("suggest_button")
        self.suggest_button.clicked.connect(self.suggest)
        row.addWidget(QLabel("Vertebra"))
        row.addWidget(self.vertebra_combo, 1)
        row.addWidget(self.side_combo)
        row.addWidget(self.suggest_button)
        v.addLayout(row)
        self.suggest_label = wrapped_label()
        v.addWidget(self.suggest_label)
        return box

    def capabilities_changed(self) -> None:
        self.suggest_button.setEnabled(self.supports(SUGGEST))

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        super().reset()
        self.live, self._live_key, self._maps_ready = None, None, False
        self._prepare_gen += 1
        self.grade = None
        self.vertebra_combo.clear()
        self.vertebra_combo.addItems(self.structures(Role.BONE))
        self.points_label.setText("Head: —\nTip: —")
        self.suggest_label.setText("")

    def size_mm(self) -> tuple[float, float]:
        return float(self.diameter_spin.value()), float(self.length_spin.value())

    def head_tip(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Head and tip (LPS mm): the tip ``length`` mm from the head towards the target."""
        if not self.plan.complete():
            return None
        head = self.plan.entry_lps
        return head, head + self.size_mm()[1] * _unit(self.plan.target_lps - head)

    def pose(self) -> np.ndarray | None:
        ends = self.head_tip()
        if ends is None or self.ensure_simulator() is None:
            return None
        return self.simulator.pose_from_axis(*ends)

    def inputs(self) -> Any:
        ends = self.head_tip()
        if ends is None or self.ensure_simulator() is None:
            return None
        return self.simulator.screw_input(self.size_mm(), *ends)

    def set_screw(self, head_lps, tip_lps, *, size_mm: tuple[float, float] | None = None
                  ) -> None:
        """Place the screw (head, tip LPS mm; optional diameter x length) and score it."""
        if size_mm is not None:
            for spin, value in zip((self.diameter_spin, self.length_spin), size_mm, strict=True):
                spin.blockSignals(True)
                spin.setValue(float(value))
                spin.blockSignals(False)
        self.plan.set_points(head_lps, tip_lps)

    # ------------------------------------------------------------------ placing
    def snap_to_trajectory(self) -> bool:
        """Head at the planned trajectory's entry, axis along it (False without one)."""
        planning = getattr(self.window, "planning_panel", None)
        plan = None if planning is None else planning.plan
        if plan is None or not plan.complete():
            self.suggest_label.setText("No planned trajectory to snap to (Planning dock).")
            return False
        self.set_screw(plan.entry_lps, plan.target_lps)
        self.run_full()
        return True

    def _go_to(self) -> None:
        ends = self.head_tip()
        if ends is not None:
            self.window.set_cursor((ends[0] + ends[1]) / 2.0)

    def _size_changed(self) -> None:
        self.plan.diameter_mm = self.size_mm()[0]
        if self.plan.complete():
            self._plan_changed(False)
            self.run_full()

    def parameters_changed(self) -> None:
        self._live_key = None
        super().parameters_changed()

    # ------------------------------------------------------------------ live scoring
    def _plan_changed(self, dragging: bool) -> None:
        """A drag move is scored and painted through DragFrames (:meth:`_drag_frame`),
        a placement or release at once."""
        self.plan.diameter_mm = self.size_mm()[0]
        if dragging:
            self._drag_frames.request()
            return
        self._drag_frames.cancel()
        if self._show_ends():
            self.rescore_live()
            self._draw()

    def _show_ends(self) -> bool:
        ends = self.head_tip()
        self.points_label.setText(f"Head: {format_point(None if ends is None else ends[0])}\n"
                                  f"Tip: {format_point(None if ends is None else ends[1])}")
        return ends is not None

    def _drag_frame(self) -> None:
        """Live score and slices now; 3D when the drag pauses (a render ~0.5 s)."""
        if not self._show_ends():
            return
        self.rescore_live()
        for view in self.window.slice_views.values():
            view.update()
        self._scene_timer.start()

    def prepare_live(self) -> None:
        """Build the simulator's distance grids for this case in a worker (once)."""
        inputs = self.inputs()
        if self._maps_ready or inputs is None or self.context is None or \
                not self.supports(LIVE):
            return
        self._prepare_gen += 1
        gen, context, params = self._prepare_gen, self.context, self.form.values()
        fn = partial(self.simulator.live_scorer, context, inputs, params)

        def ready(_scorer) -> None:
            self._maps_ready = True

        self.prepare_live_in_worker("Preparing implant scoring", fn,
                                    current=lambda: gen == self._prepare_gen, on_ready=ready)

    def live_scorer(self) -> Any:
        """The live scorer for the current screw size and parameters (grids must be ready)."""
        key = (self.size_mm(), tuple(sorted(self.form.values().items())))
        if self.live is None or key != self._live_key:
            self.live = self.simulator.live_scorer(self.context, self.inputs(),
                                                   self.form.values())
            self._live_key = key
        return self.live

    def rescore_live(self) -> SimulationResult | None:
        """Score the current pose on the distance grids (no Monte Carlo) and show it."""
        pose = self.pose()
        if pose is None or self.context is None or self.ensure_simulator() is None or \
                not self.supports(LIVE):
            return None
        if not self._maps_ready:
            self.prepare_live()
            self.status_label.setText("Preparing distance grids… (live scores follow)")
            return None
        try:
            scorer = self.live_scorer()
            score = self.timed_live(lambda: scorer.score(pose))
        except Exception as exc:
            self.show_result(SimulationResult.failed(f"live score: {exc}"))
            return None
        default = float(self.form.values().get("default_margin_mm", 2.0))
        margins = {s.name: (s.margin_mm if s.margin_mm > 0 else default)
                   for s in self.context.by_role(Role.CRITICAL)}
        metrics, levels = live_metrics(score, margins)
        self.grade = score.grade
        self.show_live(metrics, levels)
        return self.result

    def _full_done(self, gen: int, result: SimulationResult) -> None:
        super()._full_done(gen, result)
        if gen == self._generation and result.ok:
            self.grade = result.details.get("gertzbein_grade")
            self.plan.set_level(worst_level(result))
            self._draw()

    # ------------------------------------------------------------------ 3D
    def _deferred_scene(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self._scene_timer.stop()
        pose = self.pose()
        if pose is None or self.ensure_simulator() is None:
            return
        sim = self.simulator
        vertices, faces = sim.screw_mesh(*self.size_mm(), sim.screw_family())
        self.scene3d.show_implant(vertices, faces, pose, GRADE_RGB.get(self.grade),
                                  on_move=partial(self._pose_from_3d, dragging=True),
                                  on_release=partial(self._pose_from_3d, dragging=False))
        for view in self.window.slice_views.values():
            view.update()

    def show_geometry(self, result: SimulationResult) -> None:
        """Axis and worst-breach point from the full run; the mesh is the handled actor."""
        self.scene3d.show_geometry(result.geometry, skip_meshes=tuple(
            m.label for m in result.geometry.meshes))

    def _pose_from_3d(self, pose: np.ndarray, *, dragging: bool) -> None:
        """The 3D handle moved the screw: head and tip follow (slice markers too)."""
        head = pose[:3, 3]
        tip = head + self.size_mm()[1] * pose[:3, 2]
        self.plan.entry_lps, self.plan.target_lps = head.copy(), tip.copy()
        self.plan.changed.emit(dragging)
        if not dragging:
            self.run_full()

    # ------------------------------------------------------------------ auto-suggest
    def suggest(self) -> None:
        """Auto-suggest a screw for the chosen vertebra and side in a worker."""
        vertebra = self.vertebra_combo.currentText()
        if not vertebra or self.context is None or self.ensure_simulator() is None:
            self.suggest_label.setText("Choose a bone structure first.")
            return
        if not self.supports(SUGGEST):
            self.suggest_label.setText("The chosen simulator cannot suggest a screw.")
            return
        near = self.plan.entry_lps
        if near is None:
            near = self.window.slice_views["axial"].cursor_lps
        fn = partial(self.simulator.suggest_input, self.context, vertebra,
                     self.side_combo.currentText(), point_lps=near)
        self.suggest_label.setText("Suggesting…")
        self.window.runner.submit("Suggesting a screw", lambda **_k: fn(),
                                  on_done=self._suggested,
                                  on_error=lambda exc: self.suggest_label.setText(
                                      f"Auto-suggest FAILED: {exc}"))

    def _suggested(self, out: tuple[Any, dict[str, Any]]) -> None:
        _inputs, s = out
        self.suggest_label.setText(
            f"Suggested {s['diameter_mm']:g} x {s['length_mm']:g} mm (80 % of the narrowest "
            f"pedicle width {s.get('isthmus_width_mm', float('nan')):.1f} mm and of the "
            f"body chord {s.get('chord_mm', float('nan')):.1f} mm); adjust as needed.")
        self.set_screw(s["entry_lps"], s["tip_lps"], size_mm=(s["diameter_mm"],
                                                             s["length_mm"]))
        self.run_full()
