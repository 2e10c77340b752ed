"""The flat resection cut is drawn bounded to the organ (issue 15, item 7): its line on every
slice and the 3D plane handle stop at the organ's box, as the scored cut does, instead of
crossing the whole scan (a liver cut drawn through the kidney)."""

from __future__ import annotations

import numpy as np

from surgiplan.model.structures import Role
from surgiplan.ui.rehearse.rehearsal_tools import clip_line_to_box
from tests.ui.conftest import TUMOUR_LPS, make_twin
from tests.ui.test_rehearsal_panels import open_panel

ORGAN_RADIUS_MM = 18.0


def test_clip_line_to_box():
    box = np.array([[0.0, 0.0, 0.0], [10.0, 20.0, 30.0]])
    t0, t1 = clip_line_to_box(np.array([-5.0, 5.0, 5.0]), np.array([1.0, 0.0, 0.0]), box)
    assert (t0, t1) == (5.0, 15.0)
    diagonal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    t0, t1 = clip_line_to_box(np.array([0.0, 0.0, 1.0]), diagonal, box)
    assert np.isclose(t0, 0.0) and np.isclose(t1, 10.0 * np.sqrt(2.0))
    assert clip_line_to_box(np.array([0.0, 25.0, 5.0]), np.array([1.0, 0.0, 0.0]), box) is None
    assert clip_line_to_box(np.array([-1.0, 5.0, 5.0]), np.array([0.0, 0.0, 1.0]), box) is None


def test_flat_cut_line_and_handle_stay_within_the_organ(qtbot, window):
    twin = make_twin()
    k, j, i = np.indices(twin.geometry.shape_zyx)
    lps = twin.geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    twin.add_structure("organ", np.linalg.norm(lps - TUMOUR_LPS, axis=-1) <= ORGAN_RADIUS_MM,
                       role=Role.ORGAN)
    panel = open_panel(qtbot, window, twin, "resection")
    panel.organ_combo.setCurrentText("organ")
    normal = np.array([1.0, 1.0, 0.5]) / np.linalg.norm([1.0, 1.0, 0.5])  # oblique
    panel.plane.set_plane(TUMOUR_LPS + 4.0 * normal, normal)  # no full run: drawing only
    window.set_cursor(TUMOUR_LPS)
    qtbot.waitUntil(lambda: panel.scene3d.plane_widget is not None, timeout=10_000)
    box = panel.organ_box_lps()
    half_voxel = 0.5 * max(twin.geometry.spacing_mm)
    assert np.allclose(box[0], TUMOUR_LPS - ORGAN_RADIUS_MM, atol=2.5 * half_voxel)
    assert np.allclose(box[1], TUMOUR_LPS + ORGAN_RADIUS_MM, atol=2.5 * half_voxel)

    drawn = 0
    for view in window.slice_views.values():
        view.grab()  # paints the decoration
        segment = panel.decoration.segment_lps(view)
        if segment is None:
            continue
        drawn += 1
        a, b = segment
        for end in (a, b):
            assert np.all(end >= box[0] - 1e-6) and np.all(end <= box[1] + 1e-6), (end, box)
            assert abs((end - panel.plane.point_lps) @ normal) < 1e-6  # on the plane
        assert np.linalg.norm(b - a) <= np.linalg.norm(box[1] - box[0]) + 1e-6
    assert drawn == 3  # the plane crosses every slice through the tumour

    # the 3D handle's plane is the plane clipped to the same box
    import vtk

    polygon = vtk.vtkPolyData()
    panel.scene3d.plane_widget.GetPolyData(polygon)
    bounds = np.reshape(polygon.GetBounds(), (3, 2)).T
    assert np.all(bounds[0] >= box[0] - 1e-3) and np.all(bounds[1] <= box[1] + 1e-3), \
        (bounds, box)
