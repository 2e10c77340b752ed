"""Segmentation tools on small synthetic volumes with exact expected answers."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.brush import disc_region, sphere_region, stroke_regions
from surgiplan.segmentation.islands import (
    keep_island_at,
    keep_largest_island,
    remove_small_islands,
)
from surgiplan.segmentation.logical import combine_masks
from surgiplan.segmentation.morphology import fill_holes, grow_mask, shrink_mask, smooth_mask
from surgiplan.segmentation.region_grow import RegionGrowPreview, region_grow
from surgiplan.segmentation.scissors import cut_with_polygon, polygon_prism_mask
from surgiplan.segmentation.threshold import (
    body_mask,
    otsu_threshold,
    threshold_mask,
    threshold_preset,
)

ANISO = ImageGeometry((60, 50, 24), (0.7, 0.9, 2.0), (-20.0, 10.0, 5.0))


def radii_mm(geometry: ImageGeometry, centre_lps) -> np.ndarray:
    """Distance (mm) of every voxel centre from ``centre_lps``, shape (nz, ny, nx)."""
    nz, ny, nx = geometry.shape_zyx
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1))
    return np.linalg.norm(lps - np.asarray(centre_lps), axis=-1)


def sphere(geometry: ImageGeometry, centre_lps, radius_mm: float) -> np.ndarray:
    return radii_mm(geometry, centre_lps) <= radius_mm


CENTRE = ANISO.index_to_lps([30, 25, 12])
HALF_VOXEL = 0.5 * max(ANISO.spacing_mm)
# Voxel-centre distances put a digitised surface up to half a voxel *diagonal* off the ideal.
HALF_DIAGONAL = 0.5 * float(np.linalg.norm(ANISO.spacing_mm))


# ------------------------------------------------------------------ morphology
@pytest.mark.parametrize("margin", [2.0, 3.5])
def test_grow_sphere_is_isotropic_in_mm_on_anisotropic_grid(margin):
    r = radii_mm(ANISO, CENTRE)
    grown = grow_mask(r <= 8.0, ANISO, margin)
    assert grown[r <= 8.0 + margin - HALF_DIAGONAL].all()
    assert not grown[r > 8.0 + margin + HALF_VOXEL].any()
    assert grown[r <= 8.0 + margin - HALF_VOXEL].mean() > 0.99


def test_shrink_sphere_is_isotropic_in_mm():
    r = radii_mm(ANISO, CENTRE)
    shrunk = shrink_mask(r <= 9.0, ANISO, 3.0)
    assert shrunk[r <= 6.0 - HALF_VOXEL].all()
    assert not shrunk[r > 6.0 + HALF_VOXEL].any()
    assert not shrink_mask(r <= 9.0, ANISO, 20.0).any()


def test_grow_zero_and_empty_and_bad_margin():
    r = radii_mm(ANISO, CENTRE)
    assert np.array_equal(grow_mask(r <= 5, ANISO, 0.0), r <= 5)
    assert not grow_mask(np.zeros(ANISO.shape_zyx, bool), ANISO, 2.0).any()
    with pytest.raises(BadInputError):
        grow_mask(r <= 5, ANISO, -1.0)


def test_fill_holes_3d_and_per_slice():
    r = radii_mm(ANISO, CENTRE)
    shell = (r <= 8.0) & (r > 5.0)
    assert np.array_equal(fill_holes(shell), r <= 8.0)
    # A tube open at both ends along z: no 3D hole, but every axial slice has one.
    tube = np.zeros(ANISO.shape_zyx, bool)
    tube[:, 10:40, 10:50] = True
    tube[:, 15:35, 20:40] = False
    assert np.array_equal(fill_holes(tube), tube)
    filled = fill_holes(tube, per_slice_axis=0)
    assert filled[:, 15:35, 20:40].all() and filled.sum() == 24 * 30 * 40


def test_smoothing_opening_removes_spur_closing_fills_gap_median_keeps_ball():
    r = radii_mm(ANISO, CENTRE)
    ball = r <= 8.0
    spur = ball.copy()
    spur[12, 25, 30:55] = True  # a one-voxel-thin spike
    opened = smooth_mask(spur, ANISO, method="opening", radius_mm=2.0)
    assert not opened[12, 25, 45:55].any() and opened[r <= 5].all()
    notched = ball.copy()
    notched[:, 24:27, :] = False  # cut a 2.7 mm slab through the ball
    closed = smooth_mask(notched, ANISO, method="closing", radius_mm=3.0)
    assert closed[12, 25, 30]
    med = smooth_mask(ball, ANISO, method="median", radius_mm=2.0)
    assert med[r <= 8.0 - 2 * HALF_VOXEL].all() and not med[r > 8.0 + 2 * HALF_VOXEL].any()
    with pytest.raises(BadInputError):
        smooth_mask(ball, ANISO, method="blur", radius_mm=1.0)


# ------------------------------------------------------------------ islands, logic
def _three_islands() -> np.ndarray:
    m = np.zeros(ANISO.shape_zyx, bool)
    m[2:6, 5:10, 5:10] = True  # 100 voxels
    m[10:20, 20:40, 20:40] = True  # 4000 voxels
    m[15, 45, 55] = True  # 1 voxel
    return m


def test_islands_largest_clicked_and_small():
    m = _three_islands()
    largest = keep_largest_island(m)
    assert largest.sum() == 4000
    clicked = keep_island_at(m, ANISO, ANISO.index_to_lps([7, 7, 3]))
    assert clicked.sum() == 100 and clicked[3, 7, 7]
    with pytest.raises(BadInputError):
        keep_island_at(m, ANISO, ANISO.index_to_lps([0, 0, 0]))
    vox = ANISO.voxel_volume_mm3
    kept = remove_small_islands(m, ANISO, min_volume_mm3=50 * vox)
    assert kept.sum() == 4100
    assert remove_small_islands(m, ANISO, min_volume_mm3=101 * vox).sum() == 4000


def test_logical_operations():
    a = np.zeros((2, 2, 2), bool)
    b = np.zeros((2, 2, 2), bool)
    a[0] = True
    b[:, 0] = True
    assert combine_masks(a, b, "union").sum() == 6
    assert combine_masks(a, b, "intersect").sum() == 2
    assert combine_masks(a, b, "subtract").sum() == 2
    with pytest.raises(BadInputError):
        combine_masks(a, b, "xor")


# ------------------------------------------------------------------ brushes
def test_sphere_brush_matches_analytic_ball_and_clips_at_edges():
    region = sphere_region(ANISO, CENTRE, 5.0)
    full = region.to_full(ANISO.shape_zyx)
    assert np.array_equal(full, sphere(ANISO, CENTRE, 5.0))
    corner = sphere_region(ANISO, ANISO.index_to_lps([0, 0, 0]), 3.0)
    assert corner.box[0].start == 0 and corner.mask.any()
    assert sphere_region(ANISO, (1e4, 0, 0), 3.0) is None
    with pytest.raises(BadInputError):
        sphere_region(ANISO, CENTRE, 0.0)


def test_disc_brush_is_one_slice_thick_and_round_in_mm():
    region = disc_region(ANISO, CENTRE + np.array([0, 0, 0.9]), 4.0, axis=2)
    full = region.to_full(ANISO.shape_zyx)
    assert set(np.flatnonzero(full.any(axis=(1, 2)))) == {12}
    r_plane = radii_mm(ANISO, CENTRE)[12]
    assert np.array_equal(full[12], r_plane <= 4.0)
    sagittal = disc_region(ANISO, CENTRE, 4.0, axis=0).to_full(ANISO.shape_zyx)
    assert set(np.flatnonzero(sagittal.any(axis=(0, 1)))) == {30}


def test_stroke_has_no_gaps():
    a, b = ANISO.index_to_lps([10, 25, 12]), ANISO.index_to_lps([50, 25, 12])
    regions = stroke_regions(ANISO, [a, b], 2.0, axis=2)
    painted = np.zeros(ANISO.shape_zyx, bool)
    for reg in regions:
        painted[reg.box] |= reg.mask
    assert painted[12, 25, 10:51].all()


# ------------------------------------------------------------------ thresholds
def _phantom_ct() -> np.ndarray:
    r = radii_mm(ANISO, CENTRE)
    ct = np.full(ANISO.shape_zyx, -1000, np.int16)
    ct[r <= 14] = 40
    ct[r <= 6] = 300  # "vessel"
    ct[r <= 3] = 800  # "bone"
    ct[(r > 9) & (r <= 10)] = -1000  # an air cavity inside the body
    ct[0:2, 0:3, 0:3] = 40  # a separate blob (the table)
    return ct


def test_threshold_bounds_box_and_within():
    ct = _phantom_ct()
    r = radii_mm(ANISO, CENTRE)
    assert np.array_equal(threshold_mask(ct, lower=250, upper=500), (r <= 6) & (r > 3))
    box = (slice(0, 12), slice(0, 50), slice(0, 60))
    assert not threshold_mask(ct, lower=250, box=box)[12:].any()
    within = r <= 4
    assert np.array_equal(threshold_mask(ct, lower=250, within=within), r <= 4)
    with pytest.raises(BadInputError):
        threshold_mask(ct, lower=5, upper=1)


def test_body_mask_largest_component_holes_filled():
    ct = _phantom_ct()
    r = radii_mm(ANISO, CENTRE)
    assert np.array_equal(body_mask(ct, ANISO), r <= 14)
    assert np.array_equal(threshold_preset("ct-body", ct, ANISO), r <= 14)
    assert np.array_equal(threshold_preset("ct-bone", ct, ANISO), r <= 6)
    with pytest.raises(BadInputError):
        threshold_preset("mr-bone", ct, ANISO)


def test_otsu_separates_two_levels():
    img = np.zeros((10, 10, 10), np.float32)
    img[:, :, 5:] = 100
    assert 0 <= otsu_threshold(img) < 100


# ------------------------------------------------------------------ region growing
def test_region_grow_connected_stays_in_the_seeded_blob():
    ct = _phantom_ct()
    r = radii_mm(ANISO, CENTRE)
    seed = ANISO.index_to_lps([30, 25 + 5, 12])  # 4.5 mm from the centre: the "vessel" shell
    grown = region_grow(ct, ANISO, [seed], lower=250, upper=500).to_full(ANISO.shape_zyx)
    assert np.array_equal(grown, (r <= 6) & (r > 3))
    auto = region_grow(ct, ANISO, [CENTRE], neighbourhood_mm=1.0).to_full(ANISO.shape_zyx)
    assert np.array_equal(auto, r <= 3)
    conf = region_grow(ct, ANISO, [CENTRE], method="confidence",
                       neighbourhood_mm=0.7).to_full(ANISO.shape_zyx)
    assert np.array_equal(conf, r <= 3)
    with pytest.raises(BadInputError):
        region_grow(ct, ANISO, [(1e4, 0, 0)])


def test_region_grow_preview_box_grows_until_complete():
    ct = _phantom_ct()
    r = radii_mm(ANISO, CENTRE)
    preview = RegionGrowPreview(ct, ANISO, budget_s=5.0, start_radius_mm=2.0)
    result = preview.update([CENTRE], lower=0, upper=1000)
    assert result.complete
    assert np.array_equal(result.region.to_full(ANISO.shape_zyx), fill_holes(r <= 14) & (ct >= 0))
    clipped = region_grow(ct, ANISO, [CENTRE], lower=0, upper=1000, roi_radius_mm=2.0)
    assert clipped.voxel_count < result.region.voxel_count
    committed = preview.commit([CENTRE], lower=0, upper=1000)
    assert np.array_equal(committed.to_full(ANISO.shape_zyx), result.region.to_full(ct.shape))


# ------------------------------------------------------------------ scissors
def test_scissors_axial_square_cuts_through_the_volume():
    g = ImageGeometry((20, 20, 10), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    square = [(4.5, 4.5, 3.0), (9.5, 4.5, 3.0), (9.5, 9.5, 3.0), (4.5, 9.5, 3.0)]
    prism = polygon_prism_mask(g, square, (0, 0, 1))
    expected = np.zeros(g.shape_zyx, bool)
    expected[:, 5:10, 5:10] = True
    assert np.array_equal(prism, expected)
    slab = polygon_prism_mask(g, square, (0, 0, 1), depth_mm=(-2.0, 4.0))
    assert np.array_equal(np.flatnonzero(slab.any(axis=(1, 2))), [1, 2, 3])
    full = np.ones(g.shape_zyx, bool)
    assert cut_with_polygon(full, g, square, (0, 0, 1)).sum() == full.sum() - expected.sum()
    assert np.array_equal(cut_with_polygon(full, g, square, (0, 0, 1), remove="outside"),
                          expected)


def test_scissors_oblique_normal():
    g = ImageGeometry((20, 20, 20), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    n = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    e1, e2 = np.array([1.0, -1.0, 0.0]) / np.sqrt(2), np.array([0.0, 0.0, 1.0])
    centre = np.array([10.0, 10.0, 10.0])
    poly = [centre + 3 * (a * e1 + b * e2) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    prism = polygon_prism_mask(g, poly, n)
    k, j, i = np.nonzero(prism)
    rel = np.stack([i, j, k], axis=1) - centre
    assert np.all(np.abs(rel @ e1) <= 3) and np.all(np.abs(rel @ e2) <= 3)
    assert prism[10, 0, 0] and prism[10, 19, 19] and not prism[10, 0, 19]
    with pytest.raises(BadInputError):
        polygon_prism_mask(g, poly[:2], n)
