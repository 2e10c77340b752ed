"""The side-by-side comparison: 3D views with one shared camera, the metric table (values,
intervals, differences, best, thresholds, not distinguishable), Pareto chart, why-safer line."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from surgiplan.plans.compare import NOT_DISTINGUISHABLE
from surgiplan.ui.data import case_io
from surgiplan.ui.plan.compare_window import BEST_BG, FAIL_FG, CompareWindow, cell_text
from tests.ui.plans_fixtures import twin_with_plans


@pytest.fixture(scope="module")
def case():
    twin, plans = twin_with_plans()
    return twin, plans, case_io.scene_3d(twin, with_volume=False).surfaces


@pytest.fixture
def compare(qtbot, case):
    twin, plans, surfaces = case
    win = CompareWindow(twin, plans, surfaces=surfaces)
    qtbot.addWidget(win, before_close_func=lambda w: w.close())
    win.show()
    qtbot.waitExposed(win)
    return win


def test_table_marks_best_threshold_and_not_distinguishable(compare):
    assert [compare.table.horizontalHeaderItem(c).text() for c in range(5)] == \
        ["Metric", "Threshold", "Lateral", "Anterior", "Posterior"]
    assert compare.table.item(0, 0).text().startswith("Smallest clearance")
    assert compare.table.item(0, 1).text().startswith(">= 0 mm")
    best = compare.table_cell("clearance_mm", "Anterior")
    assert best.background().color() == BEST_BG and best.font().bold()
    assert "★ best" in best.text() and "95 %:" in best.text()
    lateral = compare.table_cell("clearance_mm", "Lateral")
    assert lateral.foreground().color() == FAIL_FG  # inside the vessel: fails >= 0 mm
    assert "Δ -" in lateral.text() and NOT_DISTINGUISHABLE not in lateral.text()
    posterior = compare.table_cell("clearance_mm", "Posterior")
    assert NOT_DISTINGUISHABLE in posterior.text()
    distance = compare.table_cell("min_distance_mm@vessel", "Lateral")
    assert distance.foreground().color() == FAIL_FG
    assert "the structure's safety margin" in compare.sources_label.text()


def test_why_line_names_the_structure_and_distances(compare):
    text = compare.why_label.text()
    assert "Safest: Anterior" in text
    assert "Lateral enters vessel" in text and "mm" in text


def test_pareto_chart_plots_every_plan_against_the_objective(compare):
    assert compare.objective_combo.count() >= 2
    assert compare.objective_combo.currentData() == "path_length_mm"
    ax = compare.figure.axes[0]
    assert len(ax.collections) == 3  # one marker per plan
    assert {t.get_text() for t in ax.texts} == {"Lateral", "Anterior", "Posterior"}
    # another objective (the entry angle is not assessable for Posterior on this small twin,
    # so it is not offered: only rows with a value for every plan are)
    combo = compare.objective_combo
    assert combo.findData("entry_angle_deg") == -1
    other = next(i for i in range(combo.count()) if combo.itemData(i) != "path_length_mm")
    combo.setCurrentIndex(other)
    assert compare.figure.axes[0].get_xlabel()


def test_cameras_are_synchronised(compare, qtbot):
    cameras = compare.cameras()
    assert all(c is cameras[0] for c in cameras)
    other = compare.views[2]
    before_image = other.grab_image()
    before = np.array(cameras[0].GetPosition())
    widget = compare.views[0].plotter.interactor
    centre = QPoint(widget.width() // 2, widget.height() // 2)
    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
    for dx in range(10, 120, 10):
        QTest.mouseMove(widget, centre + QPoint(dx, 0))
        qtbot.wait(10)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       centre + QPoint(120, 0))
    qtbot.wait(100)
    assert np.linalg.norm(np.array(cameras[0].GetPosition()) - before) > 1.0
    assert other.grab_image() != before_image  # the other view follows the rotation
    compare.set_standard_view("left")
    direction = other.plotter.renderer.GetActiveCamera().GetDirectionOfProjection()
    assert np.allclose(direction, [-1, 0, 0], atol=1e-6)


def test_views_show_anatomy_and_each_plan(compare):
    for view in compare.views:
        assert "vessel" in view.surface_names()
        names = view.plotter.renderer.GetActors()
        assert names.GetNumberOfItems() >= 3 + len(view.surface_names())


def test_cell_text_formats_a_missing_value():
    from surgiplan.plans.compare import Cell

    assert cell_text(Cell("A", None), "mm") == "—"
    assert cell_text(Cell("A", float("nan")), "mm") == "not assessable"


def test_opened_from_the_plans_panel(window, qtbot, case):
    twin, _plans, _surfaces = case
    window.set_twin(twin)
    panel = window.plans_panel
    panel.select("Lateral", "Posterior")
    compare = panel.compare_selected()
    assert [p.name for p in compare.plans] == ["Lateral", "Posterior"]
    qtbot.waitUntil(lambda: "vessel" in compare.views[1].surface_names(), timeout=20_000)
    compare.close()


def _display_box(renderer, box) -> np.ndarray:
    """(min xy, max xy) in display pixels of the 8 corners of a (2, 3) LPS box."""
    corners = [(x, y, z) for x in box[:, 0] for y in box[:, 1] for z in box[:, 2]]
    xy = []
    for corner in corners:
        renderer.SetWorldPoint(*corner, 1.0)
        renderer.WorldToDisplay()
        xy.append(renderer.GetDisplayPoint()[:2])
    return np.array([np.min(xy, axis=0), np.max(xy, axis=0)])


def test_camera_frames_the_plans_from_the_side(compare):
    """The plans' own objects (not the whole scan) fill a good share of each view, seen from
    a side perpendicular to their axes (not end-on)."""
    from surgiplan.ui.plan.compare_window import actor_bounds_lps
    from surgiplan.ui.plan.plan_graphics import axis_lps

    compare.set_standard_view("superior")  # start end-on on the whole scan
    compare.focus_on_plans()
    boxes = [actor_bounds_lps(v.plotter.renderer, "plan:") for v in compare.views]
    box = np.array([np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)])
    for view in compare.views:
        renderer = view.plotter.renderer
        lo, hi = _display_box(renderer, box)
        width, height = renderer.GetSize()
        assert lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height, (lo, hi)
        share = max((hi[0] - lo[0]) / width, (hi[1] - lo[1]) / height)
        # the plans' ~40 mm box in ~45 mm padding: far more than the whole scan would give
        assert share > 0.2, share
    direction = np.array(compare.cameras()[0].GetDirectionOfProjection())
    for plan in compare.plans:
        entry, target = axis_lps(plan.interventions[0])
        unit = (target - entry) / np.linalg.norm(target - entry)
        assert abs(float(unit @ direction)) < 0.8  # seen from the side
    assert abs(direction[2]) < 0.7  # never from the scan's cut ends
