"""Radiological display of patient planes on any grid orientation (numpy only, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.ui.views.overlay import blend_labels, layer_lookups, outline_mask
from surgiplan.ui.views.slice_planes import Plane, plane_mapping
from surgiplan.ui.views.windowing import CT_PRESETS, default_window, presets_for, to_grey
from tests.ui.conftest import MARKER_LPS, make_twin, rotation_z

# Image axes (columns) in LPS for common acquisitions.
AXIAL_HFS = np.eye(3)
AXIAL_FFS = np.array([[-1, 0, 0], [0, 1, 0], [0, 0, -1]], float)  # row -L, slices towards I
SAGITTAL = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # i=+P, j=-S, k=-L
ORIENTATIONS = {
    "axial-hfs": AXIAL_HFS,
    "axial-ffs": AXIAL_FFS,
    "sagittal": SAGITTAL.T,
    "coronal": np.column_stack([(1, 0, 0), (0, 0, -1), (0, 1, 0)]).astype(float),
    "oblique-20": rotation_z(20.0),
    "oblique-ffs": AXIAL_FFS @ rotation_z(-15.0),
}


def _orthonormal(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, float)
    assert np.allclose(d.T @ d, np.eye(3)), d
    return d


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_marker_appears_on_the_radiological_side(name):
    """Marker at patient left/anterior/superior: right+up (axial, coronal), left+up (sagittal)."""
    twin = make_twin(direction=_orthonormal(ORIENTATIONS[name]), size=(56, 56, 56),
                     spacing=(1.2, 1.2, 1.6))
    for plane in Plane:
        m = plane_mapping(twin.geometry, plane)
        image = m.extract(twin.image.array, m.slice_index_of(MARKER_LPS))
        rows, cols = np.nonzero(image > 1000)
        assert rows.size, f"{name}/{plane}: marker not in its slice"
        col_frac, row_frac = cols.mean() / image.shape[1], rows.mean() / image.shape[0]
        assert row_frac < 0.5, f"{name}/{plane}: marker should be in the upper half"
        if plane == Plane.SAGITTAL:
            assert col_frac < 0.5, f"{name}/{plane}: anterior must be on the left"
        else:
            assert col_frac > 0.5, f"{name}/{plane}: patient left must be on screen right"


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_edge_labels_follow_the_radiological_convention(name):
    geo = ImageGeometry((10, 10, 10), (1, 1, 1), (0, 0, 0), _orthonormal(ORIENTATIONS[name]))
    expected = {Plane.AXIAL: ("R", "L", "A", "P"), Plane.CORONAL: ("R", "L", "S", "I"),
                Plane.SAGITTAL: ("A", "P", "S", "I")}
    for plane, (left, right, top, bottom) in expected.items():
        labels = plane_mapping(geo, plane).edge_labels()
        got = (labels["left"][0], labels["right"][0], labels["top"][0], labels["bottom"][0])
        assert got == (left, right, top, bottom), f"{name}/{plane}: {labels}"
    if name.startswith("oblique"):
        assert len(plane_mapping(geo, Plane.AXIAL).edge_labels()["left"]) == 2


def test_pixel_lps_round_trip_and_true_aspect():
    geo = ImageGeometry((30, 20, 10), (0.5, 0.8, 3.0), (5, -7, 11), AXIAL_FFS @ rotation_z(10))
    for plane in Plane:
        m = plane_mapping(geo, plane)
        p = m.pixel_to_lps(3.25, 4.5, 2)
        col, row, k = m.lps_to_pixel(p)
        assert np.allclose((col, row, k), (3.25, 4.5, 2))
        rows, cols = m.shape_rows_cols
        assert m.extract(np.zeros(geo.shape_zyx), 0).shape == (rows, cols)
    axial = plane_mapping(geo, Plane.AXIAL)
    assert axial.pixel_mm == (0.5, 0.8) and axial.slice_spacing_mm == 3.0
    coronal = plane_mapping(geo, Plane.CORONAL)
    assert coronal.pixel_mm == (0.5, 3.0)


def test_slice_position_is_along_the_patient_axis():
    geo = ImageGeometry((4, 4, 5), (1, 1, 2.0), (0, 0, 100.0), AXIAL_FFS)
    axial = plane_mapping(geo, Plane.AXIAL)
    assert axial.slice_position_mm(0) == pytest.approx(100.0)
    assert axial.slice_position_mm(3) == pytest.approx(94.0)  # feet first: slices go inferior


def test_window_presets_and_grey_mapping():
    twin = make_twin()
    assert default_window(twin.image) == (40.0, 400.0)
    twin.image.window_center = None
    c, w = default_window(twin.image)
    assert w > 0 and -1000 <= c <= 1500
    names = [p.name for p in presets_for(twin.image)]
    assert names[:6] == [p.name for p in CT_PRESETS]
    assert (CT_PRESETS[0].width, CT_PRESETS[0].center) == (80.0, 40.0)
    assert (CT_PRESETS[4].width, CT_PRESETS[4].center) == (1500.0, -600.0)
    grey = to_grey(np.array([-160.0, 40.0, 240.0, 1000.0]), 40.0, 400.0)
    assert grey.tolist() == [0, 127, 255, 255]
    twin.image.modality = "MR"
    assert [p.name for p in presets_for(twin.image)] == ["Auto (histogram)"]


def test_overlay_blend_and_outline():
    geo = ImageGeometry((6, 6, 1), (1, 1, 1), (0, 0, 0))
    seg = Segmentation(geo)
    mask = np.zeros(geo.shape_zyx, bool)
    mask[0, 1:5, 1:5] = True
    seg.add("a", mask, color=(1.0, 0.0, 0.0))
    lookups = layer_lookups(seg)
    grey = np.full((6, 6), 100, np.uint8)
    rgb = blend_labels(grey, [seg.layers[0][0]], lookups, opacity=0.5)
    assert tuple(rgb[2, 2]) == (178, 50, 50) and tuple(rgb[0, 0]) == (100, 100, 100)
    outlined = blend_labels(grey, [seg.layers[0][0]], lookups, outline=True)
    assert tuple(outlined[1, 1]) == (255, 0, 0) and tuple(outlined[2, 2]) == (100, 100, 100)
    assert outline_mask(seg.layers[0][0]).sum() == 12
    seg.structures[0].visible = False
    hidden = blend_labels(grey, [seg.layers[0][0]], layer_lookups(seg))
    assert tuple(hidden[2, 2]) == (100, 100, 100)


def test_small_structure_on_another_layer_is_drawn_over_the_organ_around_it():
    """A lesion added before its organ lands on layer 0 and the organ on layer 1; drawn in
    layer order the organ would cover it. By size, the lesion is drawn last (on top)."""
    geo = ImageGeometry((8, 8, 1), (1, 1, 1), (0, 0, 0))
    seg = Segmentation(geo)
    lesion = np.zeros(geo.shape_zyx, bool)
    lesion[0, 3:5, 3:5] = True
    seg.add("lesion", lesion, color=(1.0, 1.0, 0.0))
    organ = np.zeros(geo.shape_zyx, bool)
    organ[0, 1:7, 1:7] = True
    seg.add("organ", organ, color=(0.0, 0.0, 1.0))
    assert [s.layer for s in seg.structures] == [0, 1], "the organ overlaps: its own layer"
    counts = {s.name: int(seg.voxel_count(s.name)) for s in seg.structures}
    lookups = layer_lookups(seg, voxel_count=counts.__getitem__)
    assert [lut.layer for lut in lookups] == [1, 0]
    grey = np.full((8, 8), 100, np.uint8)
    planes = [seg.layers[lut.layer][0] for lut in lookups]
    r, g, b = blend_labels(grey, planes, lookups, opacity=1.0)[3, 3]
    assert r > 200 and g > 200 and b < 60, "the lesion shows in its own colour"
    in_layer_order = blend_labels(grey, [layer[0] for layer in seg.layers], layer_lookups(seg),
                                  opacity=1.0)[3, 3]
    assert tuple(in_layer_order) == (0, 0, 255), "drawn in layer order the organ hides it"
