"""Training mode for residents (Training menu, Training dock).

The resident chooses an exercise (``surgiplan/training/exercises`` or any ``.exercise.json``);
its case opens (a generated phantom is made on first use, in a worker), the task and the marked
target are shown and a clock starts. The resident places the two points with the Planning dock's
entry/target tools (trajectory: entry and target; screw: head and tip direction; ablation:
shaft point and tip). The reference stays hidden until the resident submits: the plan is then
scored in a worker (:func:`surgiplan.training.scoring.score_attempt`), the score and numbered
feedback are listed, each feedback item is marked on the anatomy (slice and 3D views; a click
on an item moves the cursor there), and the reference placement is revealed in cyan.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.errors import BadInputError
from surgiplan.training.exercise import Exercise, Placement, list_exercises, load_exercise
from surgiplan.training.scoring import TrainingScore
from surgiplan.ui.report.marks import SEVERITY_RGB, Marker, PlanMarks
from surgiplan.ui.widgets.docks import add_dock

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

REFERENCE_RGB = tuple(v / 255.0 for v in SEVERITY_RGB["reference"])


class TrainingPanel(QWidget):
    """The Training dock's content (see the module docstring)."""

    scored = Signal(object)  # TrainingScore

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training_panel")
        self.window = window
        self.exercise: Exercise | None = None
        self.exercise_path: Path | None = None
        self.score: TrainingScore | None = None
        self.started: float | None = None
        self.marks = PlanMarks(window, prefix="training")
        self._opening = False
        self._build()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.exercise_combo = QComboBox()
        self.exercise_combo.setObjectName("training_exercises")
        self.open_button = QPushButton("Start exercise")
        self.open_button.clicked.connect(self.start_selected)
        self.browse_button = QPushButton("Other file…")
        self.browse_button.clicked.connect(self.choose_file)
        self.task_label = QLabel("Choose an exercise and press Start.")
        self.task_label.setWordWrap(True)
        self.task_label.setObjectName("training_task")
        self.submit_button = QPushButton("Submit my plan")
        self.submit_button.setObjectName("training_submit")
        self.submit_button.setEnabled(False)
        self.submit_button.clicked.connect(self.submit)
        self.score_label = QLabel("")
        self.score_label.setObjectName("training_score")
        self.score_label.setWordWrap(True)
        font = self.score_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.score_label.setFont(font)
        self.feedback_list = QListWidget()
        self.feedback_list.setObjectName("training_feedback")
        self.feedback_list.setWordWrap(True)
        self.feedback_list.itemClicked.connect(self._go_to_feedback)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Exercise"))
        layout.addWidget(self.exercise_combo)
        layout.addLayout(row)
        layout.addWidget(self.task_label)
        layout.addWidget(self.submit_button)
        layout.addWidget(self.score_label)
        layout.addWidget(self.feedback_list, 1)
        self.refresh_exercises()

    def refresh_exercises(self, folder: str | Path | None = None) -> None:
        self.exercise_combo.clear()
        try:
            found = list_exercises(folder)
        except BadInputError as exc:
            self.task_label.setText(str(exc))
            return
        for path, exercise in found:
            self.exercise_combo.addItem(f"{exercise.title} ({exercise.case.phantom or 'case'})",
                                        str(path))

    # ------------------------------------------------------------------ opening
    def start_selected(self) -> None:
        path = self.exercise_combo.currentData()
        if path:
            self.start(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open exercise", "",
                                              "Exercises (*.exercise.json);;JSON (*.json)")
        if path:
            self.start(path)

    def start(self, path: str | Path, *, case: str | Path | None = None) -> None:
        """Open exercise ``path`` and its case (``case`` overrides the exercise's)."""
        try:
            exercise = load_exercise(path)
        except BadInputError as exc:
            self.window.report_error(exc)
            return
        self._reset()
        self.exercise, self.exercise_path = exercise, Path(path)
        self.task_label.setText(f"<b>{exercise.title}</b><br>{exercise.task}<br><i>Place the "
                                "two points with the Planning dock (Entry / Target), then "
                                "submit. The reference is hidden until you submit.</i>")
        self._opening = True
        self.window.ready.connect(self._case_ready)
        from surgiplan.training.cases import case_bundle

        self.window.runner.submit(
            f"Preparing the case of {exercise.id}",
            partial(case_bundle, exercise, Path(path), case=case),
            on_done=self.window.open_path, on_error=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self._opening = False
        self.window.report_error(exc)

    def _case_ready(self) -> None:
        if not self._opening:
            return
        self._opening = False
        self.window.ready.disconnect(self._case_ready)
        exercise = self.exercise
        planning = getattr(self.window, "planning_panel", None)
        if planning is not None:
            planning.plan.entry_lps = planning.plan.target_lps = None
            planning.plan.changed.emit(False)
        if exercise.target_hint_lps is not None:
            self.marks.set_markers([Marker(exercise.target_hint_lps, "target", "info")])
            self.window.set_cursor(exercise.target_hint_lps)
        self.started = time.monotonic()
        self.submit_button.setEnabled(True)
        self.window.statusBar().showMessage(f"Exercise started: {exercise.title}", 8000)

    def _reset(self) -> None:
        self.marks.clear()
        self.score = None
        self.started = None
        self.score_label.setText("")
        self.feedback_list.clear()
        self.submit_button.setEnabled(False)

    # ------------------------------------------------------------------ submitting
    def placement(self) -> Placement:
        """The resident's two points from the Planning dock (LPS mm)."""
        planning = getattr(self.window, "planning_panel", None)
        plan = None if planning is None else planning.plan
        if plan is None or not plan.complete():
            raise BadInputError("place both points first",
                                action="use the Planning dock's Entry and Target buttons")
        return Placement(entry_lps=tuple(plan.entry_lps), target_lps=tuple(plan.target_lps))

    def submit(self) -> None:
        """Score the resident's placement in a worker, then show the feedback and reference."""
        if self.exercise is None or self.window.twin is None:
            return
        try:
            placement = self.placement()
        except BadInputError as exc:
            self.window.report_error(exc)
            return
        taken = None if self.started is None else time.monotonic() - self.started
        from surgiplan.simulation import SimulationContext
        from surgiplan.training.scoring import score_attempt

        context = SimulationContext(self.window.twin)
        self.submit_button.setEnabled(False)
        self.score_label.setText("Scoring…")
        self.window.runner.submit(
            "Scoring the exercise",
            partial(score_attempt, context, self.exercise, placement, time_taken_s=taken),
            on_done=self.show_score, on_error=self._score_failed)

    def _score_failed(self, exc: BaseException) -> None:
        self.submit_button.setEnabled(True)
        self.score_label.setText("")
        self.window.report_error(exc)

    def show_score(self, score: TrainingScore) -> None:
        """List the score and feedback, mark the feedback on the anatomy, reveal the reference."""
        self.score = score
        self.submit_button.setEnabled(True)
        verdict = "passed" if score.passed else "not passed"
        self.score_label.setText(f"Score {score.score:.0f} / 100 ({verdict})")
        self.feedback_list.clear()
        markers = []
        for f in score.feedback:
            number = ""
            if f.location_lps is not None:
                markers.append(Marker(f.location_lps, f.criterion, f.severity))
                number = f"{len(markers)}. "
            item = QListWidgetItem(f"{number}{f.text}")
            item.setForeground(QBrush(QColor(*SEVERITY_RGB.get(f.severity, (0, 0, 0)))))
            item.setData(Qt.ItemDataRole.UserRole, f.location_lps)
            self.feedback_list.addItem(item)
        ref = self.exercise.reference
        self.feedback_list.addItem(QListWidgetItem(
            f"Reference revealed (cyan): {ref.name}. {ref.source}"))
        self.marks.clear()
        self.marks.add_path(ref.entry_lps, ref.target_lps, diameter_mm=1.5,
                            color_rgb=REFERENCE_RGB, name="reference")
        self.marks.set_markers(markers)
        self.scored.emit(score)

    def _go_to_feedback(self, item: QListWidgetItem) -> None:
        where = item.data(Qt.ItemDataRole.UserRole)
        if where is not None:
            self.window.set_cursor(where)


def show_training(dock: QDockWidget) -> None:
    dock.show()
    dock.raise_()


def install_training(window: MainWindow) -> TrainingPanel:
    """The Training dock (hidden until used) and the Training menu."""
    panel = TrainingPanel(window)
    panel.setMinimumWidth(340)
    dock = add_dock(window, "Training", panel, name="dock_training",
                    area=Qt.DockWidgetArea.RightDockWidgetArea)
    neighbour = next((d for d in window.findChildren(QDockWidget) if d is not dock
                      and window.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea),
                     None)
    if neighbour is not None:  # a tab beside the right-hand dock: the full height for feedback
        window.tabifyDockWidget(neighbour, dock)
    dock.hide()
    menu = window.menuBar().addMenu("&Training")
    start = menu.addAction("Start an exercise…")
    start.setObjectName("action_training")
    start.triggered.connect(lambda _=False: show_training(dock))
    window.training_panel = panel
    window.training_dock = dock
    return panel
