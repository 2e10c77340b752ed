"""Side-by-side comparison of 2-4 candidate plans (issue 7).

* One 3D view per plan (the anatomy and that plan's interventions in their traffic-light
  colour) with **synchronised cameras**: the views share one ``vtkCamera``; an interaction or a
  standard-view button in any of them re-renders the others.
* The metric table of :func:`surgiplan.plans.compare_stored`: per row the threshold (hover:
  its source), and per plan the value with its 95 % interval and the difference to the row's
  best; the best cell is green and bold, cells whose interval overlaps the best's are marked
  "≈ not distinguishable", values failing the threshold are red.
* A Pareto chart (matplotlib, Qt Agg canvas): smallest clearance to any critical structure
  (higher is better) against a chosen second objective; front members filled and joined.
* The plain-language "why this one is safer" sentence naming structures and distances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.plans import Plan, compare_stored
from surgiplan.plans.compare import NOT_DISTINGUISHABLE, Better, Cell, Comparison, Row
from surgiplan.twin import Twin
from surgiplan.ui.plan.plan_graphics import add_intervention_actors, axis_lps, plan_level
from surgiplan.ui.plan.plans_panel import status_text
from surgiplan.ui.plan.trajectory_tools import grade_letter, level_color
from surgiplan.ui.views.view3d import View3D

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

BEST_BG = QColor(40, 120, 60)
SAME_BG = QColor(70, 70, 70)
FAIL_FG = QColor(255, 110, 110)
SYNC_EVENTS = ("InteractionEvent", "EndInteractionEvent", "MouseWheelForwardEvent",
               "MouseWheelBackwardEvent")
PREFERRED_OBJECTIVES = ("path_length_mm", "breach_mm", "coverage_pct", "remnant_pct",
                        "entry_angle_deg")


GRADE_KEY = "gertzbein_grade"  # stored 0..4, shown A..E


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) < 5e-4:
        return "0"
    return f"{value + 0.0:.3g}" if abs(value) < 1 else f"{value + 0.0:.1f}"


def cell_text(cell: Cell, unit: str, key: str = "") -> str:
    """"VALUE UNIT", its 95 % interval and its difference to the best, one per line (the
    Gertzbein-Robbins grade, ``key`` gertzbein_grade, as its letter A..E). "—": the plan has
    no such metric; "not assessable": it has one without a value (NaN)."""
    if cell.value is None:
        return "—"
    if not math.isfinite(cell.value):
        return "not assessable"
    if key == GRADE_KEY:
        lines = [f"grade {grade_letter(cell.value)}"]
        if cell.ci95 is not None:
            lines.append(f"95 %: {grade_letter(cell.ci95[0])} to {grade_letter(cell.ci95[1])}")
        lines += ["★ best"] if cell.best else []
        return "\n".join(lines + ([f"≈ {NOT_DISTINGUISHABLE}"]
                                  if cell.distinguishable is False else []))
    lines = [f"{_num(cell.value)} {unit}".strip()]
    if cell.ci95 is not None:
        lines.append(f"95 %: {_num(cell.ci95[0])} to {_num(cell.ci95[1])}")
    if cell.best:
        lines.append("★ best")
    elif cell.difference is not None:
        sign = "-" if cell.difference < 0 else "+"
        lines.append(f"Δ {sign}{_num(abs(cell.difference))} {unit}".rstrip())
    if cell.distinguishable is False:
        lines.append(f"≈ {NOT_DISTINGUISHABLE}")
    return "\n".join(lines)


def short_name(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def default_objective(comparison: Comparison) -> str | None:
    """The second Pareto axis shown first: a preferred key whose values differ, else any."""
    options = comparison.pareto_objectives()
    varied = [o for o in options
              if len({round(c.value, 9) for c in comparison.row(o).cells}) > 1]
    for key in PREFERRED_OBJECTIVES:
        for o in varied:
            if comparison.row(o).key == key:
                return o
    return (varied or options or [None])[0]


class CompareWindow(QWidget):
    """2-4 plans side by side (see the module docstring). ``surfaces``: structure name ->
    display mesh (``SurfaceMesh`` or pyvista PolyData), shared by every view."""

    def __init__(self, twin: Twin, plans: Sequence[Plan], *,
                 surfaces: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        if not 2 <= len(plans) <= 4:
            raise ValueError(f"compare 2 to 4 plans, got {len(plans)}")
        self.setWindowTitle("Compare plans — " + " | ".join(p.name for p in plans))
        self.setObjectName("compare_window")
        self.resize(1500, 950)
        self.twin = twin
        self.plans = list(plans)
        self.comparison = compare_stored(self.plans)
        self.views: list[View3D] = []
        self._syncing = False
        self._build()
        self._fill_table()
        self._fill_objectives()
        for view, plan in zip(self.views, self.plans, strict=True):
            view.set_image(twin.image)
            for item in plan.interventions:
                add_intervention_actors(view.plotter, item, prefix="plan")
        self._share_camera()
        if surfaces:
            self.set_surfaces(surfaces)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        split = QSplitter(Qt.Orientation.Vertical)
        layout.addWidget(split, 1)
        top = QWidget()
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        for plan in self.plans:
            row.addWidget(self._view_column(plan), 1)
        split.addWidget(top)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self._table_box())
        bottom.addWidget(self._pareto_box())
        bottom.setSizes([900, 520])
        split.addWidget(bottom)
        split.setSizes([470, 430])
        self.why_label = QLabel(self._why_html())
        self.why_label.setObjectName("why_label")
        self.why_label.setWordWrap(True)
        self.why_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.why_label.setStyleSheet("font-size: 15px; padding: 6px; background: #20262e; "
                                     "color: #f0f0f0; border-radius: 4px;")
        layout.addWidget(self.why_label)

    def _view_column(self, plan: Plan) -> QWidget:
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        level = plan_level(plan)
        safety = self.comparison.safety.get(plan.name)
        clearance = "" if safety is None or not safety.structures else \
            f" · clearance {_num(safety.clearance_mm)} mm"
        star = " ★ safest" if plan.name == self.comparison.safest else ""
        title = QLabel(f"<b>{plan.name}</b>{star}<br>{status_text(plan)} · "
                       f"{level or 'not scored'}{clearance}")
        title.setWordWrap(True)
        colour = level_color(level)
        title.setStyleSheet(f"padding: 3px; border-left: 8px solid {colour.name()}; "
                            "font-size: 13px;")
        col.addWidget(title)
        view = View3D()
        view.setMinimumSize(260, 240)
        col.addWidget(view, 1)
        self.views.append(view)
        for button in view.findChildren(QToolButton):
            button.clicked.connect(partial(self.sync_from, view))
        view.skin_box.toggled.connect(partial(self._mirror_skin, view))
        return box

    def _table_box(self) -> QWidget:
        self.table = QTableWidget(0, 2 + len(self.plans))
        self.table.setObjectName("metric_table")
        self.table.setHorizontalHeaderLabels(["Metric", "Threshold",
                                              *[p.name for p in self.plans]])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        legend = QLabel("Best per row: green, bold. ≈ not distinguishable: the 95 % intervals "
                        "overlap the best's. Red: fails the threshold (hover a threshold for "
                        "its source).")
        legend.setWordWrap(True)
        self.sources_label = QLabel("")
        self.sources_label.setWordWrap(True)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.table, 1)
        col.addWidget(legend)
        col.addWidget(self.sources_label)
        return box

    def _pareto_box(self) -> QWidget:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(5, 4), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.objective_combo = QComboBox()
        self.objective_combo.setObjectName("pareto_objective")
        self.objective_combo.currentIndexChanged.connect(lambda _i: self.draw_pareto())
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(QLabel("Pareto: clearance vs"))
        head.addWidget(self.objective_combo, 1)
        col.addLayout(head)
        col.addWidget(self.canvas, 1)
        return box

    # ------------------------------------------------------------------ table
    def _sorted_rows(self) -> list[Row]:
        """Safety first: overall clearance, then per-structure distances, then the rest."""
        def rank(row: Row) -> int:
            if row.key == "clearance_mm":
                return 0
            return 1 if row.threshold is not None else 2
        return sorted(self.comparison.rows, key=rank)

    def _fill_table(self) -> None:
        rows = self._sorted_rows()
        self.table.setRowCount(len(rows))
        sources: dict[str, int] = {}
        bold = QFont()
        bold.setBold(True)
        for r, row in enumerate(rows):
            arrow = {Better.HIGHER: " ↑", Better.LOWER: " ↓"}.get(row.better, "")
            label = QTableWidgetItem(row.label + arrow)
            label.setToolTip(f"{row.id}; better: {row.better}")
            self.table.setItem(r, 0, label)
            threshold = QTableWidgetItem("")
            if row.threshold is not None:
                n = sources.setdefault(row.threshold.source, len(sources) + 1)
                text = (f"<= {grade_letter(row.threshold.value)}" if row.key == GRADE_KEY
                        else row.threshold.text(row.unit))
                threshold.setText(f"{text} [{n}]")
                threshold.setToolTip(row.threshold.source)
            self.table.setItem(r, 1, threshold)
            for c, cell in enumerate(row.cells):
                item = QTableWidgetItem(cell_text(cell, row.unit, row.key))
                item.setData(Qt.ItemDataRole.UserRole, cell)
                if cell.best:
                    item.setBackground(QBrush(BEST_BG))
                    item.setForeground(QBrush(QColor("white")))
                    item.setFont(bold)
                elif cell.distinguishable is False:
                    item.setBackground(QBrush(SAME_BG))
                    item.setForeground(QBrush(QColor(220, 220, 220)))
                if cell.meets_threshold is False:
                    item.setForeground(QBrush(FAIL_FG))
                    item.setToolTip(f"fails the threshold {row.threshold.text(row.unit)}")
                self.table.setItem(r, 2 + c, item)
        self.table.resizeRowsToContents()
        self.sources_label.setText("Threshold sources: " + "; ".join(
            f"[{n}] {s}" for s, n in sources.items()) if sources else "")

    def table_cell(self, row_id: str, plan: str) -> QTableWidgetItem:
        """The table item of one plan's value in row ``row_id``."""
        rows = self._sorted_rows()
        r = next(n for n, row in enumerate(rows) if row.id == row_id)
        return self.table.item(r, 2 + [p.name for p in self.plans].index(plan))

    def _why_html(self) -> str:
        safest = self.comparison.safest
        head = f"<b>Safest: {safest}.</b> " if safest else ""
        return head + (self.comparison.why or "No safety difference to report.")

    # ------------------------------------------------------------------ Pareto
    def _fill_objectives(self) -> None:
        self.objective_combo.blockSignals(True)
        for option in self.comparison.pareto_objectives():
            self.objective_combo.addItem(self.comparison.row(option).label, option)
        chosen = default_objective(self.comparison)
        if chosen is not None:
            self.objective_combo.setCurrentIndex(self.objective_combo.findData(chosen))
        self.objective_combo.blockSignals(False)
        self.draw_pareto()

    def draw_pareto(self) -> None:
        """Clearance (y, higher better) against the chosen objective (x); front joined."""
        self.figure.clear()
        ax = self.figure.add_subplot()
        objective = self.objective_combo.currentData()
        if objective is None:
            ax.text(0.5, 0.5, "no second objective with values for every plan",
                    ha="center", va="center", transform=ax.transAxes)
            self.canvas.draw_idle()
            return
        row = self.comparison.row(objective)
        points = self.comparison.pareto(objective)
        front = sorted((p for p in points if p.on_front), key=lambda p: p.objective)
        if len(front) > 1:
            ax.plot([p.objective for p in front], [p.clearance_mm for p in front], "-",
                    color="#3c9", lw=1.5, zorder=1, label="Pareto front")
        for p in points:
            plan = next(x for x in self.plans if x.name == p.plan)
            colour = level_color(plan_level(plan)).name()
            ax.scatter([p.objective], [p.clearance_mm], s=90, zorder=2,
                       facecolor=colour if p.on_front else "white", edgecolor=colour, lw=2)
            right = p.objective >= max(q.objective for q in points)
            ax.annotate(short_name(p.plan), (p.objective, p.clearance_mm),
                        textcoords="offset points", xytext=(-8 if right else 8, 8),
                        ha="right" if right else "left", fontsize=8)
        direction = {Better.HIGHER: "higher is better", Better.LOWER: "lower is better"}
        ax.set_xlabel(f"{row.label} ({row.unit}, {direction.get(row.better, '')})"
                      if row.unit else f"{row.label} ({direction.get(row.better, '')})",
                      fontsize=8)
        ax.set_ylabel("clearance to critical structures (mm, higher is better)", fontsize=8)
        ax.axhline(0.0, color="#c33", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if len(front) > 1:
            ax.legend(fontsize=8, loc="best")
        self.canvas.draw_idle()

    # ------------------------------------------------------------------ 3D
    def set_surfaces(self, surfaces: dict[str, Any]) -> None:
        """Show the anatomy (structure name -> display mesh) in every view."""
        from surgiplan.model.surface import SurfaceMesh
        from surgiplan.ui.views.display_meshes import mesh_to_polydata

        polys = {n: mesh_to_polydata(m, normals=True) if isinstance(m, SurfaceMesh) else m
                 for n, m in surfaces.items()}
        for view in self.views:
            view.set_surfaces(polys, self.twin.structures)
        self.focus_on_plans()

    def focus_on_plans(self, *, padding_mm: float = 45.0) -> None:
        """Frame every plan's own objects (trajectory, implant, probes, zone, cut; padded by
        ``padding_mm``) from the side that shows their axes longest (one shared camera)."""
        axes = [a for p in self.plans for i in p.interventions
                if (a := axis_lps(i)) is not None]
        boxes = [b for v in self.views if (b := actor_bounds_lps(v.plotter.renderer, "plan:"))
                 is not None]
        if not frame_objects(self.views[0].plotter.renderer, boxes, axes, padding_mm=padding_mm):
            self.set_standard_view("anterior")
            return
        self.views[0].plotter.interactor.update()
        self.sync_from(self.views[0])

    def _share_camera(self) -> None:
        camera = self.views[0].plotter.renderer.GetActiveCamera()
        for view in self.views[1:]:
            view.plotter.renderer.SetActiveCamera(camera)
        for view in self.views:
            for event in SYNC_EVENTS:
                view.plotter.iren.add_observer(event, partial(self._interacted, view))

    def _interacted(self, view: View3D, *_: Any) -> None:
        self.sync_from(view)

    def sync_from(self, source: View3D) -> None:
        """Re-render every other view with the (shared) camera of ``source``."""
        if self._syncing:
            return
        self._syncing = True
        try:
            for view in self.views:
                if view is not source:
                    view.plotter.renderer.ResetCameraClippingRange()
                    view.plotter.interactor.update()
        finally:
            self._syncing = False

    def _mirror_skin(self, source: View3D, checked: bool) -> None:
        for view in self.views:
            if view is not source and view.skin_box.isChecked() != checked:
                view.skin_box.setChecked(checked)

    def set_standard_view(self, name: str) -> None:
        """Every view from the patient's ``name`` side (one shared camera)."""
        self.views[0].set_standard_view(name)
        self.sync_from(self.views[0])

    def cameras(self) -> list[Any]:
        return [v.plotter.renderer.GetActiveCamera() for v in self.views]

    def closeEvent(self, event) -> None:
        for view in self.views:
            view.close_renderer()
        super().closeEvent(event)


# Directions a plan is framed from (LPS, towards the camera): around the patient every 15
# degrees, up to 40 degrees above/below the axial plane; never straight along the scan's long
# axis, where vessels cut by the scan's end face the camera and hide the plan behind them.
SIDE_DIRECTIONS = [np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
                   for e in map(math.radians, (0, 20, -20, 40, -40))
                   for a in map(math.radians, range(-90, 270, 15))]


def side_direction(units: Sequence[np.ndarray], extent: np.ndarray) -> np.ndarray:
    """The SIDE_DIRECTIONS entry most perpendicular to every unit axis in ``units`` (worst
    axis first, then their sum), or facing the thinnest side of a box of ``extent`` mm; among
    near-equals, from above (superior) and the front (anterior) first."""
    def key(d: np.ndarray) -> tuple[float, ...]:
        if not units:
            return round(float(np.abs(d) @ extent), 0), -d[2], d[1]
        dots = [abs(float(u @ d)) for u in units]
        return round(max(dots), 1), round(sum(dots), 1), -d[2], d[1]

    return min(SIDE_DIRECTIONS, key=key)


def actor_bounds_lps(renderer: Any, prefix: str) -> np.ndarray | None:
    """(2, 3) LPS mm box [min, max] of the visible actors named ``prefix...``, or None."""
    boxes = [np.asarray(actor.GetBounds(), float).reshape(3, 2).T
             for name, actor in renderer.actors.items()
             if str(name).startswith(prefix) and actor.GetVisibility()]
    boxes = [b for b in boxes if np.all(np.isfinite(b)) and np.all(b[1] >= b[0])]
    if not boxes:
        return None
    return np.array([np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)])


