"""The Plans dock: the case's candidate plans as documents (issue 7).

* A table of plans (name, status with approver, author, created/modified times, number of
  interventions, worst traffic-light level); several may be selected for a comparison.
* New plan from the planning panel's current trajectory; other panels add interventions
  through :meth:`PlansPanel.add_intervention` (to the selected plan, or a new one).
* Duplicate, rename, delete with undo/redo (the :class:`~surgiplan.plans.PlanSet`'s history),
  notes, status draft / proposed / approved (approval asks who; the table shows who and when).
* Re-score (every simulator of the plan, in a worker), export ``.mrk.json`` (3D Slicer, LPS)
  and STL (implants, ablation zones), compare 2-4 plans, open the OR review mode.
* Every change is put into the twin (``store_in_twin``) and marks the case dirty, so autosave
  and save carry the plans and their audit log.
"""

from __future__ import annotations

import getpass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.plans import Intervention, Plan, PlanSet, PlanStatus, plan_set_of_twin
from surgiplan.plans.store import store_in_twin
from surgiplan.simulation.result import SimulationResult
from surgiplan.simulation.uncertainty import UncertaintyModel
from surgiplan.twin import Twin
from surgiplan.ui.plan.plan_graphics import add_intervention_actors, axis_lps, level_of, plan_level
from surgiplan.ui.plan.trajectory_tools import PathDecoration, TrajectoryPlan, level_color
from surgiplan.ui.widgets.docks import FIXED_DOCK, add_dock

if TYPE_CHECKING:
    from surgiplan.ui.plan.compare_window import CompareWindow
    from surgiplan.ui.shell.main_window import MainWindow

COLUMNS = ["Plan", "Status", "Author", "Modified (UTC)", "Steps", "Level"]
MAX_COMPARED = 4
STATUS_COLOURS = {PlanStatus.DRAFT: QColor(170, 170, 170),
                  PlanStatus.PROPOSED: QColor(250, 190, 40),
                  PlanStatus.APPROVED: QColor(60, 205, 90)}


def status_text(plan: Plan) -> str:
    """"draft", "proposed" or "approved by NAME (TIME UTC)"."""
    if plan.status is PlanStatus.APPROVED:
        return f"approved by {plan.approved_by} ({_time(plan.approved_utc)})"
    return str(plan.status)


def _time(iso: str | None) -> str:
    return "" if not iso else iso.replace("T", " ")[:16]


def ask_text(parent: QWidget, title: str, label: str, text: str = "") -> str | None:
    """A one-line text from the user (None when cancelled); tests replace this function."""
    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value if ok else None


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


