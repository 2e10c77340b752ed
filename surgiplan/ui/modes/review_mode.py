"""OR review mode (issue 7): a plan shown READ-ONLY in the operating room.

* Nothing here changes the case: the window holds no editing action (the usual ones are
  shown greyed out under the "READ-ONLY REVIEW" banner), never writes the case and the slice
  views have no tool (left-drag only changes the display window).
* Large, high-contrast text (white and yellow on black); the approval status (approved by
  whom and when, or NOT APPROVED) is always on screen.
* Step-through: step 0 is the plan overview, then one step per intervention with its key
  views - the three slice views centred on its target with the path drawn, the 3D view looking
  along it - and its numbers (per-structure levels, distances, intervals, metrics).
* Keyboard only: Right/Down/PageDown/Space next step, Left/Up/PageUp previous, Home/End
  first/last, Tab next plan, Esc leaves the review.

``surgiplan gui CASE --review [--plan NAME]`` starts in this mode
(:func:`surgiplan.ui.shell.headless.run_review`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from html import escape

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from surgiplan.errors import BadInputError
from surgiplan.plans import Intervention, Plan, PlanStatus
from surgiplan.simulation.result import DisplayMesh, Level, SimulationResult
from surgiplan.simulation.spec import Kind
from surgiplan.twin import Twin
from surgiplan.ui.plan.plan_graphics import add_intervention_actors, axis_lps, level_of
from surgiplan.ui.plan.trajectory_tools import (
    LEVEL_RGB,
    PathDecoration,
    TrajectoryPlan,
    grade_letter,
)
from surgiplan.ui.rehearse.ablation_panel import ZONE_RGB
from surgiplan.ui.rehearse.rehearsal_tools import MeshOutlineDecoration
from surgiplan.ui.views.slice_planes import Plane
from surgiplan.ui.views.slice_view import SliceView
from surgiplan.ui.views.view3d import View3D
from surgiplan.ui.widgets.jobs import JobRunner

BANNER = "READ-ONLY REVIEW"
DISABLED_ACTIONS = ("Save", "Edit plan", "Move points", "Approve", "Delete")
STYLE = """
QWidget#review_window { background: black; }
QWidget#review_window QLabel { color: white; font-size: 22px; }
QWidget#review_window QLabel#review_banner { background: #b00020; color: white;
    font-size: 30px; font-weight: bold; padding: 6px 14px; }
