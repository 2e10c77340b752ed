"""The "Rehearse" dock: implant, ablation and resection panels on one shared base.

:class:`RehearsalPanel` holds what the three share: the simulator plug-in (loaded by id
through the ``surgiplan.simulators`` entry points; a missing or disabled plug-in shows its
reason), its parameter form built from the declared schema
(:class:`~surgiplan.ui.widgets.parameter_form.ParameterForm`), the Monte Carlo settings, the results
(traffic lights and every metric with its 95 % interval, as in the planning dock), the live
score while dragging and the full run on release in a worker (results of superseded runs are
dropped; a failing simulator shows a FAILED result and the app keeps running).

:class:`TrajectoryRehearsalPanel` adds a straight placement (entry and target ends dragged in
slice views) for the implant and ablation panels. Each panel (implant_panel.py,
ablation_panel.py, resection_panel.py) adds its inputs, its slice tools (rehearsal_tools.py) and
its 3D actors (rehearsal_3d.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from surgiplan.model.structures import Role
from surgiplan.simulation import (
    Metric,
    SimulationContext,
    SimulationResult,
    Status,
    StructureLevel,
    UncertaintyModel,
    load_simulator,
    run_simulation,
)
from surgiplan.simulation.capabilities import declared, supports
from surgiplan.simulation.uncertainty import SEEG_ROBOT_PROFILE, ErrorProfile
from surgiplan.twin import Twin
from surgiplan.ui.plan.planning_panel import (
    UNCERTAINTY_PARAMETERS,
    DragFrames,
    _table,
    defer_timer,
    fill_levels_table,
    fill_metrics_table,
    model_from_form,
    run_summary,
    set_scrolled_body,
    show_failure,
    toggle_placing,
    uncertainty_parameters,
    verdict_text,
    wrapped_label,
)
from surgiplan.ui.plan.trajectory_tools import (
    PathDecoration,
    PlacementTool,
    TrajectoryPlan,
    format_lps,
)
from surgiplan.ui.rehearse.rehearsal_3d import Rehearsal3D
from surgiplan.ui.widgets.docks import FIXED_DOCK, add_dock
from surgiplan.ui.widgets.parameter_form import ParameterForm

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

LIVE_BUDGET_MS = 50.0  # a live score slower than this is shown, with a note
GUI_SCORE_MS = 15.0  # a drag frame scores on the GUI thread when the last score was this fast


def format_point(point_lps) -> str:
    """``R x  A y  S z mm``: patient directions (:func:`format_lps`), or a dash."""
    return format_lps(point_lps)


def named_combo(name: str) -> QComboBox:
    """An empty combo box with the object name ``name`` (found by tests and scripts)."""
    combo = QComboBox()
    combo.setObjectName(name)
    return combo


def mm_spin(minimum_mm: float, maximum_mm: float, value_mm: float, *, name: str = "",
            step_mm: float | None = None, tooltip: str = "") -> QDoubleSpinBox:
    """A spin box of a length in mm; no keyboard tracking (one ``valueChanged`` per edit)."""
    spin = QDoubleSpinBox()
    if name:
        spin.setObjectName(name)
    spin.setRange(minimum_mm, maximum_mm)
    if step_mm is not None:
        spin.setSingleStep(step_mm)
    spin.setValue(value_mm)
    spin.setSuffix(" mm")
    if tooltip:
        spin.setToolTip(tooltip)
    spin.setKeyboardTracking(False)
    return spin


# the panels' structure choice boxes (attribute name, role of the structures listed)
STRUCTURE_COMBOS = (("organ_combo", Role.ORGAN), ("target_combo", Role.TARGET),
                    ("vertebra_combo", Role.BONE))


def panel_simulators(entries: list[Any], kind: str, needs: tuple[str, ...] = ()) -> list[Any]:
    """The enabled simulators a rehearsal panel of ``kind`` can drive: their spec's kind is
    ``kind`` and they declare every capability in ``needs`` (a third-party plug-in run in its
    child process offers only ``run``, so it qualifies only for a panel that needs nothing)."""
    return [e for e in entries
            if e.enabled and e.spec is not None and str(e.spec.kind) == kind
            and all(declared(e.spec, c) for c in needs)
            and not (needs and getattr(e, "isolated", False))]


class RehearsalPanel(QWidget):
    """Shared base of the rehearsal panels; subclasses set ``kind``, ``preferred_id`` (the
    bundled simulator chosen first) and ``needs`` (capabilities the panel cannot work
    without), and implement :meth:`inputs`, :meth:`_inputs_box`, :meth:`reset` and
    :meth:`show_geometry`. The panel offers every simulator of its kind that declares
    ``needs`` (:func:`panel_simulators`); optional capabilities (live scores, optimise,
    suggest...) are used only when the chosen simulator :func:`supports` them."""

    kind = ""
    preferred_id = ""
    needs: tuple[str, ...] = ()
    hint = ""

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{self.kind}_panel")
        self.window = window
        self.twin: Twin | None = None
        self.context: SimulationContext | None = None
        self.simulator: Any = None
        self.simulator_id = self.preferred_id
        self.load_error: str | None = None
        self.result: SimulationResult | None = None
        self.live_ms: float | None = None
        self.scene3d = Rehearsal3D(window.view3d, self.kind)
        self._generation = 0
        self._job = None
        self._live_worker = None  # a CoalescingScorer once a drag frame scored in a worker
        self._focus_pending = True  # frame the 3D view on the first full result of a case
        # while dragging, the 3D scene follows when the drag pauses (a 3D render ~0.5 s)
        self._scene_timer = defer_timer(self, lambda: self._deferred_scene())
        # drag moves of one event-loop pass are merged (see DragFrames, _drag_frame)
        self._drag_frames = DragFrames(self, lambda: self._drag_frame())
        self._build()
        window.case_loaded.connect(self.set_twin)
        window.twin_event.connect(self._structures_event)

    def _deferred_scene(self) -> None:
        """Update the 3D scene after a drag paused (subclasses draw their objects)."""

    def _drag_frame(self) -> None:
        """One drag frame, once per event-loop pass (subclasses score and paint)."""

    def _attach_placement(self, placement: Any, decoration: Any,
                          on_changed: Callable[[bool], None]) -> None:
        """Own ``placement`` (a TrajectoryPlan or CutPlane): ``on_changed(dragging)`` on every
        change, the full run on release; draw ``decoration`` in every slice view."""
        placement.setParent(self)
        placement.changed.connect(on_changed)
        placement.released.connect(self.run_full)
        for view in self.window.slice_views.values():
            view.add_decoration(decoration)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        self.simulator_combo = named_combo(f"{self.kind}_simulator")
        self.simulator_combo.setToolTip(f"the {self.kind} simulator plug-in to rehearse with")
        self.simulator_combo.currentIndexChanged.connect(lambda _i: self._simulator_chosen())
        row = QHBoxLayout()
        row.addWidget(QLabel("Simulator"))
        row.addWidget(self.simulator_combo, 1)
        layout.addLayout(row)
        self.simulator_note = wrapped_label(self.hint)
        layout.addWidget(self.simulator_note)
        layout.addWidget(self._inputs_box())
        self.form = ParameterForm()
        self.form.setObjectName(f"{self.kind}_parameters")
        self.uncertainty_form = ParameterForm(UNCERTAINTY_PARAMETERS)
        tabs = QTabWidget()
        tabs.addTab(self.form, "Parameters")
        tabs.addTab(self.uncertainty_form, "Uncertainty")
        layout.addWidget(tabs)
        layout.addWidget(self._results_box(), 1)
        set_scrolled_body(self, body)
        self.form.values_changed.connect(lambda _v: self.parameters_changed())
        self.uncertainty_form.values_changed.connect(lambda _v: self.run_full())

    def _inputs_box(self) -> QGroupBox:
        raise NotImplementedError

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Results")
        v = QVBoxLayout(box)
        self.status_label = wrapped_label()
        self.status_label.setObjectName(f"{self.kind}_status")
        self.levels_table = _table(["Structure", "Level", "Min distance", "Margin",
                                    "P(breach)"], f"{self.kind}_levels")
        self.metrics_table = _table(["Metric", "Structure", "Value", "95 % interval"],
                                    f"{self.kind}_metrics")
        self.metrics_table.setMinimumHeight(220)
        self.warnings_label = wrapped_label()
        self.warnings_label.setStyleSheet("color: #e0a030;")
        for w in (self.status_label, self.levels_table, self.metrics_table,
                  self.warnings_label):
            v.addWidget(w)
        row = QHBoxLayout()
        self.save_new_button = QPushButton("Save as new plan")
        self.save_new_button.setObjectName(f"{self.kind}_save_new_plan")
        self.save_new_button.setToolTip("Save this rehearsal (placement, parameters, last full "
                                        "result) as a new draft plan in the Plans tab")
        self.save_add_button = QPushButton("Add to selected plan")
        self.save_add_button.setObjectName(f"{self.kind}_add_to_plan")
        self.save_new_button.clicked.connect(lambda: self._guarded(self.save_as_plan))
        self.save_add_button.clicked.connect(
            lambda: self._guarded(partial(self.save_as_plan, new=False)))
        row.addWidget(self.save_new_button)
        row.addWidget(self.save_add_button)
        v.addLayout(row)
        return box

    def _guarded(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:
            self.window.report_error(exc)
            return None

    def save_as_plan(self, *, new: bool = True) -> Any:
        """Store the rehearsal (inputs LPS mm, parameters, uncertainty, the last full result)
        as a new plan, or in the plan selected in the Plans tab (``new=False``); returns it."""
        return save_rehearsal(self.window, self, self.kind, new=new)

    # ------------------------------------------------------------------ simulator
    def refresh_simulators(self, entries: list[Any] | None = None) -> None:
        """List the simulators this panel can drive (``entries``: default, the discovered
        plug-ins), keeping the chosen one (else the preferred one, else the first)."""
        from surgiplan.simulation import discover

        found = panel_simulators(discover() if entries is None else entries, self.kind,
                                 self.needs)
        ids = [e.spec.id for e in found]
        self.simulator_combo.blockSignals(True)
        self.simulator_combo.clear()
        for e in found:
            self.simulator_combo.addItem(f"{e.spec.title} ({e.spec.id} {e.spec.version})",
                                         e.spec.id)
        chosen = self.simulator_id if self.simulator_id in ids else \
            self.preferred_id if self.preferred_id in ids else (ids[0] if ids else "")
        if chosen:
            self.simulator_combo.setCurrentIndex(ids.index(chosen))
        self.simulator_combo.blockSignals(False)
        if chosen and chosen != self.simulator_id:
            self.select_simulator(chosen)

    def select_simulator(self, simulator_id: str) -> Any:
        """Rehearse with the simulator ``simulator_id`` (its form replaces the previous one's);
        returns it (None when it cannot be loaded)."""
        index = self.simulator_combo.findData(simulator_id)
        if index >= 0 and index != self.simulator_combo.currentIndex():
            self.simulator_combo.setCurrentIndex(index)  # calls back _simulator_chosen
            return self.simulator
        if simulator_id != self.simulator_id or self.simulator is None:
            self._cancel()
            self.simulator_id = simulator_id
            self.simulator, self.load_error = None, None
            self.ensure_simulator()
            self.reset()
            self.show_result(None)
        return self.simulator

    def _simulator_chosen(self) -> None:
        simulator_id = self.simulator_combo.currentData()
        if simulator_id and simulator_id != self.simulator_id:
            self.select_simulator(simulator_id)

    def supports(self, capability: str) -> bool:
        """Whether the loaded simulator offers ``capability`` (declared and implemented)."""
        return self.simulator is not None and supports(self.simulator, capability)

    def capabilities_changed(self) -> None:
        """A simulator was loaded: subclasses enable what its capabilities allow."""

    def ensure_simulator(self) -> Any:
        """Load the plug-in once; fill the parameter form from its schema (None if missing)."""
        if self.simulator is None and self.load_error is None:
            if self.simulator_combo.count() == 0:
                self.refresh_simulators()
                if self.simulator is not None:  # the refresh chose and loaded one
                    return self.simulator
            try:
                self.simulator = load_simulator(self.simulator_id)
            except Exception as exc:  # a missing/broken plug-in must not stop the app
                self.load_error = str(exc)
                self.simulator_note.setText(f"The {self.simulator_id} simulator is not "
                                            f"available: {exc}")
                self.setEnabled(True)
                return None
            spec = self.simulator.spec
            self.form.set_parameters(spec.parameters)
            self.uncertainty_form.set_parameters(uncertainty_parameters(self.error_profile()))
            if self.twin is not None:
                self.uncertainty_form.set_values(
                    {"boundary_sd_mm": max(self.twin.geometry.spacing_mm)})
            self.simulator_note.setText(f"{spec.title} v{spec.version}\n{self.hint}")
            self.capabilities_changed()
        return self.simulator

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_simulator()

    def _structures_event(self, name: str, payload: dict) -> None:
        """Structures added, removed, renamed or given another role: refill the choices."""
        fields = payload.get("fields") or ()
        if name in ("structure_added", "structure_removed", "structure_renamed") or (
                name == "structure_properties_changed" and "role" in fields):
            self.refresh_structure_choices()

    def refresh_structure_choices(self) -> None:
        """Refill the structure boxes (``*_combo`` of STRUCTURE_COMBOS) keeping the choice;
        items that name no structure, such as "(none)", stay first."""
        for attribute, role in STRUCTURE_COMBOS:
            combo = getattr(self, attribute, None)
            if combo is None:
                continue
            current = combo.currentText()
            fixed = [combo.itemText(i) for i in range(combo.count())
                     if combo.itemText(i).startswith("(")]
            names = [*fixed, *self.structures(role)]
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(names.index(current) if current in names else
                                  min(len(fixed), len(names) - 1))
            combo.blockSignals(False)

    def structures(self, *roles: Role) -> list[str]:
        if self.twin is None:
            return []
        return [s.name for s in self.twin.structures if not roles or s.role in roles]

    # ------------------------------------------------------------------ the twin
    def set_twin(self, twin: Twin | None) -> None:
        """Rehearse on ``twin`` (connected to the window's ``case_loaded``)."""
        self._cancel()
        self.twin = twin
        self.context = None if twin is None else SimulationContext(twin)
        self.result = None
        self._focus_pending = True
        self.scene3d.clear()
        if twin is not None:  # a new case is no parameter change: nothing runs until asked
            self.uncertainty_form.blockSignals(True)
            self.uncertainty_form.set_values({"boundary_sd_mm": max(twin.geometry.spacing_mm)})
            self.uncertainty_form.blockSignals(False)
        self.reset()
        self.show_result(None)

    def reset(self) -> None:
        """Forget the inputs (new case) and refill the structure choices."""

    def parameters_changed(self) -> None:
        self.run_full()

    # ------------------------------------------------------------------ running
    def inputs(self) -> Any:
        """The simulator input for the current placement, or None when incomplete."""
        raise NotImplementedError

    def error_profile(self) -> ErrorProfile:
        """The loaded simulator's own placement-error profile (SEEG robot when undeclared)."""
        profile = getattr(self.simulator, "error_profile", None)
        return profile if isinstance(profile, ErrorProfile) else SEEG_ROBOT_PROFILE

    def uncertainty(self) -> UncertaintyModel:
        return model_from_form(self.uncertainty_form.values(), self.error_profile())

    def run_full(self) -> None:
        """The full run (Monte Carlo; exact checks) in a worker; newer runs supersede it."""
        if self.context is None or self.ensure_simulator() is None:
            return
        try:
            inputs = self.inputs()
        except Exception as exc:
            self.show_result(SimulationResult.failed(str(exc)))
            return
        if inputs is None:
            return
        self._cancel()
        gen = self._generation
        fn = partial(run_simulation, self.simulator, self.context, inputs,
                     parameters=self.form.values(), uncertainty=self.uncertainty(),
                     timeout_s=float(self.uncertainty_form.values()["timeout_s"]))
        first = self.status_label.text().split("\n")[0]
        self.status_label.setText(f"{first}\nFull run ({self.uncertainty().samples} Monte "
                                  f"Carlo samples)…")
        self._job = self.window.runner.submit(
            f"Simulating {self.kind}", fn, on_done=partial(self._full_done, gen),
            on_error=lambda exc: self._full_done(gen, SimulationResult.failed(
                f"{type(exc).__name__}: {exc}")))

    def _full_done(self, gen: int, result: SimulationResult) -> None:
        if gen != self._generation:
            return  # superseded
        self._job = None
        self.show_result(result)
        if result.ok:
            self.show_geometry(result)
            if self._focus_pending:
                self._focus_pending = not self.scene3d.focus()

    def focus_3d(self) -> bool:
        """Frame the 3D view on this rehearsal's object (implant, zone or cut)."""
        return self.scene3d.focus()

    def _cancel(self) -> None:
        self._generation += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def is_running(self) -> bool:
        return self._job is not None

    def full_result_pending_or_shown(self) -> bool:
        """A full run is running or its result is shown (a late live score must not hide it)."""
        return self._job is not None or (self.result is not None and
                                         self.result.provenance is not None)

    def timed_live(self, fn) -> Any:
        """Call ``fn()`` and record its time in ``live_ms``."""
        started = time.perf_counter()
        out = fn()
        self.live_ms = (time.perf_counter() - started) * 1000.0
        return out

    def live_on_gui_thread(self) -> bool:
        """Whether a drag frame scores on this thread (the last live score took at most
        GUI_SCORE_MS), else in a worker (:meth:`score_in_worker`)."""
        return (self.live_ms or 0.0) <= GUI_SCORE_MS

    def score_in_worker(self, fn: Callable[[], Any], on_done: Callable[[Any], None], *,
                        current: Callable[[], bool]) -> None:
        """Score ``fn()`` in a worker, one at a time, the latest request winning (see
        :mod:`.live_worker`): the drag frame costs only the redrawn slices. ``on_done(out)``
        follows on this thread (``live_ms``: request to answer) while ``current()`` holds and
        no full run started since; a failure shows a failed live score."""
        from surgiplan.ui.rehearse.live_worker import CoalescingScorer

        if self._live_worker is None:
            self._live_worker = CoalescingScorer(self.window.runner, f"Live {self.kind} score",
                                                 self)
        worker = self._live_worker
        self.status_label.setText("Live: updating the numbers…")

        def done(out: Any) -> None:
            if current() and self._job is None:
                self.live_ms = worker.last_ms
                on_done(out)

        worker.request(fn, done, lambda exc: self.show_result(
            SimulationResult.failed(f"live score: {exc}")))

    def prepare_live_in_worker(self, title: str, fn: Callable[[], Any], *,
                               current: Callable[[], bool], on_ready: Callable[[Any], None],
                               on_error: Callable[[BaseException], None] | None = None) -> None:
        """Build live scoring (``fn()``) in a worker. When done and ``current()`` still holds,
        ``on_ready(output)`` keeps it and the live score follows, unless a full result is
        pending or shown. A failure shows "preparing: ..." (or calls ``on_error``)."""
        def done(out: Any) -> None:
            if current():
                on_ready(out)
                if not self.full_result_pending_or_shown():
                    self.rescore_live()

        self.window.runner.submit(title, lambda **_k: fn(), on_done=done,
                                  on_error=on_error or (lambda exc: self.show_result(
                                      SimulationResult.failed(f"preparing: {exc}"))))

    def show_live(self, metrics: list[Metric], levels: list[StructureLevel] = (),
                  warnings: list[str] = ()) -> None:
        """Show nominal live metrics (no intervals; the full run follows on release)."""
        self.show_result(SimulationResult(status=Status.OK, metrics=list(metrics),
                                          levels=list(levels), warnings=list(warnings)),
                         live=True)

    def show_geometry(self, result: SimulationResult) -> None:
        """Draw a full result's geometry in 3D (subclasses refine)."""
        self.scene3d.show_geometry(result.geometry)

    # ------------------------------------------------------------------ results
    def show_result(self, result: SimulationResult | None, *, live: bool = False) -> None:
        """Show ``result`` (None: nothing); a live one marked as such. The tables are
        rewritten in place (a live drag frame changes their numbers, not their rows)."""
        self.result = result
        ok = result is not None and result.ok
        if not ok:
            self.levels_table.setRowCount(0)
            self.metrics_table.setRowCount(0)
        self.warnings_label.setText("Warnings:\n• " + "\n• ".join(result.warnings)
                                    if ok and result.warnings else "")
        if result is None:
            self.status_label.setText("")
            self.status_label.setStyleSheet("")
            return
        if show_failure(self.status_label, result):
            return
        if live:
            slow = (f" (over the {LIVE_BUDGET_MS:.0f} ms budget)"
                    if (self.live_ms or 0) > LIVE_BUDGET_MS else "")
            text = (f"Live (nominal, no intervals): {self.live_ms or 0:.1f} ms{slow}; "
                    "full run on release.")
        else:
            text = run_summary(result)
        self.status_label.setText(verdict_text(result) + text)
        self._fill(result)

    def _fill(self, result: SimulationResult) -> None:
        fill_levels_table(self.levels_table, result)
        fill_metrics_table(self.metrics_table, result)

    def metric_value(self, key: str, structure: str | None = None) -> float | None:
        """The shown result's value of a metric (None if absent)."""
        if self.result is None or not self.result.ok:
            return None
        for m in self.result.metrics:
            if m.key == key and (structure is None or m.structure == structure):
                return m.value
        return None


class TrajectoryRehearsalPanel(RehearsalPanel):
    """A rehearsal placed along a straight line: ``plan`` (entry and target ends, LPS mm) is
    placed and dragged with ``tool`` (starting in ``placing_mode``) in any slice view, drawn
    by ``decoration``; subclasses implement :meth:`_plan_changed`."""

    placing_mode = "entry"

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        self.plan = TrajectoryPlan()
        self.tool = PlacementTool(self.plan, mode=self.placing_mode)
        self.decoration = PathDecoration(self.plan)
        self.place_buttons: dict[str, QPushButton] = {}
        super().__init__(window, parent)
        self._attach_placement(self.plan, self.decoration, self._plan_changed)

    def _add_placing_row(self, layout: QVBoxLayout, buttons: tuple[tuple[str, str], ...],
                         points_text: str) -> dict[str, QPushButton]:
        """A row of checkable place/drag buttons (``(which, text)``, which = "entry" or
        "target") and ``points_label`` under it; returns the buttons by ``which``."""
        row = QHBoxLayout()
        for which, text in buttons:
            button = QPushButton(text)
            button.setCheckable(True)
            button.toggled.connect(partial(self._placing, which))
            row.addWidget(button)
            self.place_buttons[which] = button
        layout.addLayout(row)
        self.points_label = QLabel(points_text)
        layout.addWidget(self.points_label)
        return self.place_buttons

    def _placing(self, which: str, checked: bool) -> None:
        other = self.place_buttons["target" if which == "entry" else "entry"]
        toggle_placing(self.window, self.tool, which, checked, other)

    def _plan_changed(self, dragging: bool) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the placed ends and their traffic light."""
        self.plan.entry_lps = self.plan.target_lps = None
        self.plan.set_level(None)


def save_rehearsal(window: MainWindow, panel: Any, kind: str, *, new: bool = True) -> Any:
    """Save ``panel``'s rehearsal (planning or rehearsal panel) through the Plans panel."""
    from surgiplan.errors import BadInputError

    plans = getattr(window, "plans_panel", None)
    inputs = panel_inputs(panel)
    if plans is None or inputs is None:
        raise BadInputError(f"the {kind} rehearsal is not placed yet",
                            action="place it in the slice views first")
    result = panel.result
    full = result is not None and result.ok and result.provenance is not None
    spec = getattr(getattr(panel, "simulator", None), "spec", None)
    entry = panel.entry() if hasattr(panel, "entry") else None
    simulator_id = entry.spec.id if entry is not None else spec.id if spec else None
    plan = plans.add_intervention(kind, inputs, result if full else None,
                                  label="Trajectory" if kind == "trajectory" else None,
                                  simulator_id=simulator_id, parameters=panel.form.values(),
                                  uncertainty=panel.uncertainty(), new_plan=new)
    plans.select(plan.name)
    window.statusBar().showMessage(f"Saved the {kind} rehearsal in {plan.name}", 5000)
    return plan


def panel_inputs(panel: Any) -> Any:
    """The panel's current simulator input, or None when nothing (valid) is placed."""
    plan = getattr(panel, "plan", None)
    if plan is not None and hasattr(plan, "complete") and not plan.complete():
        return None
    try:
        return panel.inputs()
    except Exception:
        return None


def working_rehearsals(window: MainWindow) -> list[tuple[str, Any]]:
    """``(kind, panel)`` of every rehearsal panel of the window (trajectory first)."""
    names = (("trajectory", "planning_panel"), ("implant", "implant_panel"),
             ("ablation", "ablation_panel"), ("resection", "resection_panel"))
    return [(kind, getattr(window, attr)) for kind, attr in names if hasattr(window, attr)]


def unsaved_rehearsals(window: MainWindow) -> list[tuple[str, Any]]:
    """The placed rehearsals whose exact input is in no plan of the case (would be lost)."""
    plans = getattr(window, "plans_panel", None)
    saved = {json.dumps(i.inputs, sort_keys=True)
             for p in (plans.plans() if plans is not None else []) for i in p.interventions}
    out = []
    for kind, panel in working_rehearsals(window):
        inputs = panel_inputs(panel)
        if inputs is not None and json.dumps(inputs.model_dump(mode="json"),
                                             sort_keys=True) not in saved:
            out.append((kind, panel))
    return out


def ask_save_rehearsals(window: MainWindow, kinds: list[str]) -> QMessageBox.StandardButton:
    """Ask Save (as plans) / Discard / Cancel for unsaved rehearsals; tests replace this."""
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved rehearsals",
                      f"These rehearsals are not saved as plans: {', '.join(kinds)}. Save each "
                      "as a new plan?", buttons, window)
    box.setObjectName("unsaved_rehearsals")
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    return QMessageBox.StandardButton(box.exec())


def confirm_unsaved_rehearsals(window: MainWindow) -> bool:
    """Before closing: True to go on. Unsaved rehearsals are saved as new plans (the case is
    then dirty and the window asks to save it), discarded, or the close is cancelled."""
    unsaved = unsaved_rehearsals(window) if getattr(window, "ask_rehearsals_on_close",
                                                    True) else []
    if not unsaved:
        return True
    answer = ask_save_rehearsals(window, [k for k, _ in unsaved])
    if answer == QMessageBox.StandardButton.Cancel:
        return False
    if answer == QMessageBox.StandardButton.Save:
        for kind, panel in unsaved:
            save_rehearsal(window, panel, kind)
    return True


def rehearsal_panel_classes() -> tuple[type[RehearsalPanel], ...]:
    """The rehearsal panel of each kind (implant, ablation, resection); each offers the
    simulators of its kind that declare what it needs (:func:`panel_simulators`)."""
    from surgiplan.ui.rehearse.ablation_panel import AblationPanel
    from surgiplan.ui.rehearse.implant_panel import ImplantPanel
    from surgiplan.ui.rehearse.resection_panel import ResectionPanel

    return ImplantPanel, AblationPanel, ResectionPanel


def install_rehearsals(window: MainWindow) -> QTabWidget:
    """Add the "Rehearse" dock (a tab per kind: implant, ablation, resection) next to the
    planning dock; the panels are ``window.<kind>_panel``."""
    tabs = QTabWidget()
    tabs.setObjectName("rehearsal_tabs")
    for cls in rehearsal_panel_classes():
        panel = cls(window)
        setattr(window, f"{cls.kind}_panel", panel)
        tabs.addTab(panel, cls.kind.capitalize())
    tabs.setMinimumWidth(400)
    tabs.currentChanged.connect(lambda _i: window.set_slice_tool(None))
    dock = add_dock(window, "Rehearse", tabs, name="dock_rehearse", features=FIXED_DOCK,
                    beside=("dock_planning", "dock_structures"))
    anchor = window.findChild(QDockWidget, "dock_structures") or \
        window.findChild(QDockWidget, "dock_planning")
    if anchor is not None:
        QTimer.singleShot(0, anchor.raise_)
    window.rehearsal_dock = dock
    window.rehearsal_tabs = tabs
    from surgiplan.ui.rehearse.working_state import install_working_keeper

    install_working_keeper(window)  # the working rehearsals are kept in the case
    return tabs