class PlansPanel(QWidget):
    """The candidate plans of the open case (see the module docstring)."""

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.twin: Twin | None = None
        self.plan_set: PlanSet | None = None
        self.read_only = False
        self.compare_windows: list[CompareWindow] = []
        self.review_windows: list[QWidget] = []
        self._score_job = None
        self._shown: list[tuple[TrajectoryPlan, PathDecoration]] = []  # selected plan's axes
        self._shown_actors: list[str] = []
        self._shown_key: tuple | None = None
        self._build()
        self._connect()
        self._refresh()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("plans_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 2)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        specs = [("new", "New from trajectory"), ("new_rehearsal", "New from Rehearse tab"),
                 ("duplicate", "Duplicate"),
                 ("rename", "Rename…"), ("delete", "Delete"), ("undo", "Undo"), ("redo", "Redo"),
                 ("draft", "Back to draft"), ("propose", "Propose"), ("approve", "Approve…"),
                 ("rescore", "Re-score"), ("markups", "Export .mrk.json…"),
                 ("stl", "Export STL…"), ("compare", "Compare…"), ("review", "OR review…")]
        for n, (key, text) in enumerate(specs):
            button = QPushButton(text)
            button.setObjectName(f"plans_{key}")
            self.buttons[key] = button
            grid.addWidget(button, n // 3, n % 3)
        layout.addLayout(grid)
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.detail_label)
        notes_row = QHBoxLayout()
        notes_row.addWidget(QLabel("Notes"))
        notes_row.addStretch(1)
        self.save_notes_button = QPushButton("Save notes")
        notes_row.addWidget(self.save_notes_button)
        layout.addLayout(notes_row)
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("Why this plan; what was discussed…")
        self.notes_edit.setMaximumHeight(90)
        layout.addWidget(self.notes_edit, 1)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)

    def _connect(self) -> None:
        b = self.buttons
        b["new"].clicked.connect(lambda: self._guard(self.new_from_trajectory))
        b["new_rehearsal"].clicked.connect(lambda: self._guard(self.new_from_rehearsal))
        b["duplicate"].clicked.connect(lambda: self._guard(self.duplicate_selected))
        b["rename"].clicked.connect(lambda: self._guard(self.rename_selected))
        b["delete"].clicked.connect(lambda: self._guard(self.delete_selected))
        b["undo"].clicked.connect(lambda: self._guard(self.undo))
        b["redo"].clicked.connect(lambda: self._guard(self.redo))
        b["draft"].clicked.connect(lambda: self._guard(partial(self.set_status,
                                                               PlanStatus.DRAFT)))
        b["propose"].clicked.connect(lambda: self._guard(partial(self.set_status,
                                                                 PlanStatus.PROPOSED)))
        b["approve"].clicked.connect(lambda: self._guard(self.approve_selected))
        b["rescore"].clicked.connect(lambda: self._guard(self.rescore_selected))
        b["markups"].clicked.connect(lambda: self._guard(self.choose_markups_export))
        b["stl"].clicked.connect(lambda: self._guard(self.choose_stl_export))
        b["compare"].clicked.connect(lambda: self._guard(self.compare_selected))
        b["review"].clicked.connect(lambda: self._guard(self.review_selected))
        self.save_notes_button.clicked.connect(lambda: self._guard(self.save_notes))
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.window.case_loaded.connect(self.set_twin)

    def _guard(self, action) -> Any:
        """Run a button's action; bad input goes to the window's error dialog."""
        try:
            return action()
        except Exception as exc:
            self.window.report_error(exc)
            return None

    # ------------------------------------------------------------------ the case
    def set_twin(self, twin: Twin | None) -> None:
        """Show the plans ``twin`` carries (the main window calls this on every load)."""
        if self.plan_set is not None:
            self.plan_set.events.disconnect(self._plans_event)
        self.twin = twin
        self.plan_set = None
        if twin is not None:
            try:
                self.plan_set = plan_set_of_twin(twin, actor=current_user())
            except Exception as exc:  # a damaged plans entry: the case still opens
                self.window.report_error(exc)
        if self.plan_set is not None:
            self.plan_set.events.connect(self._plans_event)
        history = getattr(self.window, "edit_history", None)
        if history is not None:
            history.watch_plans(self.plan_set)
        self._refresh()

    def _plans_event(self, event: str, /, **payload: Any) -> None:
        if self.twin is not None and self.plan_set is not None:
            store_in_twin(self.twin, self.plan_set)
            self.window.mark_dirty()
        keep = payload.get("name") if event in ("plan_added", "plan_renamed") else None
        self._refresh(keep)

    # ------------------------------------------------------------------ reading
    def plans(self) -> list[Plan]:
        return [] if self.plan_set is None else self.plan_set.plans

    def selected_names(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.table.item(r, 0).text() for r in rows]

    def selected_plan(self) -> Plan | None:
        names = self.selected_names()
        return None if not names or self.plan_set is None else self.plan_set.get(names[0])

    def select(self, *names: str) -> None:
        """Select the plans named ``names`` in the table."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() in names:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def _require_selected(self) -> Plan:
        from surgiplan.errors import BadInputError

        plan = self.selected_plan()
        if plan is None:
            raise BadInputError("no plan is selected", action="select a plan in the Plans list")
        return plan

    def _plan_set(self) -> PlanSet:
        from surgiplan.errors import BadInputError

        if self.plan_set is None:
            raise BadInputError("no case is open", action="open a case first")
        return self.plan_set

    # ------------------------------------------------------------------ display
    def _refresh(self, keep: str | None = None) -> None:
        keep_names = [keep] if keep else self.selected_names()
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for plan in self.plans():
            row = self.table.rowCount()
            self.table.insertRow(row)
            level = plan_level(plan)
            texts = [plan.name, status_text(plan), plan.author, _time(plan.modified_utc),
                     str(len(plan.interventions)),
                     "not scored" if not plan.scored else str(level or "—")]
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(f"created {_time(plan.created_utc)} UTC, modified "
                                f"{_time(plan.modified_utc)} UTC")
                self.table.setItem(row, col, item)
            self.table.item(row, 1).setForeground(STATUS_COLOURS[plan.status])
            if plan.scored and level is not None:
                self.table.item(row, 5).setBackground(level_color(level, 120))
        self.table.blockSignals(False)
        if keep_names and self.plans():
            self.select(*keep_names)
        self._selection_changed()

    def _selection_changed(self) -> None:
        plan = self.selected_plan() if self.plan_set is not None else None
        self.notes_edit.blockSignals(True)
        self.notes_edit.setPlainText("" if plan is None else plan.notes)
        self.notes_edit.blockSignals(False)
        self.detail_label.setText("" if plan is None else self._detail(plan))
        self._update_enabled()
        try:
            self.show_in_views(plan if len(self.selected_names()) == 1 else None)
        except Exception as exc:  # drawing must never block the list
            self._say(f"Could not draw {plan.name if plan else 'the plan'}: {exc}")

    def show_in_views(self, plan: Plan | None, *, go_to: bool = True) -> None:
        """Draw ``plan``'s interventions in the slice views (axis with E/T markers in the
        plan's level colours) and in 3D; the slices move to its first target when the
        selection changed (``go_to``). None clears the drawing."""
        key = None if plan is None else (plan.id, plan.modified_utc)
        if key == self._shown_key:
            return
        moved = plan is not None and (self._shown_key or (None,))[0] != plan.id
        self._shown_key = key
        views = list(getattr(self.window, "slice_views", {}).values())
        for _path, decoration in self._shown:
            for view in views:
                view.remove_decoration(decoration)
        self._shown = []
        plotter = self._plotter()
        for name in self._shown_actors:
            plotter.remove_actor(name, render=False)
        self._shown_actors = []
        if plan is not None:
            for item in plan.interventions:
                axis = axis_lps(item)
                if axis is not None:
                    path = TrajectoryPlan()
                    path.entry_lps, path.target_lps = axis
                    path.level = level_of(item)
                    decoration = PathDecoration(path)
                    for view in views:
                        view.add_decoration(decoration)
                    self._shown.append((path, decoration))
                if plotter is not None:
                    self._shown_actors += add_intervention_actors(plotter, item,
                                                                  prefix="plans_selected")
            if go_to and moved and self._shown:
                self.window.set_cursor(self._shown[0][0].target_lps)
        for view in views:
            view.update()
        if plotter is not None:
            plotter.interactor.update()

    def shown_axes(self) -> list[tuple]:
        """(entry, target) LPS mm of every axis drawn for the selected plan."""
        return [(p.entry_lps, p.target_lps) for p, _d in self._shown]

    def _plotter(self) -> Any:
        view3d = getattr(self.window, "view3d", None)
        if view3d is None or self.twin is None:
            return None
        try:
            return view3d.plotter
        except Exception:
            return None

    def _detail(self, plan: Plan) -> str:
        steps = "; ".join(f"{i.label} ({i.kind})" for i in plan.interventions) or "none"
        text = (f"<b>{plan.name}</b> — {status_text(plan)}<br>Author: {plan.author or '—'}; "
                f"created {_time(plan.created_utc)}, modified {_time(plan.modified_utc)} UTC"
                f"<br>Steps: {steps}")
        if plan.status is PlanStatus.APPROVED:
            text += (f"<br><span style='color:#3ccd5a'><b>APPROVED</b> by {plan.approved_by} "
                     f"at {_time(plan.approved_utc)} UTC</span>")
        return text

    def _update_enabled(self) -> None:
        has_set = self.plan_set is not None
        n = len(self.selected_names()) if has_set else 0
        editable = has_set and not self.read_only
        plan = self.selected_plan() if n else None
        enabled = {
            "new": editable, "new_rehearsal": editable, "duplicate": editable and n == 1,
            "rename": editable and n == 1,
            "delete": editable and n >= 1,
            "undo": editable and self.plan_set.can_undo if has_set else False,
            "redo": editable and self.plan_set.can_redo if has_set else False,
            "draft": editable and n == 1 and plan.status is not PlanStatus.DRAFT if plan else False,
            "propose": editable and n == 1 and plan.status is not PlanStatus.PROPOSED
            if plan else False,
            "approve": editable and n == 1 and plan.status is not PlanStatus.APPROVED
            if plan else False,
            "rescore": editable and n == 1 and bool(plan and plan.interventions),
            "markups": has_set and n >= 1, "stl": has_set and n == 1,
            "compare": has_set and len(self.plans()) >= 2, "review": has_set and n <= 1,
        }
        for key, value in enabled.items():
            self.buttons[key].setEnabled(bool(value))
        if has_set:
            self.buttons["undo"].setToolTip(f"Undo {self.plan_set.undo_label}".strip())
            self.buttons["redo"].setToolTip(f"Redo {self.plan_set.redo_label}".strip())
        self.notes_edit.setReadOnly(not (editable and n == 1))
        self.save_notes_button.setEnabled(editable and n == 1)

    def set_read_only(self, read_only: bool) -> None:
        """Disable (visibly) every action that changes a plan."""
        self.read_only = bool(read_only)
        self._update_enabled()

    def _say(self, text: str) -> None:
        self.message_label.setText(text)
        self.window.statusBar().showMessage(text, 5000)

    # ------------------------------------------------------------------ editing
    def _free_name(self, base: str) -> str:
        names = set(self.plan_set.names()) if self.plan_set is not None else set()
        name, n = base, 2
        while name in names:
            name, n = f"{base} {n}", n + 1
        return name

    def new_plan(self, name: str | None = None, interventions: list[Intervention] = ()) -> Plan:
        """Add a new draft plan (default name "Plan N") by the current user."""
        plan_set = self._plan_set()
        plan = Plan(name=name or self._free_name(f"Plan {len(plan_set) + 1}"),
                    author=current_user(), interventions=list(interventions))
        return plan_set.add(plan)

    def new_from_trajectory(self, name: str | None = None) -> Plan:
        """A new plan holding the planning panel's trajectory (and its latest result)."""
        from surgiplan.errors import BadInputError

        planning = getattr(self.window, "planning_panel", None)
        if planning is None or not planning.plan.complete():
            raise BadInputError("the Planning panel holds no complete trajectory",
                                action="place an entry and a target in the Planning panel")
        entry = planning.entry()
        result = planning.result if planning.result is not None and planning.result.ok else None
        item = Intervention.from_input(
            "Trajectory", planning.inputs(),
            simulator_id=entry.spec.id if entry is not None else None,
            parameters=planning.form.values(), uncertainty=planning.uncertainty())
        if result is not None:
            item = item.with_result(result)
        return self.new_plan(name, [item])

    def new_from_rehearsal(self) -> Plan:
        """A new plan holding the rehearsal (implant, ablation or resection) of the Rehearse
        dock's current tab, with its parameters and last full result."""
        from surgiplan.errors import BadInputError

        tabs = getattr(self.window, "rehearsal_tabs", None)
        panel = tabs.currentWidget() if tabs is not None else None
        if panel is None:
            raise BadInputError("there is no Rehearse dock", action="use the Planning tab")
        return panel.save_as_plan()

    def add_intervention(self, kind: str, inputs: Any, result: SimulationResult | None = None,
                         *, label: str | None = None, simulator_id: str | None = None,
                         parameters: dict[str, Any] | None = None,
                         uncertainty: UncertaintyModel | None = None,
                         plan: str | None = None, new_plan: bool = False) -> Plan:
        """Add an intervention (``inputs``: the kind's input model, LPS mm) with its result
        to plan ``plan``, else the selected plan, else (or with ``new_plan``) a new plan;
        returns the plan."""
        plan_set = self._plan_set()
        if inputs.kind != kind:
            raise ValueError(f"inputs are for {inputs.kind}, not {kind}")
        target = plan_set.get(plan) if plan else None if new_plan else self.selected_plan()
        taken = {i.label for i in target.interventions} if target else set()
        base = label or str(kind).capitalize()
        name, n = base, 2
        while name in taken:
            name, n = f"{base} {n}", n + 1
        item = Intervention.from_input(name, inputs, simulator_id=simulator_id,
                                       parameters=parameters, uncertainty=uncertainty)
        if result is not None and result.ok:
            item = item.with_result(result)
        if target is None:
            return self.new_plan(None, [item])
        return plan_set.update(target.name, interventions=[*target.interventions, item])

    def duplicate_selected(self) -> Plan:
        return self._plan_set().duplicate(self._require_selected().name)

    def rename_selected(self, new_name: str | None = None) -> None:
        plan = self._require_selected()
        if new_name is None:
            new_name = ask_text(self, "Rename plan", "New name:", plan.name)
            if new_name is None:
                return
        self._plan_set().rename(plan.name, new_name)

    def delete_selected(self) -> None:
        """Delete the selected plans (Undo brings them back)."""
        plan_set = self._plan_set()
        names = self.selected_names()
        for name in names:
            plan_set.delete(name)
        if names:
            self._say(f"Deleted {', '.join(names)} (Undo restores).")

    def undo(self) -> str:
        label = self._plan_set().undo()
        if label:
            self._say(f"Undone: {label}")
        return label

    def redo(self) -> str:
        label = self._plan_set().redo()
        if label:
            self._say(f"Redone: {label}")
        return label

    def save_notes(self) -> None:
        plan = self._require_selected()
        text = self.notes_edit.toPlainText()
        if text != plan.notes:
            self._plan_set().update(plan.name, notes=text)

    def set_status(self, status: PlanStatus | str, *, by: str = "") -> Plan:
        return self._plan_set().set_status(self._require_selected().name, status, by=by)

    def approve_selected(self, by: str | None = None) -> Plan | None:
        """Approve the selected plan; asks who approves it unless ``by`` is given."""
        plan = self._require_selected()
        if by is None:
            by = ask_text(self, "Approve plan", f"Approved by (name, role) for {plan.name!r}:",
                          current_user())
            if by is None:
                return None
        return self.set_status(PlanStatus.APPROVED, by=by)

    # ------------------------------------------------------------------ scoring and export
    def rescore_selected(self) -> None:
        """Re-run every simulator of the selected plan in a worker; store the results."""
        from surgiplan.plans.scoring import score_plan
        from surgiplan.simulation.context import SimulationContext

        plan = self._require_selected()
        context = SimulationContext(self.twin)
        self.buttons["rescore"].setEnabled(False)
        self._say(f"Scoring {plan.name}…")

        def done(results: list[SimulationResult]) -> None:
            self._score_job = None
            if self.plan_set is not None and plan.id in {p.id for p in self.plan_set.plans}:
                self.plan_set.set_results(plan.id, results)
                failed = [r.error for r in results if not r.ok]
                self._say(f"{plan.name} scored" + (f"; failed: {'; '.join(failed)}"
                                                   if failed else "."))
            self._update_enabled()

        def failed(exc: BaseException) -> None:
            self._score_job = None
            self._update_enabled()
            self.window.report_error(exc)

        self._score_job = self.window.runner.submit(
            f"Scoring {plan.name}", partial(score_plan, context, plan), on_done=done,
            on_error=failed, on_cancel=lambda: (self._update_enabled(), self._say("Cancelled")))

    def export_markups(self, path: str | Path) -> Path:
        """Write the selected plans' trajectories and targets as 3D Slicer markups (LPS)."""
        from surgiplan.plans.slicer_markups import write_markups

        names = self.selected_names()
        plans = [self._plan_set().get(n) for n in names] if names else self.plans()
        written = write_markups(plans, path)
        self._say(f"Wrote {written}")
        return written

    def choose_markups_export(self) -> None:
        plan = self.selected_plan()
        default = f"{plan.name if plan else 'plans'}.mrk.json".replace(" ", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Export 3D Slicer markups", default,
                                              "3D Slicer markups (*.mrk.json)")
        if path:
            self.export_markups(path if path.endswith(".mrk.json") else path + ".mrk.json")

    def export_stl(self, folder: str | Path) -> None:
        """Write the selected plan's implants and ablation zones as STL (LPS mm), in a worker."""
        from surgiplan.plans.exports import export_stl
        from surgiplan.simulation.context import SimulationContext

        plan = self._require_selected()
        context = SimulationContext(self.twin)
        self.window.runner.submit(
            f"Exporting {plan.name} as STL",
            lambda progress=None, cancel=None: export_stl(context, plan, folder, cancel=cancel),
            on_done=lambda paths: self._say(f"Wrote {len(paths)} STL file(s) to {folder}"),
            on_error=self.window.report_error)

    def choose_stl_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export STL into folder")
        if folder:
            self.export_stl(folder)

    # ------------------------------------------------------------------ other windows
    def compare_selected(self, names: list[str] | None = None) -> CompareWindow:
        """Open the comparison of the selected plans (2-4; default: the first four)."""
        from surgiplan.errors import BadInputError
        from surgiplan.ui.plan.compare_window import open_comparison

        names = names or self.selected_names()
        if len(names) < 2:
            names = self._plan_set().names()[:MAX_COMPARED]
        if not 2 <= len(names) <= MAX_COMPARED:
            raise BadInputError(f"{len(names)} plans selected; a comparison shows 2 to "
                                f"{MAX_COMPARED}", action="select 2 to 4 plans")
        plans = [self._plan_set().get(n) for n in names]
        compare = open_comparison(self.window, plans)
        self.compare_windows = [w for w in self.compare_windows if w.isVisible()] + [compare]
        return compare

    def review_selected(self) -> QWidget:
        """Open the OR review mode (read-only) on the selected plan (default: the approved
        one, else the first)."""
        plan = self.selected_plan()
        review = self.window.open_review(self.plans(), plan=plan.name if plan else None)
        self.review_windows = [w for w in self.review_windows if w.isVisible()] + [review]
        return review