def frame_objects(renderer: Any, boxes: Sequence[np.ndarray],
                  axes: Sequence[tuple[np.ndarray, np.ndarray]], *,
                  padding_mm: float = 45.0) -> bool:
    """Point ``renderer``'s camera at the union of ``boxes`` ((2, 3) LPS mm) and the ``axes``'
    end points, padded by ``padding_mm`` on every side, from the side (SIDE_DIRECTIONS) most
    perpendicular to the axes (or facing the box's thinnest side without axes), at the
    distance that fits the padded box in the view. False when there is nothing to frame."""
    points = [np.asarray(p, float) for b in boxes for p in b]
    points += [np.asarray(p, float) for a in axes for p in a]
    if not points:
        return False
    lo = np.min(points, axis=0) - padding_mm
    hi = np.max(points, axis=0) + padding_mm
    units = [(b - a) / max(float(np.linalg.norm(b - a)), 1e-9) for a, b in axes]
    direction = side_direction(units, hi - lo)
    up = np.array([0.0, 0.0, 1.0]) - direction * direction[2]  # superior, in the view plane
    up /= np.linalg.norm(up)
    centre = (lo + hi) / 2.0
    half = (hi - lo) / 2.0
    right = np.cross(direction, up)
    half_w, half_h = float(np.abs(right) @ half), float(np.abs(up) @ half)
    width, height = renderer.GetSize()
    aspect = min(width / height, 1.0) if width > 1 and height > 1 else 1.0
    tan_half = math.tan(math.radians(renderer.GetActiveCamera().GetViewAngle()) / 2.0)
    distance = max(half_h, half_w / aspect) / tan_half + float(np.abs(direction) @ half)
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(*centre)
    camera.SetPosition(*(centre + direction * distance))
    camera.SetViewUp(*up)
    renderer.ResetCameraClippingRange()
    return True


