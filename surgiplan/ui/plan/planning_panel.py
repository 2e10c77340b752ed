"""The planning dock: choose a simulator, set its parameters, place a trajectory, read the risk.

* Simulators come from the discovered plug-ins (``surgiplan.simulators`` entry points, found in
  a worker); disabled ones are listed greyed out with their reason.
* The parameter form is built from the simulator's declared schema
  (:class:`~surgiplan.ui.widgets.parameter_form.ParameterForm`), as are the uncertainty, tool and
  search settings, so any simulator's parameters appear without code here.
* Entry and target are placed and dragged in any slice view
  (:mod:`surgiplan.ui.plan.trajectory_tools`). While dragging, the simulator's fast nominal path
  (``samples=0``) re-scores synchronously within a small time budget; on release the full Monte
  Carlo runs in a worker and results of superseded runs are dropped. A simulator that raises
  shows a failed result; one that blows the live budget loses live updates; one that hangs is
  stopped by the runner's timeout - the app keeps working in every case.
* Results: per-structure traffic lights (safe / caution / breach, breach probability with its
  95 % interval), every metric with its value and 95 % interval, warnings, provenance on demand.
* The safest-path search runs in a worker (progress, cancel); its candidates are listed
  (Pareto-front members starred), a click previews one, "Pin" keeps it; the skin heat-map and
  candidate paths are drawn in 3D (:mod:`surgiplan.ui.plan.planning_3d`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDockWidget,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from surgiplan.model.structures import Role
from surgiplan.simulation import (
    Kind,
    Metric,
    Parameter,
    PathCandidate,
    PathSearchRequest,
    PathSearchResult,
    PluginEntry,
    SimulationContext,
    SimulationResult,
    TrajectoryInput,
    UncertaintyModel,
    discover,
    run_simulation,
    submit,
)
from surgiplan.simulation.path_search import DEFAULT_MAX_ANGLE_DEG, DEFAULT_MAX_LENGTH_MM
from surgiplan.simulation.result import Level, Status
from surgiplan.simulation.runner import run_search
from surgiplan.simulation.uncertainty import (
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    SEEG_ROBOT_PROFILE,
    ErrorProfile,
)
from surgiplan.twin import Twin
from surgiplan.ui.plan.planning_3d import Planning3D
from surgiplan.ui.plan.trajectory_tools import (
    LEVEL_RGB,
    PathDecoration,
    PlacementTool,
    TrajectoryPlan,
    format_lps,
    grade_letter,
    level_color,
)
from surgiplan.ui.views.probe_view import ProbeView
from surgiplan.ui.widgets.docks import FIXED_DOCK, add_dock
from surgiplan.ui.widgets.parameter_form import ParameterForm
from surgiplan.ui.widgets.table_rows import Cell, new_item, write_rows

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

LIVE_BUDGET_S = 0.25  # a live re-score slower than this turns live updates off for the plug-in
WARM_UP_TIMEOUT_S = 10.0
LEVEL_ORDER = {Level.SAFE: 0, Level.CAUTION: 1, Level.BREACH: 2}

TOOL_PARAMETERS = (
    Parameter(key="diameter_mm", title="Tool diameter", unit="mm", default=0.8, minimum=0.1,
              maximum=20.0, description="e.g. SEEG electrode 0.8 mm, DBS lead 1.27 mm, "
              "biopsy needle 1.8-2.5 mm"),
)


def uncertainty_parameters(profile: ErrorProfile = SEEG_ROBOT_PROFILE) -> tuple[Parameter, ...]:
    """The Uncertainty form's fields, placement-error defaults from a simulator's profile."""
    cited = f"{profile.source} ({profile.derivation})" if profile.derivation else profile.source
    return (
        Parameter(key="entry_sd_mm", title="Entry placement error SD", unit="mm",
                  default=profile.entry_sd_mm, minimum=0.0, maximum=50.0, source=cited,
                  description=f"per-axis SD of an isotropic Gaussian error at the entry "
                  f"({profile.name})"),
        Parameter(key="target_sd_mm", title="Target placement error SD", unit="mm",
                  default=profile.target_sd_mm, minimum=0.0, maximum=50.0, source=cited,
                  description=f"per-axis SD of an isotropic Gaussian error at the target "
                  f"({profile.name})"),
        Parameter(key="boundary_sd_mm", title="Structure boundary SD", unit="mm", default=1.0,
                  minimum=0.0, maximum=50.0, description="default: one voxel (largest spacing)"),
        Parameter(key="samples", title="Monte Carlo samples", type="int",
                  default=DEFAULT_SAMPLES, minimum=0, maximum=100_000,
                  description="0: nominal values only, no intervals"),
        Parameter(key="seed", title="Random seed", type="int", default=DEFAULT_SEED,
                  minimum=0, maximum=2_000_000_000, description="same seed, same answer"),
        Parameter(key="timeout_s", title="Time limit", unit="s", default=60.0, minimum=0.5,
                  maximum=3600.0, description="a run longer than this is stopped (failed)"),
    )


def model_from_form(values: dict[str, Any], profile: ErrorProfile, *,
                    samples: int | None = None) -> UncertaintyModel:
    """An UncertaintyModel from Uncertainty-form values; SDs equal to the profile's defaults
    are attributed to the profile (its citation), others to the user."""
    entry, target = float(values["entry_sd_mm"]), float(values["target_sd_mm"])
    default = abs(entry - profile.entry_sd_mm) < 1e-9 and abs(target - profile.target_sd_mm) < 1e-9
    model = UncertaintyModel(entry_sd_mm=entry, target_sd_mm=target,
                             boundary_sd_mm=values["boundary_sd_mm"],
                             samples=values["samples"] if samples is None else samples,
                             seed=values["seed"])
    if default:
        return UncertaintyModel.for_profile(profile, boundary_sd_mm=model.boundary_sd_mm,
                                            samples=model.samples, seed=model.seed)
    return model.resolved(profile)


UNCERTAINTY_PARAMETERS = uncertainty_parameters()
SEARCH_PARAMETERS = (
    Parameter(key="max_length_mm", title="Maximum path length", unit="mm",
              default=DEFAULT_MAX_LENGTH_MM, minimum=5.0, maximum=400.0,
              description="longest tool available"),
    Parameter(key="max_angle_deg", title="Maximum angle to skin normal", unit="deg",
              default=DEFAULT_MAX_ANGLE_DEG, minimum=1.0, maximum=90.0,
              description="drill bits skid beyond about 30 deg"),
    Parameter(key="top_k", title="Candidates listed", type="int", default=10, minimum=1,
              maximum=50),
)


def _table(headers: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def format_value(value: float | None, unit: str) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    if unit == "" and 0.0 <= value <= 1.0:
        return f"{value:.3f}"
    return f"{value:.2f} {unit}".rstrip()


def format_interval(ci: tuple[float, float] | None, unit: str) -> str:
    if ci is None or not all(np.isfinite(v) for v in ci):
        return "—"
    return f"[{format_value(ci[0], '')}, {format_value(ci[1], '')}] {unit}".rstrip()


def metric_value_text(m: Metric) -> str:
    """A metric's value cell: the Gertzbein-Robbins grade as its letter, else value + unit."""
    if m.key == "gertzbein_grade":
        return grade_letter(m.value)
    return format_value(m.value, m.unit)