QWidget#review_window QLabel#review_step { color: #ffd84a; font-size: 28px; font-weight: bold; }
QWidget#review_window QLabel#review_keys { color: #dddddd; font-size: 18px; }
QPushButton { font-size: 15px; }
QCheckBox { color: white; }
QPushButton:disabled { color: #777777; background: #222222; border: 1px solid #444444; }
"""


def _rgb_hex(level: Level | None) -> str:
    r, g, b = LEVEL_RGB[level]
    return f"#{r:02x}{g:02x}{b:02x}"


def _mm(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value + 0.0:.1f}".replace("-0.0", "0.0")


def _mm_text(value: float | None) -> str:
    """"12.3 mm", or "not assessable" without a value."""
    return "not assessable" if value is None or not math.isfinite(value) else f"{_mm(value)} mm"


def approval_text(plan: Plan) -> str:
    """HTML: "APPROVED by NAME on TIME UTC" (green) or "NOT APPROVED - STATUS" (amber)."""
    if plan.status is PlanStatus.APPROVED:
        when = (plan.approved_utc or "").replace("T", " ")[:16]
        return (f"<span style='color:#5cff7a'><b>APPROVED</b> by {plan.approved_by} on "
                f"{when} UTC</span>")
    return f"<span style='color:#ffb020'><b>NOT APPROVED</b> — status: {plan.status}</span>"


def choose_plan(plans: Sequence[Plan], name: str | None) -> Plan:
    """The plan named ``name``; by default the (last) approved plan, else the first."""
    if not plans:
        raise BadInputError("the case holds no plans to review",
                            action="create and save a plan first, then open the review")
    if name is not None:
        for plan in plans:
            if name in (plan.name, plan.id):
                return plan
        raise BadInputError(f"no plan named {name!r} (plans: "
                            f"{', '.join(p.name for p in plans)})",
                            action="use one of the listed plan names with --plan")
    approved = [p for p in plans if p.status is PlanStatus.APPROVED]
    return (approved or list(plans))[-1 if approved else 0]


def numbers_html(item: Intervention) -> str:
    """The intervention's levels and metrics in large review text (HTML)."""
    if not item.result:
        return "<p style='color:#ffb020'>Not scored: no numbers stored for this step.</p>"
    result = SimulationResult.from_json(item.result)
    cis = {(m.key, m.structure): m.ci95 for m in result.metrics}
    lines = []
    verdict = result.verdict
    if verdict is not None:
        reasons = "".join(f"<br>• {escape(r)}" for r in result.verdict_reasons())
        lines.append(f"<p><span style='color:{_rgb_hex(verdict)}'><b>VERDICT: "
                     f"{str(verdict).upper()}</b></span>{reasons}</p>")
    for lv in result.levels:
        ci = cis.get(("min_distance_mm", lv.structure))
        ci_text = f" (95 % {_mm(ci[0])} to {_mm(ci[1])})" if ci else ""
        p = "" if lv.breach_probability is None else \
            f", P(breach) {100 * lv.breach_probability:.0f} %"
        lines.append(f"<p><span style='color:{_rgb_hex(lv.level)}'><b>{str(lv.level).upper()}"
                     f"</b></span> {lv.structure}: closest {_mm_text(lv.min_distance_mm)}"
                     f"{ci_text}, margin {lv.margin_mm:g} mm{p}</p>")
    skip = {"min_distance_mm", "risk", "breach_probability"}
    rows = []
    for m in result.metrics:
        if m.key in skip and m.structure:
            continue
        if m.not_assessable:
            rows.append(f"<tr><td>{escape(m.title)}</td><td align='right' style='color:#ffb020'>"
                        f"<b>not assessable</b> ({escape(m.not_assessable)})</td></tr>")
            continue
        show = grade_letter if m.key == "gertzbein_grade" else _mm  # A..E, not 0..4
        unit = "" if m.key == "gertzbein_grade" else m.unit
        ci = ("" if m.ci95 is None else
              f"&nbsp; (95 % {m.interval_kind} {show(m.ci95[0])} to {show(m.ci95[1])})")
        rows.append(f"<tr><td>{escape(m.title)}</td><td align='right'><b>{show(m.value)}</b> "
                    f"{unit}{ci}</td></tr>")
    table = f"<table cellspacing='6'>{''.join(rows)}</table>" if rows else ""
    warn = "".join(f"<p style='color:#ffb020'>⚠ {w}</p>" for w in result.warnings)
    return "".join(lines) + table + warn


def zone_meshes(item: Intervention) -> list[DisplayMesh]:
    """An ablation step's nominal zones (LPS mm) from its probes and settings, through its
    simulator's ``resolve_probes``; none for other kinds or when the plug-in cannot say."""
    if item.kind is not Kind.ABLATION:
        return []
    from surgiplan.simulation import load_simulator

    try:
        simulator = load_simulator(item.simulator_id)
        probes = simulator.resolve_probes(item.input_model(), custom_modality=item.parameters
                                          .get("custom_modality", "microwave"))
    except Exception:  # a missing or failing plug-in: the review shows the probes only
        return []
    return [DisplayMesh(f"ablation zone {k}", *p.zone.mesh(), ZONE_RGB, 0.35)
            for k, p in enumerate(probes, start=1)]


def reusable_surfaces(twin: Twin) -> dict:
    """The display surfaces a main window already shows for ``twin`` (name -> PolyData), so
    review does not mesh the anatomy again (see ``compare_window.shown_surfaces``)."""
    from PySide6.QtWidgets import QApplication

    from surgiplan.ui.plan.compare_window import shown_surfaces

    for widget in QApplication.topLevelWidgets():
        if getattr(widget, "twin", None) is twin and hasattr(widget, "view3d") \
                and widget.__class__.__name__ == "MainWindow":
            return shown_surfaces(widget)
    return {}


class ReviewWindow(QWidget):
    """The read-only step-through of one plan of ``twin`` (see the module docstring)."""

    step_changed = Signal(int)

    def __init__(self, twin: Twin, plans: Sequence[Plan], *, plan: str | None = None,
                 window: tuple[float, float] | None = None, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("review_window")
        self.setWindowTitle(f"SurgiPlan — {BANNER}")
        self.setStyleSheet(STYLE)
        self.resize(1500, 950)
        self.twin = twin
        self.plans = list(plans)
        self.plan = choose_plan(self.plans, plan)
        self.step = 0
        self.runner = JobRunner(self)
        self.path = TrajectoryPlan(self)
        self.decoration = PathDecoration(self.path)
        self._build(window)
        self._show_plan()
        self._reused = reusable_surfaces(twin)  # the main 3D view's: not meshed again
        if self._reused:
            self.view3d.set_surfaces(self._reused, twin.structures)
        if all(n in self._reused for n in twin.segmentation.names()):
            QTimer.singleShot(0, self, self._show_step)
            return
        from surgiplan.ui.data import case_io

        budget = case_io.render_budget(self.view3d)  # reads the GL context: GUI thread only
        self.runner.submit("Preparing 3D", partial(self._scene_job, render_triangles=budget),
                           on_done=self._scene_ready,
                           on_error=lambda exc: self.step_label.setText(f"3D failed: {exc}"))

    # ------------------------------------------------------------------ construction
    def _build(self, window: tuple[float, float] | None) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.banner = QLabel(BANNER)
        self.banner.setObjectName("review_banner")
        top.addWidget(self.banner)
        self.approval_label = QLabel("")
        self.approval_label.setObjectName("review_approval")
        top.addWidget(self.approval_label, 1)
        self.disabled_buttons = []
        for text in DISABLED_ACTIONS:
            button = QPushButton(text)
            button.setEnabled(False)
            button.setToolTip("Read-only review: editing is disabled")
            self.disabled_buttons.append(button)
            top.addWidget(button)
        layout.addLayout(top)
        self.step_label = QLabel("")
        self.step_label.setObjectName("review_step")
        self.step_label.setWordWrap(True)
        layout.addWidget(self.step_label)
        body = QHBoxLayout()
        grid = QGridLayout()
        grid.setSpacing(3)
        self.slice_views = {p.value: SliceView(p) for p in Plane}
        self.view3d = View3D()
        for n, view in enumerate([*self.slice_views.values(), self.view3d]):
            grid.addWidget(view, n // 2, n % 2)
        self.zones = MeshOutlineDecoration()  # ablation zones on the slices (issue 15, 7)
        for view in self.slice_views.values():
            view.set_twin(self.twin, window=window)
            view.add_decoration(self.decoration)
            view.add_decoration(self.zones)
        body.addLayout(grid, 3)
        self.numbers_label = QLabel("")
        self.numbers_label.setObjectName("review_numbers")
        self.numbers_label.setWordWrap(True)
        self.numbers_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.numbers_label)
        scroll.setStyleSheet("QScrollArea { background: black; border: none; } "
                             "QScrollArea > QWidget > QWidget { background: black; }")
        body.addWidget(scroll, 2)
        layout.addLayout(body, 1)
        self.keys_label = QLabel("→ / PgDn / Space: next step    ← / PgUp: previous    "
                                 "Home / End: first / last    Tab: next plan    Esc: leave")
        self.keys_label.setObjectName("review_keys")
        layout.addWidget(self.keys_label)
        for widget in self.findChildren(QWidget):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def _key_actions(self) -> dict[int, object]:
        k = Qt.Key
        actions = {key: self.next_step for key in (k.Key_Right, k.Key_Down, k.Key_PageDown,
                                                    k.Key_Space)}
        actions.update({key: self.previous_step for key in (k.Key_Left, k.Key_Up,
                                                             k.Key_PageUp)})
        actions.update({k.Key_Home: partial(self.go_to, 0),
                        k.Key_End: lambda: self.go_to(self.n_steps - 1),
                        k.Key_Tab: self.next_plan, k.Key_Escape: self.close})
        return actions

    def event(self, event) -> bool:
        """Keys reach the review before focus handling (Tab steps plans, not focus)."""
        if event.type() == QEvent.Type.KeyPress:
            action = self._key_actions().get(event.key())
            if action is not None:
                action()
                return True
        return super().event(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.activateWindow()
        self.setFocus()

    # ------------------------------------------------------------------ 3D scene
    def _scene_job(self, *, render_triangles: int | None, progress=None, cancel=None):
        """Worker: mesh the structures the main view had not (never touches the GL context)."""
        from surgiplan.ui.data import case_io

        missing = [n for n in self.twin.segmentation.names() if n not in self._reused]
        return case_io.scene_3d(self.twin, names=missing, with_volume=False,
                                render_triangles=render_triangles,
                                progress=progress, cancel=cancel)

    def _scene_ready(self, scene) -> None:
        if scene.surfaces:
            self.view3d.set_surfaces(scene.surfaces, self.twin.structures)
        self._show_step()

    # ------------------------------------------------------------------ navigation
    @property
    def n_steps(self) -> int:
        """The overview plus one step per intervention."""
        return 1 + len(self.plan.interventions)

    def next_step(self) -> None:
        self.go_to(self.step + 1)

    def previous_step(self) -> None:
        self.go_to(self.step - 1)

    def go_to(self, step: int) -> None:
        step = int(np.clip(step, 0, self.n_steps - 1))
        if step != self.step:
            self.step = step
            self._show_step()

    def next_plan(self) -> None:
        """Review the next plan of the case (wraps around)."""
        index = [p.id for p in self.plans].index(self.plan.id)
        self.plan = self.plans[(index + 1) % len(self.plans)]
        self._show_plan()

    def _show_plan(self) -> None:
        import pyvista as pv

        self.step = 0
        self.approval_label.setText(f"<b>{self.plan.name}</b> &nbsp; "
                                    f"{approval_text(self.plan)}")
        self.view3d.set_image(self.twin.image)
        zones = []
        for item in self.plan.interventions:
            add_intervention_actors(self.view3d.plotter, item, prefix="review")
            for n, mesh in enumerate(zone_meshes(item)):
                zones.append(mesh)
                faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
                self.view3d.plotter.add_mesh(
                    pv.PolyData(np.asarray(mesh.vertices_lps, float), faces),
                    name=f"review:{item.id}:zone{n}", color=mesh.color, opacity=mesh.opacity,
                    reset_camera=False, render=False)
        self.zones.set_meshes(zones)
        self._show_step()

    def current(self) -> Intervention | None:
        """The intervention of the current step (None on the overview)."""
        return None if self.step == 0 else self.plan.interventions[self.step - 1]

    def _target_centre(self, item: Intervention) -> np.ndarray | None:
        name = item.inputs.get("target_structure")
        if not name or name not in self.twin.segmentation.names():
            return None
        return self.twin.centroid_lps(name)

    def _show_step(self) -> None:
        item = self.current()
        title = f"Step {self.step} of {self.n_steps - 1}: " if self.step else "Overview: "
        if item is None:
            self.step_label.setText(title + f"{self.plan.name} — {len(self.plan.interventions)}"
                                    " step(s)")
            self.numbers_label.setText(self._overview_html())
            self._clear_path()
            axes = [a for a in (axis_lps(i, target_centre_lps=self._target_centre(i))
                                for i in self.plan.interventions) if a is not None]
            if axes:
                self._centre_slices(axes[0][1])
            self._frame("review:", axes)
        else:
            self.step_label.setText(title + f"{item.label} ({item.kind})")
            self.numbers_label.setText(numbers_html(item))
            axis = axis_lps(item, target_centre_lps=self._target_centre(item))
            if axis is None:
                self._clear_path()
            else:
                entry, target = axis
                self.path.set_points(entry, target)
                self.path.set_level(level_of(item))
                self._centre_slices(target)
                self._look_along(entry, target)  # the probe's-eye view of this step
        for view in self.slice_views.values():
            view.update()
        self.step_changed.emit(self.step)

    def _clear_path(self) -> None:
        self.path.entry_lps = self.path.target_lps = None
        self.path.changed.emit(False)

    def _overview_html(self) -> str:
        steps = "".join(f"<li>{i.label} — {i.kind}: <span style='color:"
                        f"{_rgb_hex(level_of(i))}'>{str(level_of(i) or 'not scored').upper()}"
                        f"</span></li>" for i in self.plan.interventions)
        notes = (self.plan.notes or "—").replace("\n", "<br>")
        return (f"<p>Plan: <b>{self.plan.name}</b><br>Author: {self.plan.author or '—'}<br>"
                f"{approval_text(self.plan)}</p><p>Steps:</p><ol>{steps}</ol>"
                f"<p>Notes: {notes}</p>")

    def _centre_slices(self, point_lps: np.ndarray) -> None:
        for view in self.slice_views.values():
            view.set_cursor(point_lps)
            view.reset_view()

    def _look_along(self, entry: np.ndarray, target: np.ndarray,
                    distance_mm: float = 250.0) -> None:
        from surgiplan.ui.views.probe_view import path_frame

        d, _, v = path_frame(entry, target)
        renderer = self.view3d.plotter.renderer
        camera = renderer.GetActiveCamera()
        camera.SetFocalPoint(*np.asarray(target, float))
        camera.SetPosition(*(np.asarray(entry, float) - d * distance_mm))
        camera.SetViewUp(*(-v))
        renderer.ResetCameraClippingRange()
        self.view3d.plotter.interactor.update()

    def _frame(self, prefix: str, axes: list) -> None:
        """Frame the actors named ``prefix...`` (the plan's objects) padded, seen from the
        side (not end-on); the whole scan from the front when there is nothing to frame."""
        from surgiplan.ui.plan.compare_window import actor_bounds_lps, frame_objects

        renderer = self.view3d.plotter.renderer
        box = actor_bounds_lps(renderer, prefix)
        if not frame_objects(renderer, [] if box is None else [box], axes):
            self.view3d.set_standard_view("anterior")
            return
        self.view3d.plotter.interactor.update()

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        self.runner.cancel_all()
        self.runner.wait_for_threads()
        self.view3d.close_renderer()
        super().closeEvent(event)