def _points(plan: TrajectoryPlan) -> tuple:
    return tuple(None if p is None else tuple(float(v) for v in p)
                 for p in (plan.entry_lps, plan.target_lps))


class EditHistory:
    """The window's one undo order (Edit > Undo, Ctrl+Z) across the segmentation edits, the
    plan edits (the PlanSet's snapshots) and moves of the working trajectories (planning,
    implant and ablation ends, LPS mm). Each entry delegates to its own history; a
    trajectory move restores the ends and re-scores (changed + released)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.done: list[tuple] = []
        self.undone: list[tuple] = []
        self._replaying = False
        self._travelled = False
        self._plan_set: PlanSet | None = None
        self._last: dict[int, tuple] = {}
        self._segment_seen: set[int] = set()

    # ------------------------------------------------------------------ recording
    def record(self, entry: tuple) -> None:
        if not self._replaying:
            self.done.append(entry)
            self.undone.clear()
            self.update_actions()

    def watch_plans(self, plan_set: PlanSet | None) -> None:
        if self._plan_set is not None:
            self._plan_set.events.disconnect(self._plans_event)
        self._plan_set = plan_set
        if plan_set is not None:
            plan_set.events.connect(self._plans_event)
        self.done, self.undone = [], []  # another case: nothing of the old one to undo
        self._segment_seen = set()
        self._last = dict.fromkeys(self._last, (None, None))  # panels forget their ends
        self.update_actions()

    def _plans_event(self, event: str, /, **_payload: Any) -> None:
        if event == "plans_reset":
            self._travelled = True  # an undo/redo of the plan set itself, not a new change
        elif event == "history_changed":
            if not self._travelled:
                self.record(("plans", self._plan_set))
            self._travelled = False
            self.update_actions()

    def watch_points(self, plan: TrajectoryPlan) -> None:
        """Record every finished move (not each drag step) of ``plan``'s ends."""
        self._last[id(plan)] = _points(plan)

        def moved(dragging: bool = False) -> None:
            now, before = _points(plan), self._last.get(id(plan))
            if dragging or now == before:
                return
            self._last[id(plan)] = now
            if before is not None and any(p is not None for p in before + now):
                self.record(("points", plan, before, now))

        plan.changed.connect(moved)
        plan.released.connect(moved)

    def _segment_history(self) -> Any:
        editor = getattr(getattr(self.window, "segment_panel", None), "editor", None)
        return None if editor is None else editor.history

    def segment_event(self, *_args: Any) -> None:
        """A segmentation step newly on top of its history (by identity) is recorded once."""
        history = self._segment_history()
        top = history._done[-1] if history is not None and history._done else None
        if top is not None and id(top) not in self._segment_seen and not self._replaying:
            self._segment_seen.add(id(top))
            self.record(("segment", top))
        self.update_actions()

    # ------------------------------------------------------------------ replaying
    def undo(self) -> str:
        return self._travel(self.done, self.undone, undo=True)

    def redo(self) -> str:
        return self._travel(self.undone, self.done, undo=False)

    def _travel(self, source: list[tuple], target: list[tuple], *, undo: bool) -> str:
        while source:
            entry = source.pop()
            label = self._apply(entry, undo=undo)
            if label:
                target.append(entry)
                self.window.statusBar().showMessage(
                    f"{'Undone' if undo else 'Redone'}: {label}", 5000)
                self.update_actions()
                return label
        self.update_actions()
        return ""

    def _apply(self, entry: tuple, *, undo: bool) -> str:
        self._replaying = True
        try:
            if entry[0] == "plans":
                plan_set = entry[1]
                if plan_set is not self._plan_set:
                    return ""
                return plan_set.undo() if undo else plan_set.redo()
            if entry[0] == "points":
                plan, before, after = entry[1:]
                entry_lps, target_lps = before if undo else after
                plan.entry_lps = None if entry_lps is None else np.array(entry_lps)
                plan.target_lps = None if target_lps is None else np.array(target_lps)
                self._last[id(plan)] = _points(plan)
                plan.changed.emit(False)
                if plan.complete():
                    plan.released.emit()
                return "trajectory move"
            return self._segment_step(entry[1], undo=undo)
        finally:
            self._replaying = False

    def _segment_step(self, step: Any, *, undo: bool) -> str:
        """Undo/redo segmentation ``step`` if it is the next one of the editor's history."""
        panel = getattr(self.window, "segment_panel", None)
        history = self._segment_history()
        if history is None:
            return ""
        stack = history._done if undo else history._undone
        if not stack or stack[-1] is not step:
            return ""
        label = panel.editor.undo() if undo else panel.editor.redo()
        panel._update_undo()
        return label or ""

    def _label(self, entry: tuple | None, *, undo: bool) -> str:
        if entry is None:
            return ""
        if entry[0] == "plans" and entry[1] is not None:
            return entry[1].undo_label if undo else entry[1].redo_label
        return "trajectory move" if entry[0] == "points" else entry[1].label

    def update_actions(self) -> None:
        """Edit > Undo/Redo enabled and named after the next step of the joint order."""
        actions = getattr(self, "actions", ())
        for action, stack, verb in zip(actions, (self.done, self.undone), ("Undo", "Redo"),
                                       strict=False):
            label = self._label(stack[-1] if stack else None, undo=verb == "Undo")
            action.setEnabled(bool(stack))
            action.setText(f"&{verb} {label}".rstrip())