def metric_interval_text(m: Metric) -> str:
    """A metric's interval cell: "[lo, hi] unit (prediction)", "none: reason", or why the
    value is not assessable."""
    if m.not_assessable:
        share = ("" if m.failed_draw_share is None
                 else f"; {100 * m.failed_draw_share:.0f} % of draws failed")
        return f"not assessable: {m.not_assessable}{share}"
    if m.ci95 is None:
        return f"none: {m.no_interval_reason}" if m.no_interval_reason else "—"
    if m.key == "gertzbein_grade":
        return f"[{grade_letter(m.ci95[0])}, {grade_letter(m.ci95[1])}] ({m.interval_kind})"
    return f"{format_interval(m.ci95, m.unit)} ({m.interval_kind})"


def verdict_text(result: SimulationResult) -> str:
    """"Verdict: CAUTION (reason; reason). " for a result with something to judge, else ""."""
    level = worst_level(result)
    if level is None:
        return ""
    reasons = result.verdict_reasons()
    why = f" ({'; '.join(reasons[:3])})" if reasons else ""
    return f"Verdict: {str(level).upper()}{why}. "


def worst_level(result: SimulationResult) -> Level | None:
    """The result's verdict: worst of its levels, concerns and unassessable metrics (None for
    a failed run or when there is nothing to judge)."""
    if not result.ok:
        return None
    return result.verdict


SCENE_DEFER_MS = 150  # while dragging, 3D follows when the drag pauses this long
MAX_DEFER_MS = 1000  # ... or this long when drag frames arrive slowly (a loaded machine)


class PauseTimer(QTimer):
    """A single-shot timer that fires when restarts pause: its interval is SCENE_DEFER_MS, or
    four times the median gap between the last restarts when frames come slower (up to
    MAX_DEFER_MS), so slow drag frames (a loaded machine) never count as a pause and never
    trigger a 3D render (~0.5 s) in the middle of a drag."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSingleShot(True)
        self.setInterval(SCENE_DEFER_MS)
        self._last: float | None = None
        self._gaps: list[float] = []

    def start(self, *args) -> None:
        now = time.perf_counter()
        if self._last is not None:
            gap_ms = (now - self._last) * 1000.0
            self._gaps = ([*self._gaps, gap_ms] if gap_ms < MAX_DEFER_MS else [])[-5:]
        self._last = now
        gaps = sorted(self._gaps)
        median = gaps[len(gaps) // 2] if gaps else 0.0
        self.setInterval(int(min(MAX_DEFER_MS, max(SCENE_DEFER_MS, 4.0 * median))))
        super().start(*args)


def defer_timer(parent: QWidget, slot) -> QTimer:
    """A :class:`PauseTimer` calling ``slot`` (restart it on every drag frame)."""
    timer = PauseTimer(parent)
    timer.timeout.connect(slot)
    return timer


class DragFrames(QObject):
    """Drag frames (``frame()``: score and paint the moved object) at most twice per
    event-loop pass: the first move of a pass at once, later moves of the same pass merged
    into one frame when the pass ends (a 0-ms timer), so moves queued during a slow frame
    never pile up and a lone move is never delayed."""

    def __init__(self, parent: QObject, frame) -> None:
        super().__init__(parent)
        self._frame = frame
        self._due = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._pass_ended)

    def request(self) -> None:
        if self._timer.isActive():
            self._due = True
            return
        self._timer.start()
        self._frame()

    def pending(self) -> bool:
        """A merged frame is still to run."""
        return self._due

    def cancel(self) -> None:
        self._due = False
        self._timer.stop()

    def _pass_ended(self) -> None:
        if self._due:
            self._due = False
            self._frame()


def set_scrolled_body(widget: QWidget, body: QWidget) -> None:
    """Lay ``body`` out as ``widget``'s whole content, scrollable, without margins (the wheel
    changes a field's value only when it has focus: :func:`install_wheel_guard`)."""
    from surgiplan.ui.widgets.parameter_form import install_wheel_guard

    install_wheel_guard()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(body)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)


def wrapped_label(text: str = "") -> QLabel:
    """A word-wrapping label (notes and messages under a form)."""
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def toggle_placing(window: MainWindow, tool: PlacementTool, which: str, checked: bool,
                   other: QPushButton) -> None:
    """A place/drag button for ``which`` end ("entry"/"target") was toggled: when checked it
    unchecks ``other`` and makes ``tool`` the slice tool; the tool goes once both are off."""
    if checked:
        other.blockSignals(True)
        other.setChecked(False)
        other.blockSignals(False)
        tool.mode = which
        window.set_slice_tool(tool)
    elif not other.isChecked():
        window.set_slice_tool(None)


