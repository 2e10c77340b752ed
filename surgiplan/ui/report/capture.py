"""Render a plan's views for the report from a main window holding the case: the 3D view from
the side best showing the plan, the three slices through the first intervention's target, and
the probe's eye along a trajectory. The plan is drawn with :class:`PlanMarks` for the capture
and removed afterwards; the cursor is put back where it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from surgiplan.plans.model import Intervention, Plan
from surgiplan.simulation.result import Level
from surgiplan.simulation.spec import Kind
from surgiplan.ui.report.legend import SLICE_NOTE, plan_legend, view3d_note, with_legend
from surgiplan.ui.report.marks import PlanMarks
from surgiplan.ui.views.view3d import STANDARD_VIEWS

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

PROBE_SIZE = (1000, 430)


def placement(item: Intervention) -> tuple[np.ndarray, np.ndarray] | None:
    """Entry (head, shaft point) and target (tip) of an intervention, LPS mm, if it has them."""
    from surgiplan.training.attempt import placement_of

    try:
        p = placement_of(item)
    except Exception:  # resections have no two-point placement
        return None
    return np.asarray(p.entry_lps, float), np.asarray(p.target_lps, float)


def worst_level(item: Intervention) -> Level | None:
    levels = [lv.get("level") for lv in (item.result or {}).get("levels", [])]
    for level in (Level.BREACH, Level.CAUTION, Level.SAFE):
        if str(level) in levels:
            return level
    return None


def display_meshes(window: MainWindow, item: Intervention) -> list:
    """Nominal display meshes (implant, ablation zone, resection) of an intervention."""
    if item.kind is Kind.TRAJECTORY or window.twin is None:
        return []
    from surgiplan.simulation import SimulationContext, UncertaintyModel, load_simulator
    from surgiplan.simulation.runner import run_simulation

    try:
        result = run_simulation(load_simulator(item.simulator_id), SimulationContext(window.twin),
                                item.input_model(), parameters=item.parameters,
                                uncertainty=UncertaintyModel(samples=0))
    except Exception:  # a plug-in that is missing or fails leaves the mesh out of the report
        return []
    return list(result.geometry.meshes) if result.ok else []


def best_side(entry: np.ndarray, target: np.ndarray) -> str:
    """The standard 3D view most across the path, on the entry's side."""
    axis = (target - entry) / np.linalg.norm(target - entry)

    def merit(name: str) -> float:
        d = np.asarray(STANDARD_VIEWS[name][0], float)
        return -abs(float(d @ axis)) - 0.3 * float(d @ axis)

    return max(("anterior", "posterior", "left", "right", "superior"), key=merit)


def show_plan(window: MainWindow, plan: Plan) -> tuple[PlanMarks, np.ndarray | None,
                                                         tuple[np.ndarray, np.ndarray] | None]:
    """Draw every intervention of ``plan``; returns the marks, the focus point and the first
    two-point placement."""
    marks = PlanMarks(window, prefix="report")
    focus, first = None, None
    for item in plan.interventions:
        points = placement(item)
        if points is not None:
            diameter = float(item.inputs.get("diameter_mm", 1.5))
            marks.add_path(*points, diameter_mm=diameter, level=worst_level(item),
                           name=item.id)
            first = first or points
            focus = points[1] if focus is None else focus
        for mesh in display_meshes(window, item):
            marks.add_mesh(mesh)
            if focus is None:
                focus = np.asarray(mesh.vertices_lps, float).mean(axis=0)
    return marks, focus, first


FOREIGN_ACTOR_PREFIXES = ("planning:", "rehearsal:", "plans_selected", "review")


def hide_foreign(window: MainWindow):
    """Hide what is not the reported plan: the slice views' decorations (the working
    trajectory, rehearsals, the selected plan) and the 3D actors and colour bars of the
    planning, rehearsal and plan-selection layers (the search heat-map). Returns a function
    that shows them again."""
    saved = {view: list(view._decorations) for view in window.slice_views.values()}
    for view in saved:
        view._decorations.clear()
    hidden = []
    try:
        plotter = window.view3d.plotter
        actors = [a for n, a in plotter.actors.items() if n.startswith(FOREIGN_ACTOR_PREFIXES)]
        actors += list(plotter.scalar_bars.values())
    except Exception:  # no 3D view (a broken GL context): the slices are still cleaned
        actors = []
    for actor in actors:
        if actor.GetVisibility():
            actor.SetVisibility(False)
            hidden.append(actor)

    def restore() -> None:
        for view, decorations in saved.items():
            view._decorations[:0] = [d for d in decorations if d not in view._decorations]
            view.update()
        for actor in hidden:
            actor.SetVisibility(True)

    return restore


def capture_plan_views(window: MainWindow, plan: Plan) -> dict[str, QImage]:
    """The report's images of ``plan`` (keys: 3d, axial, coronal, sagittal, probe), each with
    a legend strip naming the plan's drawn objects (see :mod:`.legend`)."""
    cursor = next(iter(window.slice_views.values())).cursor_lps
    layout = window.view_grid.layout_name or "four-up"
    camera = _camera(window)  # the user's 3D view comes back as it was
    restore = hide_foreign(window)  # only this plan's own objects on a page to be signed
    marks, focus, first = show_plan(window, plan)
    legend = plan_legend(plan, list(marks._outline_meshes))
    images: dict[str, QImage] = {}
    try:
        if focus is not None:
            window.set_cursor(focus)
        for name, view in window.slice_views.items():
            window.set_layout(name)  # each view alone: a large, well-proportioned image
            QApplication.processEvents()
            images[name] = with_legend(view.grab().toImage(), legend, SLICE_NOTE)
        window.set_layout("3d")
        QApplication.processEvents()
        side = None if first is None else best_side(*first)
        if side is not None:
            window.view3d.set_standard_view(side)
        images["3d"] = with_legend(window.view3d.grab_image(), legend, view3d_note(side))
        if first is not None and plan.interventions[0].kind is Kind.TRAJECTORY:
            images["probe"] = probe_image(window, *first,
                                          float(plan.interventions[0].inputs["diameter_mm"]))
    finally:
        marks.clear()
        restore()
        window.set_layout(layout)
        _set_camera(window, camera)
        if cursor is not None:
            window.set_cursor(cursor)
    return images


def _camera(window: MainWindow):
    try:
        return window.view3d.plotter.camera_position
    except Exception:  # no 3D view (a broken GL context)
        return None


def _set_camera(window: MainWindow, camera) -> None:
    if camera is None:
        return
    try:
        window.view3d.plotter.camera_position = camera
        window.view3d.plotter.render()
    except Exception:
        pass


def probe_image(window: MainWindow, entry: np.ndarray, target: np.ndarray,
                diameter_mm: float) -> QImage:
    """The probe's-eye and along-the-path reslices, rendered off screen."""
    from surgiplan.ui.views.probe_view import ProbeView

    view = ProbeView()
    try:
        axial = window.slice_views.get("axial")
        window_level = getattr(axial, "window", None)
        view.set_twin(window.twin, window=window_level)
        view.resize(*PROBE_SIZE)
        view.set_path(entry, target, diameter_mm)
        view.set_depth(0.85 * view.length_mm())
        return view.grab().toImage()
    finally:
        view.deleteLater()
