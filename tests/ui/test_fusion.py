"""Two series in the window (issue 18, acceptance c): load a second, MR-like scan moved by a
known rigid transform, register it in the worker, fuse it in the slice views (blend,
checkerboard, flicker), and see a structure drawn on one series on the other."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.io.labelmaps import nrrd_bytes, nrrd_geometry_header
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.series_transform import SeriesTransform, rigid_matrix
from surgiplan.model.volume import ImageVolume
from surgiplan.registration.carry import add_structure_from_series, structure_on_series
from surgiplan.registration.synthetic import moved_copy
from tests.ui.conftest import MARKER_HU, MARKER_LPS, make_twin, wait_ready

TRUTH = SeriesTransform(rigid_matrix((0.0, 0.0, 6.0), (6.0, -5.0, 4.0)), kind="rigid")


def _mr_like(twin) -> ImageVolume:
    """The twin's image with T1-like contrast (body bright, marker dark), seen by a scanner
    placed by TRUTH, on a grid 10 voxels larger each way (the whole body in view)."""
    ct, g = twin.image.array, twin.geometry
    mr = np.where(ct >= MARKER_HU, 60.0, np.where(ct > -500, 600.0, 0.0)).astype(np.float32)
    grid = ImageGeometry(tuple(n + 20 for n in g.size), g.spacing_mm,
                         tuple(g.index_to_lps([-10, -10, -10])), g.direction)
    return moved_copy(ImageVolume(mr, g, modality="MR"), TRUTH, grid=grid, noise_sd=5.0)


def _pixel(view, point_lps) -> np.ndarray:
    col, row, _ = view.mapping.lps_to_pixel(point_lps)
    return view.slice_rgb()[round(row), round(col)].astype(int)


def test_two_series_registered_fused_and_a_structure_seen_on_both(qtbot, window, tmp_path):
    twin = make_twin(spacing=(2.0, 2.0, 2.5), size=(40, 44, 40))

    def load():
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, load)
    panel = window.fusion_panel
    path = tmp_path / "mr.nrrd"
    mr = _mr_like(twin)
    path.write_bytes(nrrd_bytes(mr.array, nrrd_geometry_header(mr.geometry)))
    panel.add_series_from_path(path, key="mr")
    qtbot.waitUntil(lambda: panel.current_key() == "mr", timeout=60_000)
    assert window.dirty and [s.key for s in twin.series] == ["mr"]
    axial = window.slice_views["axial"]
    axial.set_cursor(MARKER_LPS)
    assert axial.fusion is not None and axial.fusion.key == "mr"

    # registration in the worker, with progress; the transform found is the truth
    panel.register_current()
    qtbot.waitUntil(lambda: twin.series_by_key("mr").transform.kind == "rigid",
                    timeout=120_000)
    found = twin.series_by_key("mr").transform
    err = np.linalg.norm(found.from_reference(MARKER_LPS) - TRUTH.from_reference(MARKER_LPS))
    start = np.linalg.norm(MARKER_LPS - TRUTH.from_reference(MARKER_LPS))
    # a toy twin (2 mm voxels, near-round body): the engine's accuracy is tested in
    # tests/test_registration.py; here the window's registration must land near the truth
    assert start > 8.0 and err <= 2.0
    assert "Mattes mutual information" in panel.quality.text()

    # blend: at full opacity the bright CT marker shows the MR's dark marker
    axial.set_overlay_style(opacity=0.0)  # structures hidden: the images alone
    panel.opacity.setValue(0)
    ct_marker = _pixel(axial, MARKER_LPS)
    panel.opacity.setValue(100)
    fused_marker = _pixel(axial, MARKER_LPS)
    assert ct_marker.mean() > 200 and fused_marker.mean() < ct_marker.mean() - 100
    # checkerboard: both images appear, in blocks
    panel.mode_box.setCurrentText("checkerboard")
    rgb = axial.slice_rgb()
    panel.opacity.setValue(0)
    panel.mode_box.setCurrentText("blend")
    plain = axial.slice_rgb()
    assert 0 < np.count_nonzero(np.any(rgb != plain, axis=2)) < rgb.shape[0] * rgb.shape[1]
    # flicker alternates the series on and off
    panel.mode_box.setCurrentText("flicker")
    states = set()
    qtbot.waitUntil(lambda: states.add(axial.fusion.shown) or len(states) == 2, timeout=3000)
    panel.mode_box.setCurrentText("blend")

    # a structure drawn on the MR joins the twin and is drawn on the reference's views
    drawn = twin.series_by_key("mr").image.array < 100  # the MR's dark marker (and air)
    drawn &= np.linalg.norm(
        mr.geometry.index_to_lps(np.indices(mr.geometry.shape_zyx).reshape(3, -1).T[:, ::-1])
        - TRUTH.from_reference(MARKER_LPS), axis=1).reshape(mr.geometry.shape_zyx) < 9.0
    add_structure_from_series(twin, "mr", "marker-mr", drawn, color=(1.0, 0.0, 1.0))
    window.structures_panel.set_twin(twin)
    axial.set_overlay_style(opacity=1.0)
    axial.refresh_overlays()
    assert twin.segmentation.mask("marker-mr")[
        tuple(np.rint(twin.geometry.lps_to_index(MARKER_LPS)[::-1]).astype(int))]
    coloured = _pixel(axial, MARKER_LPS)
    assert coloured[0] > coloured[1] and coloured[2] > coloured[1]  # magenta tint
    # and a structure of the reference is found on the MR where the MR shows it
    on_mr = structure_on_series(twin, "tumour", "mr")
    assert on_mr.shape == mr.geometry.shape_zyx and on_mr.any()
    assert np.count_nonzero(on_mr & drawn) == 0  # tumour and marker are apart on both


@pytest.mark.parametrize("mode", ["blend", "checkerboard"])
def test_no_series_means_no_fusion(qtbot, window, mode):
    twin = make_twin()
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    panel = window.fusion_panel
    panel.mode_box.setCurrentText(mode)
    assert panel.current_key() is None and not panel.register_button.isEnabled()
    assert all(v.fusion is None for v in window.slice_views.values())


def test_nudging_moves_the_series_and_its_overlay_at_once(qtbot, window):
    from surgiplan.twin import TwinSeries

    twin = make_twin(spacing=(2.0, 2.0, 2.5), size=(40, 44, 40))
    twin.add_series(TwinSeries("copy", ImageVolume(twin.image.array.astype(np.float32),
                                                   twin.geometry, modality="CT")))
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    panel = window.fusion_panel
    panel.series_box.setCurrentIndex(panel.series_box.findData("copy"))
    before = window.slice_views["axial"].fusion.array.copy()
    np.testing.assert_allclose(before, twin.image.array, atol=1e-3)  # identity: the same image
    panel.axis_box.setCurrentText("L")
    panel.nudge_buttons["+1 mm"].click()
    panel.nudge_buttons["+1 mm"].click()
    t = twin.series_by_key("copy").transform
    np.testing.assert_allclose(t.matrix_to_reference[:3, 3], [2.0, 0.0, 0.0], atol=1e-9)
    assert t.kind == "rigid" and t.method.startswith("manual")
    after = window.slice_views["axial"].fusion.array
    # series point y shows the reference at y, and is placed at y + 2 mm L: one voxel along i
    np.testing.assert_allclose(after[:, :, 2:-1], twin.image.array[:, :, 1:-2], atol=1e-3)
    panel.axis_box.setCurrentText("S")
    panel.nudge_buttons["+1 deg"].click()
    assert twin.series_by_key("copy").transform.rotation_deg() == pytest.approx(1.0)
    assert window.dirty


def test_the_segment_dock_is_in_front_of_fusion_and_measure_at_start(qtbot, window):
    """Fusion and Measure are tabs beside Segment; a fresh window shows Segment, not them."""
    from PySide6.QtWidgets import QDockWidget

    docks = {n: window.findChild(QDockWidget, n) for n in ("dock_segment", "dock_fusion",
                                                            "dock_measure")}
    qtbot.waitUntil(lambda: not docks["dock_segment"].visibleRegion().isEmpty(), timeout=5000)
    assert docks["dock_fusion"].visibleRegion().isEmpty()
    assert docks["dock_measure"].visibleRegion().isEmpty()


def _click(qtbot, view, point_lps) -> None:
    """A left click on ``point_lps`` in ``view`` (its slice moved through the point first)."""
    from PySide6.QtCore import Qt

    view.set_cursor(np.asarray(point_lps, dtype=float))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.lps_to_screen(point_lps).toPoint())


def test_overlay_window_landmark_pairs_and_a_follow_up_change(qtbot, window):
    """The overlay's own window; four landmark pairs clicked on the reference and on the
    fused series give the TRE of the (identity) transform, then align the series; two
    structures compared as baseline and follow-up, in the dock and in the report."""
    from surgiplan.plans.model import Plan
    from surgiplan.plans.planset import PlanSet
    from surgiplan.registration.longitudinal import structure_change
    from surgiplan.twin import TwinSeries
    from surgiplan.ui.report.content import build_content
    from surgiplan.ui.report.pdf import report_html
    from surgiplan.ui.views.fusion_landmarks import LandmarkTool

    twin = make_twin(spacing=(2.0, 2.0, 2.5), size=(40, 44, 40))
    shift = np.array([4.0, -6.0, 5.0])  # whole voxels: clicked points stay on voxel centres
    truth = SeriesTransform(rigid_matrix((0.0, 0.0, 0.0), tuple(shift)), kind="rigid")
    twin.add_series(TwinSeries("moved", moved_copy(
        ImageVolume(twin.image.array.astype(np.float32), twin.geometry, modality="CT"),
        truth)))
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    panel = window.fusion_panel
    panel.series_box.setCurrentIndex(panel.series_box.findData("moved"))
    axial = window.slice_views["axial"]

    # the overlay's own window: the reference's stays, the fused marker pixel follows it
    reference_window = axial.window
    assert axial.fusion.window == pytest.approx((panel.window_centre.value(),
                                                 panel.window_width.value()), abs=0.05)
    axial.set_overlay_style(opacity=0.0)
    panel.opacity.setValue(100)
    marker_on_series = truth.from_reference(MARKER_LPS)  # identity transform: shown there
    axial.set_cursor(marker_on_series)
    panel.set_overlay_window(0.0, 100.0)  # marker (1500 HU) far above: white
    white = _pixel(axial, marker_on_series)
    panel.set_overlay_window(3000.0, 100.0)  # marker far below: black
    black = _pixel(axial, marker_on_series)
    assert axial.fusion.window == (3000.0, 100.0) and axial.window == reference_window
    assert white.min() > 240 and black.max() < 15

    # landmark pairs: a reference point, then the same anatomy where the overlay shows it
    g = twin.geometry
    reference = [g.index_to_lps(np.array(ijk, dtype=float))
                 for ijk in ([20, 22, 20], [12, 30, 18], [28, 14, 24], [20, 28, 12])]
    panel.landmarks.pick_button.click()
    assert isinstance(axial.tool, LandmarkTool)
    for point in reference:
        _click(qtbot, axial, point)
        _click(qtbot, axial, point - shift)  # identity transform: the anatomy shows there
    marks = twin.series_by_key("moved").transform.quality
    assert marks["landmark_pairs"] == 4
    assert marks["tre_mean_mm"] == pytest.approx(np.linalg.norm(shift), abs=0.5)
    assert "4 pair(s)" in panel.landmarks.readout.text()
    panel.landmarks.align_button.click()
    aligned = twin.series_by_key("moved").transform
    # clicks land on whole screen pixels: a few tenths of a mm off at this zoom
    np.testing.assert_allclose(aligned.from_reference(MARKER_LPS),
                               truth.from_reference(MARKER_LPS), atol=0.5)
    assert aligned.quality["tre_max_mm"] < 0.5 and aligned.method.startswith("landmarks")
    # the overlay follows: the series' marker now lies on the reference's marker
    marker = twin.image.array >= MARKER_HU
    assert axial.fusion.array[marker].mean() > 0.8 * MARKER_HU
    panel.landmarks.pick_button.click()
    assert axial.tool is None

    # follow-up: a lesion that grew by 2 mm, compared in the worker
    lps = g.index_to_lps(np.indices(g.shape_zyx).reshape(3, -1).T[:, ::-1])
    distance = np.linalg.norm(lps - MARKER_LPS, axis=1).reshape(g.shape_zyx)
    twin.add_structure("lesion", distance <= 8.0, role="target")
    twin.add_structure("lesion-follow-up", distance <= 10.0, role="target")
    panel._series_chosen()
    long = panel.longitudinal
    long.baseline_box.setCurrentText("lesion")
    long.followup_box.setCurrentText("lesion-follow-up")
    long.compare_button.click()
    qtbot.waitUntil(lambda: "lesion -> lesion-follow-up" in long.readout.text(), timeout=30_000)
    expected = structure_change("lesion", distance <= 8.0, distance <= 10.0, g)
    kept = twin.series_by_key("moved").transform.quality["structure_changes"][0]
    assert kept["change_ml"] == pytest.approx(expected.change_ml)
    assert 1.0 <= kept["max_growth_mm"] <= 3.5 and kept["max_shrink_mm"] == 0.0
    assert f"{expected.change_ml:+.2f} ml" in long.readout.text()
    html = report_html(build_content(twin, PlanSet([Plan(name="empty")])), [])
    assert "Follow-up: structure changes" in html and "lesion -&gt; lesion-follow-up" in html