def install_edit_history(window: MainWindow, panel: PlansPanel) -> EditHistory | None:
    """Route Edit > Undo/Redo (Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y) through one
    :class:`EditHistory` (segmentation, plans and trajectory moves, in the order made)."""
    segment = getattr(window, "segment_panel", None)
    actions = getattr(segment, "undo_actions", None)
    if getattr(window, "edit_history", None) is not None or not actions:
        return getattr(window, "edit_history", None)
    history = EditHistory(window)
    for action, slot in zip(actions, (history.undo, history.redo), strict=True):
        action.triggered.disconnect()
        action.triggered.connect(lambda _=False, slot=slot: slot())
    history.actions = actions
    segment_update = segment._update_undo

    def update_after_segment() -> None:  # the segment panel names the actions; we decide last
        segment_update()
        history.segment_event()

    segment._update_undo = update_after_segment
    for attr in ("planning_panel", "implant_panel", "ablation_panel"):
        plan = getattr(getattr(window, attr, None), "plan", None)
        if isinstance(plan, TrajectoryPlan):
            history.watch_points(plan)
    window.twin_event.connect(history.segment_event)
    history.watch_plans(panel.plan_set)
    window.edit_history = history
    return history


def install_plans_panel(window: MainWindow) -> PlansPanel:
    """Add the Plans dock (a tab beside the Planning dock) to ``window``."""
    panel = PlansPanel(window)
    panel.setMinimumWidth(380)
    dock = add_dock(window, "Plans", panel, name="dock_plans", features=FIXED_DOCK,
                    beside=("dock_planning", "dock_structures"))
    structures = window.findChild(QDockWidget, "dock_structures")
    if structures is not None:
        structures.raise_()
    window.plans_dock = dock
    install_edit_history(window, panel)
    return panel
