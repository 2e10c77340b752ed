"""3D picking and ROIs: a click on a 3D surface moves the cursor and places the active point
(plan target, measurement points, a 3D box ROI), in LPS mm; a slice ROI spans several slices;
"3 slices + 3D" gives its columns equal widths; the render budget of a software OpenGL."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.ui.conftest import make_twin, wait_ready
from tests.ui.test_main_window import send_drag

BODY_SEMI_AXES = np.array([34.0, 38.0, 45.0])  # make_twin's body ellipsoid (LPS mm)


def shown_with_surfaces(qtbot, window):
    twin = make_twin()

    def action():
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action)
    qtbot.waitUntil(lambda: set(window.view3d.surface_names()) == {"tumour", "body"},
                    timeout=30_000)
    return twin


def click_3d_centre(qtbot, window) -> QPoint:
    """Look from the patient's left and left-click the middle of the 3D render area."""
    view3d = window.view3d
    view3d.set_standard_view("left")
    view3d.plotter.render()
    widget = view3d.plotter.interactor
    centre = QPoint(widget.width() // 2, widget.height() // 2)
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=centre)
    return centre


def test_click_on_a_3d_surface_moves_the_cursor_and_places_the_plan_target(qtbot, window):
    from surgiplan.ui.plan.trajectory_tools import PlacementTool, TrajectoryPlan

    shown_with_surfaces(qtbot, window)
    plan = TrajectoryPlan()
    window.set_slice_tool(PlacementTool(plan, "target"))
    picked: list[np.ndarray] = []
    window.view3d.point_picked.connect(picked.append)
    click_3d_centre(qtbot, window)
    assert len(picked) == 1
    point = picked[0]
    # seen from the left (+L), the ray through the middle meets the body's left side first
    assert point[0] == pytest.approx(BODY_SEMI_AXES[0], abs=3.0), point
    assert abs(point[1]) < 8.0 and abs(point[2]) < 8.0, point
    np.testing.assert_allclose(window.view3d._cursor_lps, point)
    axial = window.slice_views["axial"]
    assert abs(axial.mapping.pixel_to_lps(0, 0, axial.slice_index)[2] - point[2]) <= 1.25 + 1e-6
    np.testing.assert_allclose(plan.target_lps, point)
    window.set_slice_tool(None)


def test_a_drag_in_3d_rotates_and_picks_nothing(qtbot, window):
    shown_with_surfaces(qtbot, window)
    picked: list[np.ndarray] = []
    window.view3d.point_picked.connect(picked.append)
    widget = window.view3d.plotter.interactor
    a = QPointF(widget.width() / 2, widget.height() / 2)
    send_drag(widget, Qt.MouseButton.LeftButton, a, a + QPointF(40, 0))
    assert picked == []
    assert window.view3d.pick_at(2, 2) is None  # a corner: background, no surface


def test_measure_points_and_a_3d_box_roi_placed_by_clicks_in_3d(qtbot, window):
    twin = shown_with_surfaces(qtbot, window)
    panel = window.measurements_panel
    panel.tool_buttons["ruler"].setChecked(True)
    a, b = np.array([30.0, 0.0, 0.0]), np.array([-30.0, 0.0, 0.0])
    window.place_from_3d(a)
    assert panel.items == []  # one of two points
    window.place_from_3d(b)
    assert [m.kind for m in panel.items] == ["ruler"]
    assert panel.items[0].readings[0].value == pytest.approx(60.0)
    panel.tool_buttons["roi"].setChecked(True)
    window.place_from_3d(np.array([-10.0, -10.0, -10.0]))
    window.place_from_3d(np.array([10.0, 10.0, -10.0]))  # same z: grown to one voxel
    roi = panel.items[-1]
    lo, hi = roi.points_lps.min(axis=0), roi.points_lps.max(axis=0)
    assert hi[2] - lo[2] == pytest.approx(2.5)  # the z spacing of make_twin
    readings = {r.key: r for r in roi.readings}
    assert readings["mean"].value == pytest.approx(40.0)  # inside the 40 HU body
    # centres x = +-0.5..+-9.5 (20), y = +-0.625..+-9.375 (16); z = -10 +- 1.25 lies on the
    # centres -11.25 and -8.75 (boundaries count as inside): 2 slices
    assert readings["voxels"].value == 20 * 16 * 2
    assert readings["volume_ml"].interval[0] <= readings["volume_ml"].value <= \
        readings["volume_ml"].interval[1]
    panel.tool_buttons["roi"].setChecked(False)
    assert twin.bundle_extras  # stored with the case


def test_roi_drawn_in_a_slice_spans_the_chosen_number_of_slices(qtbot, window):
    shown_with_surfaces(qtbot, window)
    panel = window.measurements_panel
    panel.depth_box.setValue(5)
    panel.tool_buttons["roi"].setChecked(True)
    axial = window.slice_views["axial"]
    z = axial.mapping.pixel_to_lps(0, 0, axial.slice_index)[2]
    c = axial.lps_to_screen(np.array([0.0, 0.0, z]))
    send_drag(axial, Qt.MouseButton.LeftButton, c - QPointF(12, 12), c + QPointF(12, 12))
    roi = panel.items[-1]
    depth = np.ptp(roi.points_lps[:, 2])
    assert depth == pytest.approx(5 * 2.5)
    slices = {r.key: r for r in roi.readings}["voxels"].value / _in_plane_voxels(roi)
    assert slices == pytest.approx(5.0)
    panel.tool_buttons["roi"].setChecked(False)


def _in_plane_voxels(roi) -> int:
    lo, hi = roi.points_lps.min(axis=0), roi.points_lps.max(axis=0)
    # make_twin: x spacing 1.0 and y spacing 1.25 mm, voxel centres at half-integers of them
    nx = np.floor(hi[0] / 1.0 - 0.5) - np.ceil(lo[0] / 1.0 - 0.5) + 1
    ny = np.floor(hi[1] / 1.25 - 0.5) - np.ceil(lo[1] / 1.25 - 0.5) + 1
    return int(nx * ny)


def test_three_slices_and_3d_columns_are_equal_and_resizable(qtbot, window):
    window.resize(1280, 800)
    window.set_layout("slices+3d")
    window.view_grid.equalize()
    qtbot.wait(30)
    axial, view3d = window.slice_views["axial"], window.view3d
    assert abs(axial.width() - view3d.width()) <= 0.1 * view3d.width()
    heights = [window.slice_views[n].height() for n in ("axial", "coronal", "sagittal")]
    assert max(heights) - min(heights) <= 2
    columns = window.view_grid.columns
    columns.moveSplitter(int(sum(columns.sizes()) * 0.3), 1)
    assert axial.width() < 0.7 * view3d.width()
    window.set_layout("four-up")


def test_software_opengl_gets_a_render_budget():
    from surgiplan.ui.data.case_io import SOFTWARE_RENDER_TRIANGLES, scene_3d

    twin = make_twin(size=(144, 128, 80), spacing=(0.5, 0.625, 1.25))
    full = scene_3d(twin, with_volume=False)
    capped = scene_3d(twin, with_volume=False, render_triangles=4_000 * 2)
    assert full.surfaces["body"].n_cells > 8_000
    assert capped.surfaces["body"].n_cells <= 1.1 * 4_000
    assert capped.surfaces["body"].n_cells >= 0.5 * 4_000  # reduced, not emptied
    # the reduced skin still encloses the body: its bounds within a cell of the full one's
    np.testing.assert_allclose(capped.surfaces["body"].bounds, full.surfaces["body"].bounds,
                               atol=4.0)
    assert SOFTWARE_RENDER_TRIANGLES <= 150_000
