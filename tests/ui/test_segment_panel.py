"""The Segment panel in the main window: brush + undo/redo, region growing, threshold presets,
scissors, islands/morphology, assisted presets, AI entry, import/export, and re-meshing of
only the edited structure."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence, QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import MARKER_HU, MARKER_LPS, TUMOUR_LPS
from tests.ui.test_main_window import pixel, send_drag, show


def wait_idle(qtbot, window, timeout: int = 20_000) -> None:
    qtbot.waitUntil(window.runner.is_idle, timeout=timeout)
    qtbot.wait(10)


def click(view, pos: QPointF, *, double: bool = False) -> None:
    kinds = [QMouseEvent.Type.MouseButtonPress, QMouseEvent.Type.MouseButtonRelease]
    if double:
        kinds += [QMouseEvent.Type.MouseButtonDblClick, QMouseEvent.Type.MouseButtonRelease]
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind in kinds:
        held = none if kind == QMouseEvent.Type.MouseButtonRelease else left
        QApplication.sendEvent(view, QMouseEvent(kind, pos, view.mapToGlobal(pos), left, held,
                                                 Qt.KeyboardModifier.NoModifier))


@pytest.fixture
def seg_window(qtbot, window, twin):
    show(qtbot, window, twin)
    window.set_cursor(TUMOUR_LPS)
    qtbot.wait(20)
    return window


def test_paint_stroke_is_one_undo_step_and_shows_at_once(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    assert panel.add_structure("lesion") == "lesion"
    panel.radius_spin.setValue(3.0)
    panel.set_tool("paint")
    axial = win.slice_views["axial"]
    start = TUMOUR_LPS + [20.0, 0.0, 0.0]
    end = TUMOUR_LPS + [20.0, 15.0, 0.0]
    send_drag(axial, Qt.MouseButton.LeftButton, axial.lps_to_screen(start),
              axial.lps_to_screen(end), steps=6)
    qtbot.wait(30)
    painted = twin.voxel_count("lesion")
    assert painted == twin.segmentation.voxel_count("lesion") > 20
    zs = np.unique(np.nonzero(twin.segmentation.mask("lesion"))[0])
    assert len(zs) == 1, "a 2D disc brush paints one slice"
    mid = axial.lps_to_screen(start + [0.0, 7.5, 0.0])
    rgb = pixel(axial, mid)
    colour = twin.segmentation.get("lesion").color  # "lesion" is a target: its role colour
    strongest, weakest = int(np.argmax(colour)), int(np.argmin(colour))
    assert rgb[strongest] > rgb[weakest] + 30, \
        "the overlay shows the stroke in the structure colour at once"
    undo, redo = panel.undo_actions
    assert QKeySequence("Ctrl+Z") in undo.shortcuts()
    assert {QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")} <= set(redo.shortcuts())
    assert "paint" in undo.text()
    undo.trigger()
    assert twin.voxel_count("lesion") == twin.segmentation.voxel_count("lesion") == 0
    redo.trigger()
    assert twin.voxel_count("lesion") == twin.segmentation.voxel_count("lesion") == painted
    win.set_slice_tool(None)
    assert win.dirty


def test_sphere_brush_and_erase(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.select_structure("tumour")
    before = twin.voxel_count("tumour")
    panel.sphere_box.setChecked(True)
    panel.radius_spin.setValue(4.0)
    panel.set_tool("erase")
    axial = win.slice_views["axial"]
    p = axial.lps_to_screen(TUMOUR_LPS)
    send_drag(axial, Qt.MouseButton.LeftButton, p, p, steps=1)
    removed = before - twin.voxel_count("tumour")
    ball_voxels = 4 / 3 * np.pi * 4.0**3 / twin.geometry.voxel_volume_mm3
    assert removed == pytest.approx(ball_voxels, rel=0.35)
    assert len(np.unique(np.nonzero(~twin.segmentation.mask("tumour")
                                    & (np.linalg.norm(_lps(twin) - TUMOUR_LPS, axis=-1)
                                       <= 8.0))[0])) > 1, "a sphere spans several slices"
    panel.set_tool(None)


def _lps(twin) -> np.ndarray:
    k, j, i = np.indices(twin.geometry.shape_zyx)
    return twin.geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))


def test_region_grow_preview_and_apply_from_a_seed_in_the_marker(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.add_structure("marker")
    win.set_cursor(MARKER_LPS)
    panel.set_tool("grow")
    axial = win.slice_views["axial"]
    click(axial, axial.lps_to_screen(MARKER_LPS))
    qtbot.waitUntil(lambda: panel.seed_tool.preview_mask is not None, timeout=10_000)
    marker = twin.image.array == MARKER_HU
    assert np.array_equal(panel.seed_tool.preview_mask, marker)
    assert "ml" in panel.grow_label.text()
    assert panel.apply_grow()
    wait_idle(qtbot, win)
    assert np.array_equal(twin.segmentation.mask("marker"), marker)
    assert twin.volume_ml("marker") == pytest.approx(4 / 3 * np.pi * 0.006**3 * 1e6, rel=0.15)
    assert panel.seed_tool.seeds == [] and panel.seed_tool.preview_mask is None
    panel.undo()
    assert twin.voxel_count("marker") == 0
    panel.set_tool(None)


def test_threshold_preset_and_restriction_to_a_structure(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.add_structure("bone")
    panel.threshold_preset.setCurrentIndex(panel.threshold_preset.findData("ct-bone"))
    assert panel.lower_spin.value() == 250.0
    assert panel.apply_threshold()
    wait_idle(qtbot, win)
    assert np.array_equal(twin.segmentation.mask("bone"), twin.image.array >= 250)
    panel.threshold_preset.setCurrentIndex(0)  # custom range, within the tumour
    panel.lower_spin.setValue(-100.0)
    panel.upper_spin.setValue(100.0)
    panel.within_combo.setCurrentIndex(panel.within_combo.findData("tumour"))
    tumour = twin.segmentation.mask("tumour").copy()
    panel.apply_threshold()
    wait_idle(qtbot, win)
    assert np.array_equal(twin.segmentation.mask("bone"), tumour)
    assert np.array_equal(twin.segmentation.mask("tumour"), tumour), "overlap: tumour kept"
    assert twin.structure("bone").layer != twin.structure("tumour").layer
    panel.undo()
    assert np.array_equal(twin.segmentation.mask("bone"), twin.image.array >= 250)


def test_threshold_within_a_box_drawn_in_two_views(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.add_structure("slab")
    panel.set_tool("box")
    axial, coronal = win.slice_views["axial"], win.slice_views["coronal"]
    a, b = np.array([-10.0, -10.0, 0.0]), np.array([10.0, 10.0, 0.0])
    send_drag(axial, Qt.MouseButton.LeftButton, axial.lps_to_screen(a), axial.lps_to_screen(b))
    c, d = np.array([-10.0, 0.0, -5.0]), np.array([10.0, 0.0, 5.0])
    send_drag(coronal, Qt.MouseButton.LeftButton, coronal.lps_to_screen(c),
              coronal.lps_to_screen(d))
    assert panel.within_combo.currentData() == "box"
    panel.set_tool(None)
    panel.threshold_preset.setCurrentIndex(0)
    panel.lower_spin.setValue(0.0)
    panel.upper_spin.setValue(100.0)
    panel.apply_threshold()
    wait_idle(qtbot, win)
    pts = _lps(twin)[twin.segmentation.mask("slab")]
    assert len(pts) > 100
    assert np.all(np.abs(pts[:, :2]) <= 11.0) and np.all(np.abs(pts[:, 2]) <= 6.3)


def test_scissors_cut_through_the_volume_and_undo(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.select_structure("body")
    before = twin.segmentation.mask("body").copy()
    panel.set_tool("scissors")
    axial = win.slice_views["axial"]
    corners = [(-5, -5), (15, -5), (15, 15), (-5, 15)]
    for n, (x, y) in enumerate(corners):
        point = np.array([x, y, TUMOUR_LPS[2]], float)
        click(axial, axial.lps_to_screen(point), double=n == len(corners) - 1)
    wait_idle(qtbot, win)
    after = twin.segmentation.mask("body")
    lps = _lps(twin)
    inside = (lps[..., 0] > -4) & (lps[..., 0] < 14) & (lps[..., 1] > -4) & (lps[..., 1] < 14)
    assert not np.any(after & inside), "the prism is removed on every slice"
    assert np.array_equal(after & ~inside & (np.abs(lps[..., 0]) > 16), before
                          & (np.abs(lps[..., 0]) > 16)), "outside stays"
    assert win.view_grid.layout_name == "four-up", "the double-click did not maximise"
    panel.undo()
    assert np.array_equal(twin.segmentation.mask("body"), before)
    panel.set_tool(None)


def test_islands_margins_and_logical_ops(qtbot, seg_window):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.select_structure("tumour")
    tumour = twin.segmentation.mask("tumour").copy()
    panel.margin_spin.setValue(2.0)
    panel.run_op("grow")
    wait_idle(qtbot, win)
    assert twin.voxel_count("tumour") > tumour.sum() and np.all(
        twin.segmentation.mask("tumour")[tumour])
    panel.undo()
    panel.add_structure("blob")
    panel.other_combo.setCurrentText("tumour")
    panel.logic_op.setCurrentText("union")
    panel.run_op("logical")
    wait_idle(qtbot, win)
    assert np.array_equal(twin.segmentation.mask("blob"), tumour)
    panel.set_tool("paint")  # a separate small island far away
    panel.radius_spin.setValue(2.0)
    axial = win.slice_views["axial"]
    far = TUMOUR_LPS + [25.0, -25.0, 0.0]
    send_drag(axial, Qt.MouseButton.LeftButton, axial.lps_to_screen(far),
              axial.lps_to_screen(far), steps=1)
    assert twin.voxel_count("blob") > tumour.sum()
    panel.run_op("keep largest island")
    wait_idle(qtbot, win)
    assert np.array_equal(twin.segmentation.mask("blob"), tumour)
    panel.undo()
    panel.set_tool("island")
    click(axial, axial.lps_to_screen(far))
    wait_idle(qtbot, win)
    assert 0 < twin.voxel_count("blob") < 50
    panel.set_tool(None)


def test_assisted_preset_adds_starting_points_with_a_note(qtbot, seg_window):
    from surgiplan.segmentation.presets import PRESETS
    from surgiplan.segmentation.threshold import THRESHOLD_PRESETS
    from surgiplan.ui.segment.segment_panel import PRESET_TITLES, THRESHOLD_NAMES

    assert {n: p.title for n, p in PRESETS.items()} == PRESET_TITLES
    assert set(THRESHOLD_NAMES) == set(THRESHOLD_PRESETS)
    win, panel = seg_window, seg_window.segment_panel
    note = panel.findChild(type(panel.message), "preset_note")
    assert "STARTING POINTS" in note.text() and note.isVisible()
    panel.run_preset("ct-bone-skin-vessels")
    wait_idle(qtbot, win)
    names = win.twin.segmentation.names()
    assert {"skin", "bone", "vessels"} <= set(names)
    assert win.twin.segmentation.mask("bone")[win.twin.image.array == MARKER_HU].all()
    assert "STARTING POINTS" in panel.message.text()
    panel.undo()  # the whole preset is one step
    assert win.twin.segmentation.names() == ["tumour", "body"]


def test_ai_entry_is_disabled_with_the_reason(qtbot, seg_window, monkeypatch, tmp_path):
    from surgiplan.ai.totalsegmentator import availability

    monkeypatch.setenv("SURGIPLAN_TOTALSEG_BIN", str(tmp_path / "missing" / "TotalSegmentator"))
    panel = seg_window.segment_panel
    assert panel.refresh_ai_availability() is False
    reason = availability().reason
    assert "not installed" in reason
    for widget in (panel.ai_action, panel.ai_button):
        assert not widget.isEnabled()
        assert widget.toolTip() == reason and widget.statusTip() == reason
    assert "TotalSegmentator" in panel.ai_action.text()


def test_export_then_import_seg_nrrd_round_trip(qtbot, seg_window, tmp_path):
    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    out = tmp_path / "s.seg.nrrd"
    panel.export_segmentation("seg.nrrd", out)
    wait_idle(qtbot, win)
    assert out.is_file()
    panel.import_segmentation(out)
    wait_idle(qtbot, win)
    assert twin.segmentation.names() == ["tumour", "body", "tumour 2", "body 2"]
    for name in ("tumour", "body"):
        assert np.array_equal(twin.segmentation.mask(name), twin.segmentation.mask(f"{name} 2"))
        assert twin.structure(f"{name} 2").color == pytest.approx(twin.structure(name).color,
                                                                  abs=1e-3)
    assert win.structures_panel.table.rowCount() == 4


def test_only_the_edited_structure_is_re_meshed_once_per_stroke(qtbot, seg_window,
                                                                monkeypatch):
    import surgiplan.processing.surfaces as surfaces

    win, panel = seg_window, seg_window.segment_panel
    meshed: list[list[str]] = []
    real = surfaces.structure_surfaces

    def counting(segmentation, *, names=None, **kw):
        meshed.append(list(names or segmentation.names()))
        return real(segmentation, names=names, **kw)

    monkeypatch.setattr(surfaces, "structure_surfaces", counting)
    panel.select_structure("tumour")
    panel.radius_spin.setValue(3.0)
    panel.set_tool("erase")  # only the tumour's voxels change (painting over the body would
    axial = win.slice_views["axial"]  # take voxels from it, and then both are re-meshed)
    a = axial.lps_to_screen(TUMOUR_LPS + [-4.0, 0.0, 0.0])
    b = axial.lps_to_screen(TUMOUR_LPS + [4.0, 3.0, 0.0])
    send_drag(axial, Qt.MouseButton.LeftButton, a, b, steps=8)
    qtbot.waitUntil(lambda: bool(meshed), timeout=5000)
    wait_idle(qtbot, win)
    assert meshed == [["tumour"]], "one re-meshing of the edited structure only"
    assert "tumour" in win.view3d.surface_names() and "body" in win.view3d.surface_names()
    panel.set_tool(None)


def test_running_a_preset_again_updates_its_own_structures_and_keeps_edited_ones(
        qtbot, seg_window):
    """A second run gives one 'skin', not 'skin 2'; a structure the user edited is kept."""
    from surgiplan.model.provenance import EDITED, UNREVIEWED

    win, panel = seg_window, seg_window.segment_panel
    twin = win.twin
    panel.run_preset("ct-bone-skin-vessels")
    wait_idle(qtbot, win)
    first = twin.segmentation.names()
    assert {"skin", "bone", "vessels"} <= set(first)
    panel.editor.paint("bone", MARKER_LPS, 6.0, erase=True)
    edited_bone = twin.segmentation.mask("bone").copy()
    assert twin.provenance.automatic["bone"].quality == EDITED
    assert twin.segmentation.mask("bone").sum() < twin.segmentation.mask("skin").sum()
    panel.run_preset("ct-bone-skin-vessels")
    wait_idle(qtbot, win)
    assert twin.segmentation.names() == first, "no numbered duplicates"
    assert np.array_equal(twin.segmentation.mask("bone"), edited_bone), "the user's edit stays"
    assert twin.provenance.automatic["skin"].quality == UNREVIEWED
    assert "kept yours" in panel.message.text() and "bone" in panel.message.text()
    assert "updated" in panel.message.text()