def show_failure(label: QLabel, result: SimulationResult) -> bool:
    """Show a failed or cancelled result's reason in red on ``label`` (True); an ok result only
    clears the red (False)."""
    if not result.ok:
        word = "CANCELLED" if result.status is Status.CANCELLED else "FAILED"
        label.setText(f"{word}: {result.error}")
        label.setStyleSheet("color: #ff6060; font-weight: bold;")
        return True
    if label.styleSheet():  # setting a style sheet re-polishes the label, even the same one
        label.setStyleSheet("")
    return False


def run_summary(result: SimulationResult) -> str:
    """One line on how a full result was computed (Monte Carlo samples, seed, time in s)."""
    prov = result.provenance
    if prov is not None and prov.samples:
        return f"Monte Carlo: {prov.samples} samples, seed {prov.seed}, {prov.run_time_s:.2f} s."
    return "Nominal values (0 samples: no intervals)."


def fill_levels_table(table: QTableWidget, result: SimulationResult, *,
                      with_ci: bool = False) -> None:
    """Show a row per traffic light: structure, level, min distance and margin (mm),
    P(breach) (with its 95 % interval from the ``breach_probability`` metric if ``with_ci``);
    rewritten in place (:func:`write_rows`)."""
    breach_ci = {m.structure: m for m in result.metrics if m.key == "breach_probability"}
    rows = []
    for lv in result.levels:
        color = level_color(lv.level, 200)
        prob = "—"
        if lv.breach_probability is not None:
            ci = breach_ci.get(lv.structure) if with_ci else None
            prob = f"{lv.breach_probability:.3f}"
            if ci is not None and ci.ci95 is not None:
                prob += f" [{ci.ci95[0]:.3f}, {ci.ci95[1]:.3f}]"
        cells = [lv.structure, str(lv.level), format_value(lv.min_distance_mm, "mm"),
                 format_value(lv.margin_mm, "mm"), prob]
        rows.append([Cell(text, color if col < 2 else None) for col, text in enumerate(cells)])
    write_rows(table, rows)


def fill_metrics_table(table: QTableWidget, result: SimulationResult,
                       extra: Sequence[Sequence[str | None]] = ()) -> None:
    """Show a row per metric: title, structure, value and 95 % interval (tinted by the
    structure's traffic light; the metric key as tooltip), then the ``extra`` rows (cell
    texts, None: empty); rewritten in place (:func:`write_rows`)."""
    levels = {lv.structure: lv.level for lv in result.levels}
    rows = []
    for m in result.metrics:
        color = level_color(levels[m.structure], 120) if m.structure in levels else None
        value = "not assessable" if m.not_assessable else metric_value_text(m)
        cells = [m.title, m.structure or "", value, metric_interval_text(m)]
        rows.append([Cell(text, color, m.key) for text in cells])
    write_rows(table, rows + [[Cell(text) for text in texts] for texts in extra])


