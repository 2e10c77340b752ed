"""OR review mode: read-only, large high-contrast text, keyboard step-through with key views
and numbers, approval status, and ``surgiplan gui CASE --review``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QLineEdit, QPlainTextEdit

from surgiplan.io.bundle import save_bundle
from surgiplan.plans import PlanSet, store_in_twin
from surgiplan.ui.modes.review_mode import BANNER, ReviewWindow, choose_plan
from tests.ui.conftest import TUMOUR_LPS
from tests.ui.plans_fixtures import ENTRIES_LPS, twin_with_plans


@pytest.fixture(scope="module")
def case():
    return twin_with_plans()


@pytest.fixture
def review(qtbot, case):
    twin, plans = case
    win = ReviewWindow(twin, plans, plan="Lateral")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(win.runner.is_idle, timeout=20_000)
    return win


def test_read_only_visibly_with_large_high_contrast_text(review):
    assert review.banner.text() == BANNER and review.banner.isVisible()
    buttons = review.findChildren(QAbstractButton)
    editing = [b for b in buttons if b in review.disabled_buttons]
    assert {b.text() for b in editing} >= {"Save", "Edit plan", "Approve"}
    assert not any(b.isEnabled() for b in editing)
    assert not review.findChildren(QLineEdit) and not review.findChildren(QPlainTextEdit)
    assert all(v.tool is None for v in review.slice_views.values())  # no editing tool
    step_font = review.step_label.font()
    assert step_font.pixelSize() >= 24 or step_font.pointSizeF() >= 18
    assert review.numbers_label.font().pixelSize() >= 20
    image = review.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert image.pixelColor(image.width() - 5, image.height() // 2).value() < 30  # black


def test_keyboard_steps_through_the_plan(review, qtbot, case):
    twin, _plans = case
    extras_before = dict(twin.bundle_extras)
    assert review.step == 0 and "Overview" in review.step_label.text()
    QTest.keyClick(review, Qt.Key.Key_Right)
    assert review.step == 1 and "Needle (trajectory)" in review.step_label.text()
    assert "BREACH" in review.numbers_label.text() and "vessel" in review.numbers_label.text()
    assert "95 %" in review.numbers_label.text()
    for view in review.slice_views.values():  # the key views are centred on the target
        assert np.allclose(view.cursor_lps, TUMOUR_LPS)
    assert np.allclose(review.path.entry_lps, ENTRIES_LPS["Lateral"])
    camera = review.view3d.plotter.renderer.GetActiveCamera()
    along = np.subtract(TUMOUR_LPS, ENTRIES_LPS["Lateral"])
    assert np.allclose(camera.GetDirectionOfProjection(), along / np.linalg.norm(along),
                       atol=1e-6)  # the 3D view looks along the path
    QTest.keyClick(review, Qt.Key.Key_PageDown)
    QTest.keyClick(review, Qt.Key.Key_Space)
    assert review.step == 1  # the last step
    QTest.keyClick(review, Qt.Key.Key_PageUp)
    assert review.step == 0
    QTest.keyClick(review, Qt.Key.Key_Tab)
    assert review.plan.name == "Anterior" and "Anterior" in review.approval_label.text()
    assert twin.bundle_extras == extras_before  # nothing written
    QTest.keyClick(review, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not review.isVisible())


def test_approval_status_is_shown(qtbot, case):
    twin, plans = case
    plan_set = PlanSet(plans)
    plan_set.set_status("Posterior", "approved", by="Dr Okafor")
    win = ReviewWindow(twin, plan_set.plans)
    qtbot.addWidget(win)
    assert win.plan.name == "Posterior"  # the approved plan by default
    assert "APPROVED</b> by Dr Okafor" in win.approval_label.text()
    win.next_plan()
    assert "NOT APPROVED" in win.approval_label.text()
    win.close()


def test_choose_plan_refuses_unknown_names(case):
    _twin, plans = case
    with pytest.raises(Exception, match=r"no plan named .Nope.*Lateral"):
        choose_plan(plans, "Nope")


def test_cli_review_starts_in_review_mode(case, tmp_path):
    twin, plans = case
    store_in_twin(twin, PlanSet(plans))
    bundle = save_bundle(twin, tmp_path / "case.surgiplan")
    shot = tmp_path / "review.png"
    cmd = [sys.executable, "-m", "surgiplan", "gui", str(bundle), "--review", "--plan",
           "Posterior", "--screenshot", str(shot), "--exit"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert QImage(str(shot)).width() > 500
    bad = subprocess.run(cmd[:7] + ["Nope", "--exit"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("surgiplan: no plan named 'Nope'")
