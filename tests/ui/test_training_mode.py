"""Training mode end to end on the head phantom: open the exercise, place entry and target with
the mouse in a slice view, submit, get the score and the located feedback, see the reference."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from surgiplan.training.exercise import find_exercise
from tests.ui.test_main_window import send_drag


@pytest.fixture(scope="module")
def head_bundle():
    from surgiplan.training.cases import phantom_bundle

    return phantom_bundle("head")


def click_at(window, point_lps, which: str) -> None:
    """The resident's click: Planning dock's Entry/Target tool, then a click in the axial view
    on the slice through ``point_lps``."""
    window.planning_panel.start_placing(which)
    window.set_cursor(np.asarray(point_lps, float))
    view = window.slice_views["axial"]
    at = view.lps_to_screen(np.asarray(point_lps, float))
    send_drag(view, Qt.MouseButton.LeftButton, at, at + QPointF(0.0, 0.0), steps=1)


def test_head_exercise_end_to_end(qtbot, window, head_bundle):
    path, exercise = find_exercise("head-seeg-tumour")
    panel = window.training_panel
    assert window.export_report_action is not None  # File > Export report... is installed
    assert panel.exercise_combo.count() == 3
    with qtbot.waitSignal(window.ready, timeout=90_000):
        panel.start(path, case=head_bundle)
    qtbot.waitUntil(lambda: panel.submit_button.isEnabled(), timeout=10_000)
    assert exercise.title in panel.task_label.text()
    assert panel.marks.paths == []  # the reference is hidden while the resident plans
    assert len(panel.marks.markers) == 1  # the target to plan to is marked
    ref = exercise.reference
    click_at(window, ref.target_lps, "target")
    click_at(window, ref.entry_lps, "entry")
    placement = panel.placement()
    assert np.linalg.norm(np.subtract(placement.target_lps, ref.target_lps)) < 1.5
    with qtbot.waitSignal(panel.scored, timeout=60_000) as scored:
        panel.submit()
    score = scored.args[0]
    assert score.passed and score.score > 80
    assert "Score" in panel.score_label.text()
    assert panel.feedback_list.count() == len(score.feedback) + 1
    assert "Reference revealed" in panel.feedback_list.item(panel.feedback_list.count() - 1
                                                            ).text()
    located = [f for f in score.feedback if f.location_lps is not None]
    assert len(panel.marks.markers) == len(located) >= 3
    assert len(panel.marks.paths) == 1  # the reference, revealed
    panel.feedback_list.itemClicked.emit(panel.feedback_list.item(0))
    cursor = window.slice_views["axial"].cursor_lps
    assert np.allclose(cursor, located[0].location_lps)