def open_comparison(window: MainWindow, plans: Sequence[Plan]) -> CompareWindow:
    """Open the comparison of ``plans`` on the window's case; the anatomy follows from a
    worker (surfaces cached on the twin are reused)."""
    from surgiplan.ui.data import case_io

    twin = window.twin
    compare = CompareWindow(twin, plans, parent=window)
    compare.show()
    shown = shown_surfaces(window)
    if shown:
        compare.set_surfaces(shown)
    missing = [n for n in twin.segmentation.names() if n not in shown]
    if not missing:
        return compare  # every surface is the main 3D view's own: nothing to build

    def done(scene) -> None:
        if compare.isVisible():
            compare.set_surfaces({**shown, **scene.surfaces})

    window.runner.submit("Preparing comparison views",
                         partial(case_io.scene_3d, twin, names=missing, with_volume=False,
                                 render_triangles=case_io.render_budget(window.view3d)),
                         on_done=done, on_error=window.report_error)
    return compare


def shown_surfaces(window: MainWindow) -> dict[str, Any]:
    """The display surfaces (PolyData, LPS mm) the main 3D view already shows, by structure
    name: Compare and review reuse them instead of meshing the twin again (seconds to a
    minute on a real scan)."""
    import pyvista as pv

    actors = getattr(getattr(window, "view3d", None), "_surface_actors", {}) or {}
    names = set(window.twin.segmentation.names()) if window.twin is not None else set()
    names -= set(getattr(window, "_pending_surfaces", ()))  # edited, re-mesh not shown yet
    out = {}
    for name, actor in actors.items():
        data = actor.GetMapper().GetInput() if actor.GetMapper() is not None else None
        if name in names and data is not None and data.GetNumberOfCells():
            out[name] = pv.wrap(data)
    return out