class PlanningPanel(QWidget):
    """Trajectory planning for a :class:`MainWindow` (see the module docstring)."""

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("planning_panel")
        self.window = window
        self.twin: Twin | None = None
        self.context: SimulationContext | None = None
        self.entries: list[PluginEntry] | None = None
        self.plan = TrajectoryPlan(self)
        self.tool = PlacementTool(self.plan)
        self.decoration = PathDecoration(self.plan)
        self.probe = ProbeView()
        self.planning3d = Planning3D(window.view3d)
        self.result: SimulationResult | None = None
        self.search_result: PathSearchResult | None = None
        self.pinned: list[PathCandidate] = []
        self.live_ms: float | None = None
        self.live_disabled: set[str] = set()
        self._generation = 0
        self._scene_timer = defer_timer(self, self._update_scene)
        self._drag_frames = DragFrames(self, self._drag_frame)
        self._dragging = False
        self._search_generation = 0
        self._mc_job = None
        self._search_job = None
        self._prepared = False
        self._prepare_generation = 0
        self._discovering = False
        self._bridge = None
        self.provenance_dialog: QDialog | None = None
        self._stale_timer = QTimer(self, singleShot=True, interval=400)
        self._stale_timer.timeout.connect(self._structures_changed)
        self._build()
        self._connect()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._simulator_box())
        layout.addWidget(self._placement_box())
        layout.addWidget(self._results_box(), 1)
        layout.addWidget(self._search_box(), 1)
        set_scrolled_body(self, body)

    def _simulator_box(self) -> QGroupBox:
        box = QGroupBox("Simulator")
        v = QVBoxLayout(box)
        self.simulator_combo = QComboBox()
        self.simulator_combo.setObjectName("simulator_combo")
        self.simulator_combo.addItem("Finding simulator plug-ins…")
        self.simulator_combo.currentIndexChanged.connect(self._simulator_chosen)
        self.simulator_note = wrapped_label()
        self.form = ParameterForm()
        self.form.setObjectName("simulator_parameters")
        self.tool_form = ParameterForm(TOOL_PARAMETERS)
        self.uncertainty_form = ParameterForm(UNCERTAINTY_PARAMETERS)
        self.settings_tabs = QTabWidget()
        self.settings_tabs.addTab(self.form, "Parameters")
        self.settings_tabs.addTab(self.tool_form, "Tool")
        self.settings_tabs.addTab(self.uncertainty_form, "Uncertainty")
        v.addWidget(self.simulator_combo)
        v.addWidget(self.simulator_note)
        v.addWidget(self.settings_tabs)
        return box

    def _placement_box(self) -> QGroupBox:
        box = QGroupBox("Trajectory")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.entry_button = QPushButton("Place/drag entry")
        self.target_button = QPushButton("Place/drag target")
        self.place_group = QButtonGroup(self)
        self.place_group.setExclusive(False)
        for button in (self.entry_button, self.target_button):
            button.setCheckable(True)
            self.place_group.addButton(button)
            row.addWidget(button)
        v.addLayout(row)
        self.points_label = QLabel("Entry: —\nTarget: —")
        self.points_label.setObjectName("points_label")
        v.addWidget(self.points_label)
        row = QHBoxLayout()
        self.go_entry = QPushButton("Go to entry")
        self.go_target = QPushButton("Go to target")
        self.look_along = QPushButton("3D: look along path")
        self.probe_toggle = QCheckBox("Probe's eye")
        for w in (self.go_entry, self.go_target, self.look_along, self.probe_toggle):
            row.addWidget(w)
        v.addLayout(row)
        return box

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Results")
        v = QVBoxLayout(box)
        self.status_label = QLabel("Place an entry and a target.")
        self.status_label.setObjectName("status_label")
        self.status_label.setWordWrap(True)
        self.levels_table = _table(["Structure", "Level", "Min distance", "Margin",
                                    "P(breach) [95 %]"], "levels_table")
        self.metrics_table = _table(["Metric", "Structure", "Value", "95 % interval"],
                                    "metrics_table")
        self.warnings_label = QLabel("")
        self.warnings_label.setObjectName("warnings_label")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #e0a030;")
        self.provenance_button = QPushButton("Provenance…")
        self.provenance_button.setEnabled(False)
        v.addWidget(self.status_label)
        v.addWidget(self.levels_table)
        v.addWidget(self.metrics_table)
        v.addWidget(self.warnings_label)
        v.addWidget(self.provenance_button)
        return box

    def _search_box(self) -> QGroupBox:
        box = QGroupBox("Safest-path search")
        v = QVBoxLayout(box)
        self.search_form = ParameterForm(SEARCH_PARAMETERS)
        v.addWidget(self.search_form)
        self.nogo_edit = QLineEdit()
        self.nogo_edit.setObjectName("nogo_structures")
        self.nogo_edit.setPlaceholderText("no-go structures, e.g. orbit, sinus, ear")
        self.nogo_edit.setToolTip("Structures no path may cross (comma-separated names); the "
                                  "case's orbit/eye/face/sinus/ear/nose structures are filled "
                                  "in on open")
        v.addWidget(self.nogo_edit)
        row = QHBoxLayout()
        self.nogo_radius = QDoubleSpinBox()
        self.nogo_radius.setRange(2.0, 80.0)
        self.nogo_radius.setValue(20.0)
        self.nogo_radius.setSuffix(" mm")
        self.nogo_add = QPushButton("No-go zone at cursor")
        self.nogo_add.setToolTip("No entry within this radius of the crosshair (click the skin "
                                 "over the eyebrow, face, ear first)")
        self.nogo_clear = QPushButton("Clear zones")
        for w in (self.nogo_add, self.nogo_radius, self.nogo_clear):
            row.addWidget(w)
        v.addLayout(row)
        self.nogo_spheres: list[tuple[float, float, float, float]] = []
        self.nogo_add.clicked.connect(self.add_nogo_at_cursor)
        self.nogo_clear.clicked.connect(lambda: (self.nogo_spheres.clear(),
                                                 self._say_nogo()))
        self.face_zone_button = QPushButton("No entry on face and ears (from anatomy)")
        self.face_zone_button.setObjectName("face_zone_button")
        self.face_zone_button.setToolTip("Entries only over the cranial vault: the skin farther "
                                         "than 20 mm from the brain (face, ears) becomes a "
                                         "no-go structure")
        self.face_zone_button.clicked.connect(self.derive_face_zone)
        v.addWidget(self.face_zone_button)
        row = QHBoxLayout()
        self.search_button = QPushButton("Find safest entries")
        self.search_button.setObjectName("search_button")
        self.search_cancel = QPushButton("Cancel")
        self.search_cancel.setEnabled(False)
        row.addWidget(self.search_button)
        row.addWidget(self.search_cancel)
        v.addLayout(row)
        self.search_label = wrapped_label("Place a target, then search for the safest entries.")
        v.addWidget(self.search_label)
        row = QHBoxLayout()
        self.heatmap_box = QCheckBox("Heat-map")
        self.heatmap_box.setChecked(True)
        self.heatmap_combo = QComboBox()
        self.heatmap_combo.addItems(["risk", "clearance"])
        row.addWidget(self.heatmap_box)
        row.addWidget(self.heatmap_combo)
        row.addStretch(1)
        v.addLayout(row)
        self.candidates_table = _table(["#", "Pareto", "Clearance", "Risk", "Length", "Angle",
                                        "Exact"], "candidates_table")
        self.candidates_table.setMinimumHeight(160)
        v.addWidget(self.candidates_table)
        row = QHBoxLayout()
        self.pin_button = QPushButton("Pin selected")
        self.unpin_button = QPushButton("Clear pins")
        row.addWidget(self.pin_button)
        row.addWidget(self.unpin_button)
        v.addLayout(row)
        self.pinned_label = wrapped_label("Pinned: none")
        v.addWidget(self.pinned_label)
        return box

    def _connect(self) -> None:
        self.entry_button.toggled.connect(partial(self._placing, "entry"))
        self.target_button.toggled.connect(partial(self._placing, "target"))
        self.plan.changed.connect(self._plan_changed)
        self.plan.level_changed.connect(lambda: self._repaint_views(deferred=self._dragging))
        self.form.values_changed.connect(lambda _v: self._settings_changed())
        self.tool_form.values_changed.connect(lambda _v: self._settings_changed())
        self.uncertainty_form.values_changed.connect(lambda _v: self.run_full())
        self.provenance_button.clicked.connect(self.show_provenance)
        self.search_button.clicked.connect(self.start_search)
        self.search_cancel.clicked.connect(self.cancel_search)
        self.heatmap_box.toggled.connect(self.planning3d.set_heatmap_visible)
        self.heatmap_combo.currentTextChanged.connect(lambda _t: self._show_heatmap())
        self.candidates_table.itemSelectionChanged.connect(self._candidate_selected)
        self.pin_button.clicked.connect(self.pin_selected)
        self.unpin_button.clicked.connect(self.clear_pins)
        self.go_entry.clicked.connect(partial(self._go_to, "entry"))
        self.go_target.clicked.connect(partial(self._go_to, "target"))
        self.look_along.clicked.connect(self._look_along)
        for view in self.window.slice_views.values():
            view.add_decoration(self.decoration)
            view.window_changed.connect(self.probe.set_window)
        self.window.case_loaded.connect(self.set_twin)

    # ------------------------------------------------------------------ simulators
    def showEvent(self, event) -> None:
        """Plug-ins are found, and distance maps built, only once the panel is shown."""
        super().showEvent(event)
        self.ensure_simulators()
        self.prepare()

    def ensure_simulators(self) -> None:
        """Discover the plug-ins in a worker (once)."""
        if self.entries is not None or self._discovering:
            return
        self._discovering = True
        self.window.runner.submit("Finding simulator plug-ins", lambda **_k: discover(),
                                  on_done=self.set_entries, on_error=self._discovery_failed)

    def _discovery_failed(self, exc: BaseException) -> None:
        self._discovering = False
        self.simulator_note.setText(f"Could not list simulator plug-ins: {exc}")

    def set_entries(self, entries: list[PluginEntry]) -> None:
        """Fill the simulator list (enabled first; disabled greyed out with their reason)."""
        self._discovering = False
        self.entries = list(entries)
        ordered = sorted(self.entries, key=lambda e: (not e.enabled,
                                                      e.spec is None or e.spec.kind != "trajectory",
                                                      e.name))
        self.simulator_combo.blockSignals(True)
        self.simulator_combo.clear()
        model = self.simulator_combo.model()
        for n, entry in enumerate(ordered):
            title = entry.spec.title if entry.spec is not None else entry.name
            text = title if entry.enabled else f"{entry.name} — disabled: {entry.reason}"
            self.simulator_combo.addItem(text, entry)
            self.simulator_combo.setItemData(n, entry.reason or title, Qt.ItemDataRole.ToolTipRole)
            if not entry.enabled:
                model.item(n).setEnabled(False)
        self.simulator_combo.blockSignals(False)
        first = next((n for n, e in enumerate(ordered) if e.enabled), -1)
        self.simulator_combo.setCurrentIndex(first)
        self._simulator_chosen()

    def select_simulator(self, simulator_id: str) -> None:
        for n in range(self.simulator_combo.count()):
            entry = self.simulator_combo.itemData(n)
            if entry is not None and entry.spec is not None and entry.spec.id == simulator_id \
                    and entry.enabled:
                self.simulator_combo.setCurrentIndex(n)
                return
        raise KeyError(f"no enabled simulator {simulator_id!r}")

    def entry(self) -> PluginEntry | None:
        entry = self.simulator_combo.currentData()
        return entry if isinstance(entry, PluginEntry) and entry.enabled else None

    @property
    def simulator(self) -> Any:
        entry = self.entry()
        return None if entry is None else entry.simulator

    def _runnable(self) -> bool:
        """A trajectory simulator is chosen (this panel provides trajectory inputs)."""
        entry = self.entry()
        return entry is not None and entry.spec.kind == Kind.TRAJECTORY

    def _simulator_chosen(self, *_: Any) -> None:
        entry = self.entry()
        self.form.set_parameters(entry.spec.parameters if entry is not None else ())
        if entry is None:
            self.simulator_note.setText("No enabled simulator.")
        elif entry.spec.kind != Kind.TRAJECTORY:
            self.simulator_note.setText(f"{entry.spec.description}\nThis panel plans "
                                        f"trajectories; a {entry.spec.kind} simulator needs "
                                        f"its own inputs.")
        else:
            roles = ", ".join(entry.spec.required_roles) or "none"
            self.simulator_note.setText(f"{entry.spec.description}\nv{entry.spec.version}; "
                                        f"needs structure roles: {roles}")
        self._generation += 1  # results of the previous simulator are stale
        self._show_result(None)
        searchable = entry is not None and "search" in entry.spec.capabilities
        self.search_button.setEnabled(searchable)
        self._prepared = False
        self.prepare()

    # ------------------------------------------------------------------ the twin
    def set_twin(self, twin: Twin | None) -> None:
        """Plan on ``twin`` (the main window calls this when a case is loaded)."""
        from surgiplan.ui.widgets.twin_bridge import TwinEventBridge

        if self._bridge is not None:
            self._bridge.detach()
            self._bridge.deleteLater()
            self._bridge = None
        self._cancel_jobs()
        self.twin = twin
        self.context = None if twin is None else SimulationContext(twin)
        self.result = self.search_result = None
        self.pinned = []
        self.nogo_spheres = []
        self._suggest_nogo()
        self.plan.entry_lps = self.plan.target_lps = None
        self.plan.set_level(None)
        self.planning3d.clear()
        self._show_result(None)
        self._show_candidates()
        window = self.window.slice_views["axial"].window if twin is not None else None
        self.probe.set_twin(twin, window)
        if twin is not None:
            self._bridge = TwinEventBridge(twin, self)
            self._bridge.event.connect(self._twin_event)
            self.uncertainty_form.set_values({"boundary_sd_mm": max(twin.geometry.spacing_mm)})
        self._prepared = False
        self._plan_changed(False)
        self.prepare()

    def _twin_event(self, name: str, payload: dict) -> None:
        if name.startswith("structure_"):
            self._stale_timer.start()

    def _structures_changed(self) -> None:
        """Structures changed: distance maps must be rebuilt, the search is out of date."""
        self._prepared = False
        if self.search_result is not None:
            self.search_result = None
            self.planning3d.clear_heatmap()
            self._show_candidates()
            self.search_label.setText("Structures changed: search again.")
        self.prepare()

    def prepare(self) -> None:
        """Build what the simulator reads (the critical structures' region-of-interest
        distance maps, the skin surface for entry normals; never full-grid maps) and warm it
        up, in a worker."""
        if self.twin is None or not self._runnable() or self._prepared or not self.isVisible():
            return
        self._prepare_generation += 1
        gen = self._prepare_generation
        context, simulator, params = self.context, self.simulator, self.form.values()
        geometry = self.twin.geometry

        def work(*, progress=None, cancel=None) -> SimulationResult:
            wanted = [s for s in context.structures if s.role in (Role.CRITICAL, Role.SKIN)]
            for n, s in enumerate(wanted):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if progress is not None:
                    progress(n / max(1, len(wanted)), f"preparing {s.name}")
                if s.role is Role.SKIN:
                    context.surface(s.name)
                else:
                    context.distance_roi(s.name)
            centre = geometry.slice_centre_lps()
            warm = TrajectoryInput(entry_lps=tuple(centre + 20.0), target_lps=tuple(centre))
            # a third-party plug-in warms up in its own process (killed at the timeout)
            return run_simulation(simulator, context, warm, parameters=params,
                                  uncertainty=UncertaintyModel(samples=0),
                                  timeout_s=WARM_UP_TIMEOUT_S, cancel=cancel)

        def done(warm_result: Any) -> None:
            if gen == self._prepare_generation and self.context is context:
                self._prepared = True
                if isinstance(warm_result, SimulationResult) and \
                        warm_result.status is Status.FAILED:
                    self._show_failed(f"warm-up: {warm_result.error}")
                if self.plan.complete():
                    self._plan_changed(False)

        self.window.runner.submit("Preparing trajectory planning", work, on_done=done,
                                  on_error=self._prepare_failed)

    def _prepare_failed(self, exc: BaseException) -> None:
        self.status_label.setText(f"Preparing failed: {exc}")

    def is_prepared(self) -> bool:
        return self._prepared

    # ------------------------------------------------------------------ placing
    def _placing(self, which: str, checked: bool) -> None:
        other = self.target_button if which == "entry" else self.entry_button
        toggle_placing(self.window, self.tool, which, checked, other)

    def start_placing(self, which: str) -> None:
        (self.entry_button if which == "entry" else self.target_button).setChecked(True)

    def _repaint_views(self, *, deferred: bool = False) -> None:
        """Slices now; the 3D path and the probe's eye (~50 ms each, plus a 3D render) now,
        or while dragging (``deferred``) once the drag pauses for SCENE_DEFER_MS."""
        for view in self.window.slice_views.values():
            view.update()
        if deferred:
            self._scene_timer.start()
            return
        self._scene_timer.stop()
        self._update_scene()

    def _update_scene(self) -> None:
        self.planning3d.show_path(self.plan.entry_lps, self.plan.target_lps,
                                  self.plan.diameter_mm, self.plan.level)
        self.probe.set_path(self.plan.entry_lps, self.plan.target_lps, self.plan.diameter_mm,
                            level_color(self.plan.level))

    def _plan_changed(self, dragging: bool) -> None:
        """A drag move is scored and painted through DragFrames (:meth:`_drag_frame`);
        a placement or release at once, with the Monte Carlo run."""
        self._dragging = dragging
        self.plan.diameter_mm = float(self.tool_form.values()["diameter_mm"])
        if dragging:
            self._drag_frames.request()
            return
        self._drag_frames.cancel()
        self.points_label.setText(self._points_text())
        if self.plan.complete() and self._runnable():
            self.rescore_live()
            self.run_full()
        # the probe's-eye dock opens only on request: opening it while placing would resize
        # the slice views under the cursor (issue 15, item 2)
        self._repaint_views()

    def _drag_frame(self) -> None:
        """One drag frame: the live nominal score, the slices; 3D once the drag pauses."""
        self.points_label.setText(self._points_text())
        if self.plan.complete() and self._runnable():
            self.rescore_live()
        self._repaint_views(deferred=True)

    def _points_text(self) -> str:
        fmt = format_lps
        text = f"Entry: {fmt(self.plan.entry_lps)}\nTarget: {fmt(self.plan.target_lps)}"
        if self.plan.complete():
            text += f"\nLength {self.plan.length_mm():.1f} mm"
        return text

    def _settings_changed(self) -> None:
        self.plan.diameter_mm = float(self.tool_form.values()["diameter_mm"])
        if self.plan.complete():
            self._plan_changed(False)

    def _go_to(self, which: str) -> None:
        point = self.plan.point(which)
        if point is not None:
            self.window.set_cursor(point)

    def _look_along(self) -> None:
        if self.plan.complete():
            self.planning3d.look_along_path(self.plan.entry_lps, self.plan.target_lps)

    # ------------------------------------------------------------------ scoring
    def inputs(self) -> TrajectoryInput:
        return TrajectoryInput(entry_lps=tuple(self.plan.entry_lps),
                               target_lps=tuple(self.plan.target_lps),
                               diameter_mm=float(self.tool_form.values()["diameter_mm"]))

    def uncertainty(self, *, samples: int | None = None) -> UncertaintyModel:
        profile = getattr(self.simulator, "error_profile", None)
        if not isinstance(profile, ErrorProfile):
            profile = SEEG_ROBOT_PROFILE
        return model_from_form(self.uncertainty_form.values(), profile, samples=samples)

    def rescore_live(self) -> SimulationResult | None:
        """Nominal re-score (no Monte Carlo) on this thread within LIVE_BUDGET_S."""
        entry = self.entry()
        if entry is None or self.context is None or entry.spec.id in self.live_disabled:
            return None
        if not self._prepared:
            self.status_label.setText("Preparing distance maps… (scores follow)")
            return None
        started = time.perf_counter()
        try:
            job = submit(entry.simulator, self.context, self.inputs(),
                         parameters=self.form.values(), uncertainty=self.uncertainty(samples=0),
                         timeout_s=LIVE_BUDGET_S)
        except Exception as exc:  # bad input for the spec
            self._show_failed(str(exc))
            return None
        result = job.wait(LIVE_BUDGET_S)
        self.live_ms = (time.perf_counter() - started) * 1000.0
        if result is None:
            job.cancel()
            self.live_disabled.add(entry.spec.id)
            self.status_label.setText(f"{entry.spec.id} took more than {LIVE_BUDGET_S * 1000:.0f}"
                                      f" ms: live updates off; full runs on release.")
            return None
        self._show_result(result, live=True)
        return result

    def run_full(self) -> None:
        """Full Monte Carlo run in a worker; a newer run makes this one's result stale."""
        if not (self.plan.complete() and self._runnable() and self.context is not None):
            return
        if not self._prepared:
            return  # prepare() runs it when done
        if self._mc_job is not None:
            self._mc_job.cancel()
        self._generation += 1
        gen = self._generation
        try:
            inputs, params = self.inputs(), self.form.values()
            model = self.uncertainty()
        except Exception as exc:
            self._show_failed(str(exc))
            return
        timeout = float(self.uncertainty_form.values()["timeout_s"])
        fn = partial(run_simulation, self.simulator, self.context, inputs, parameters=params,
                     uncertainty=model, timeout_s=timeout)
        self.status_label.setText(self.status_label.text().split("\n")[0] +
                                  f"\nMonte Carlo running ({model.samples} samples)…")
        self._mc_job = self.window.runner.submit(
            "Simulating trajectory", fn, on_done=partial(self._full_done, gen),
            on_error=lambda exc: self._full_done(gen, SimulationResult.failed(str(exc))))

    def _full_done(self, gen: int, result: SimulationResult) -> None:
        if gen != self._generation:
            return  # a newer run superseded this one
        self._mc_job = None
        self._show_result(result, live=False)

    def _cancel_jobs(self) -> None:
        self._generation += 1
        self._search_generation += 1
        self._prepare_generation += 1
        for job in (self._mc_job, self._search_job):
            if job is not None:
                job.cancel()
        self._mc_job = self._search_job = None

    # ------------------------------------------------------------------ results
    def _show_failed(self, message: str) -> None:
        self._show_result(SimulationResult.failed(message))

    def _show_result(self, result: SimulationResult | None, *, live: bool = False) -> None:
        self.result = result
        if result is None or not result.ok:  # else the tables are rewritten in place
            self.levels_table.setRowCount(0)
            self.metrics_table.setRowCount(0)
        self.warnings_label.setText("")
        self.provenance_button.setEnabled(result is not None and result.provenance is not None)
        if result is None:
            self.status_label.setText("Place an entry and a target.")
            return
        self.plan.set_level(worst_level(result))
        if show_failure(self.status_label, result):
            return
        if live:
            text = (f"Live (nominal, no intervals): {self.live_ms or 0:.1f} ms; "
                    f"Monte Carlo on release.")
        else:
            text = run_summary(result)
        self.status_label.setText(verdict_text(result) + text)
        fill_levels_table(self.levels_table, result, with_ci=True)
        self._fill_metrics(result)
        if result.warnings:
            self.warnings_label.setText("Warnings:\n• " + "\n• ".join(result.warnings))

    def _fill_metrics(self, result: SimulationResult) -> None:
        traversed = result.details.get("traversed") if result.details else None
        fill_metrics_table(self.metrics_table, result, [
            ["Structures traversed", None, ", ".join(traversed)]] if traversed else [])

    def show_provenance(self) -> QDialog | None:
        """A dialog with the result's provenance as JSON (non-modal)."""
        if self.result is None or self.result.provenance is None:
            return None
        if self.provenance_dialog is not None:
            self.provenance_dialog.close()
        dialog = QDialog(self)
        dialog.setWindowTitle("Simulation provenance")
        text = QPlainTextEdit(json.dumps(self.result.provenance.to_json(), indent=2,
                                         default=str))
        text.setReadOnly(True)
        QVBoxLayout(dialog).addWidget(text)
        dialog.resize(560, 480)
        dialog.open()
        self.provenance_dialog = dialog
        return dialog

    # ------------------------------------------------------------------ search
    def derive_face_zone(self) -> None:
        """Derive the face/ear no-entry zone from the skin and the brain in a worker, add it as
        a structure (Edit > Undo removes it) and name it a no-go structure."""
        from surgiplan.ui.plan.entry_regions import add_face_zone, face_zone_mask

        twin = self.twin
        if twin is None:
            return

        def done(mask) -> None:
            if twin is not self.twin:
                return
            editor = getattr(getattr(self.window, "segment_panel", None), "editor", None)
            name = add_face_zone(twin, mask, editor)
            names = [n for n in self.nogo_structures() if n != name] + [name]
            self.nogo_edit.setText(", ".join(names))
            self.search_label.setText(f"No entry on {name} ({int(mask.sum())} skin voxels).")

        self.window.runner.submit("Deriving face and ears", lambda **_k: face_zone_mask(twin),
                                  on_done=done, on_error=lambda exc: self.search_label.setText(
                                      f"Face and ears not derived: {exc}"))

    def add_nogo_at_cursor(self) -> None:
        """A no-go entry zone: a sphere (the radius box) at the crosshair, LPS mm."""
        point = self.window.slice_views["axial"].cursor_lps
        if point is not None:
            self.nogo_spheres.append((*(float(x) for x in point),
                                      float(self.nogo_radius.value())))
        self._say_nogo()

    def _say_nogo(self) -> None:
        zones = "; ".join(f"{format_lps(z[:3])} r {z[3]:.0f} mm" for z in self.nogo_spheres)
        self.search_label.setText(f"No-go entry zones: {zones or 'none'}")

    def nogo_structures(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.nogo_edit.text().split(",") if n.strip())

    def _suggest_nogo(self) -> None:
        """Fill the no-go structures with the case's orbit/face/sinus/ear-like structures."""
        words = ("orbit", "eye", "globe", "face", "sinus", "ear", "nose", "optic")
        names = [] if self.twin is None else [
            s.name for s in self.twin.structures
            if any(w in s.name.lower() for w in words) and s.role is not Role.TARGET]
        self.nogo_edit.setText(", ".join(names))

    def search_request(self) -> PathSearchRequest:
        v = self.search_form.values()
        return PathSearchRequest(target_lps=tuple(float(x) for x in self.plan.target_lps),
                                 max_length_mm=v["max_length_mm"],
                                 max_angle_deg=v["max_angle_deg"],
                                 diameter_mm=float(self.tool_form.values()["diameter_mm"]),
                                 top_k=int(v["top_k"]),
                                 no_go_structures=self.nogo_structures(),
                                 no_go_spheres_lps=tuple(self.nogo_spheres))

    def start_search(self) -> None:
        """Search the safest entries for the placed target in a worker (progress, cancel)."""
        entry = self.entry()
        if entry is None or self.context is None or "search" not in entry.spec.capabilities:
            self.search_label.setText("The chosen simulator cannot search paths.")
            return
        if self.plan.target_lps is None:
            self.search_label.setText("Place a target first.")
            return
        self.cancel_search()
        self._search_generation += 1
        gen = self._search_generation
        # checked result, hard timeout; a third-party plug-in searches in its own process
        fn = partial(run_search, entry.simulator, self.context, self.search_request(),
                     self.form.values())
        self.search_label.setText("Searching…")
        self.search_cancel.setEnabled(True)
        self._search_job = self.window.runner.submit(
            "Searching safest entries", fn, on_done=partial(self._search_done, gen),
            on_error=partial(self._search_failed, gen),
            on_cancel=partial(self._search_failed, gen, None))

    def cancel_search(self) -> None:
        if self._search_job is not None:
            self._search_job.cancel()

    def _search_failed(self, gen: int, exc: BaseException | None) -> None:
        if gen != self._search_generation:
            return
        self._search_job = None
        self.search_cancel.setEnabled(False)
        self.search_label.setText("Search cancelled." if exc is None
                                  else f"Search FAILED: {type(exc).__name__}: {exc}")

    def _search_done(self, gen: int, result: PathSearchResult) -> None:
        if gen != self._search_generation:
            return
        self._search_job = None
        self.search_cancel.setEnabled(False)
        self.search_result = result
        rejected = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.rejected.items()
                             if k != "feasible")
        self.search_label.setText(
            f"{result.n_candidates} entries evaluated in {result.time_s:.2f} s; "
            f"{result.n_feasible} feasible ({rejected or 'none rejected'}); "
            f"Pareto front {len(result.pareto)}; {len(result.candidates)} listed."
            + ("\n" + "\n".join(result.warnings) if result.warnings else ""))
        self._show_candidates()
        self._show_heatmap()

    def _show_heatmap(self) -> None:
        result = self.search_result
        if result is None or self.twin is None:
            self.planning3d.clear_heatmap()
            return
        wanted = self.heatmap_combo.currentText()
        maps = [h for h in result.heatmaps if h.label == wanted] or result.heatmaps
        if maps:
            mesh = self.twin.surface(maps[0].structure)
            self.planning3d.show_heatmap(mesh, maps[0])
            self.planning3d.set_heatmap_visible(self.heatmap_box.isChecked())

    def candidates(self) -> list[PathCandidate]:
        return [] if self.search_result is None else list(self.search_result.candidates)

    def _show_candidates(self) -> None:
        table = self.candidates_table
        table.blockSignals(True)
        table.setRowCount(0)
        for c in self.candidates():
            row = table.rowCount()
            table.insertRow(row)
            exact = "—" if not c.exact_clearance_mm else \
                f"{min(c.exact_clearance_mm.values()):.2f} mm"
            cells = [str(c.rank), "★" if c.pareto else "", f"{c.clearance_mm:.2f} mm",
                     f"{c.risk:.3f}", f"{c.length_mm:.1f} mm", f"{c.angle_deg:.1f}°", exact]
            safe = QColor(*LEVEL_RGB[Level.SAFE], 90)
            for col, text in enumerate(cells):
                table.setItem(row, col, new_item(text, color=safe if col == 0 else None,
                                              tooltip="Pareto front (clearance, length, angle)"
                                              if c.pareto else ""))
        table.blockSignals(False)
        self.planning3d.show_candidates(self.candidates(), self.pinned)
        self.pinned_label.setText("Pinned: " + (", ".join(
            f"#{c.rank} ({c.clearance_mm:.1f} mm)" for c in self.pinned) or "none"))

    def _selected_candidate(self) -> PathCandidate | None:
        rows = self.candidates_table.selectionModel().selectedRows()
        cands = self.candidates()
        return cands[rows[0].row()] if rows and rows[0].row() < len(cands) else None

    def _candidate_selected(self) -> None:
        c = self._selected_candidate()
        if c is not None:
            self.preview_candidate(c)

    def preview_candidate(self, candidate: PathCandidate) -> None:
        """Make a candidate the planned path (scored live, then by Monte Carlo)."""
        self.plan.set_points(candidate.entry_lps, candidate.target_lps)

    def pin_selected(self) -> None:
        c = self._selected_candidate()
        if c is not None and c not in self.pinned:
            self.pinned.append(c)
            self._show_candidates()

    def clear_pins(self) -> None:
        self.pinned = []
        self._show_candidates()


def install_planning(window: MainWindow) -> PlanningPanel:
    """Add the planning dock (a tab behind the structures dock) and the probe's-eye dock
    (bottom, hidden until a path exists) to ``window``."""
    panel = PlanningPanel(window)
    panel.setMinimumWidth(380)
    dock = add_dock(window, "Planning", panel, name="dock_planning", features=FIXED_DOCK,
                    beside=("dock_structures",))
    structures = window.findChild(QDockWidget, "dock_structures")
    if structures is not None:
        structures.raise_()
    probe_dock = add_dock(window, "Probe's eye", panel.probe, name="dock_probe",
                          area=Qt.DockWidgetArea.BottomDockWidgetArea,
                          features=FIXED_DOCK | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    probe_dock.hide()
    panel.probe_toggle.toggled.connect(probe_dock.setVisible)
    probe_dock.visibilityChanged.connect(
        lambda visible: panel.probe_toggle.isChecked() != visible and
        panel.probe_toggle.setChecked(visible))
    window.planning_panel = panel
    window.planning_dock = dock
    window.probe_dock = probe_dock
    return panel
