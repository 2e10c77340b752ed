"""Signed distance maps against analytic shapes; the trilinear sampler."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError, CancelledError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.distance import sample_volume, signed_distance_map, signed_distance_roi
from surgiplan.progress import CancelToken


def rotation(axis, degrees) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def grid_around(centre_lps, half_width_mm, spacing, direction=None) -> ImageGeometry:
    """A grid of the given spacing/direction whose extent covers centre +- half_width."""
    direction = np.eye(3) if direction is None else direction
    size = tuple(int(np.ceil(2 * half_width_mm / s)) + 1 for s in spacing)
    offset = direction @ ((np.asarray(size) - 1) * np.asarray(spacing) / 2.0)
    origin = np.asarray(centre_lps) - offset + direction @ (0.3 * np.asarray(spacing))
    return ImageGeometry(size, spacing, tuple(origin), direction)


def centres_lps(geometry: ImageGeometry) -> np.ndarray:
    nx, ny, nz = geometry.size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return geometry.index_to_lps(np.stack([i, j, k], axis=-1))


def sphere_distance(geometry, centre, radius) -> np.ndarray:
    return np.linalg.norm(centres_lps(geometry) - np.asarray(centre), axis=-1) - radius


CASES = [
    ((1.0, 1.0, 1.0), None),
    ((0.7, 0.7, 2.5), None),
    ((0.9, 0.6, 1.5), rotation((1, 2, 3), 35)),
]


@pytest.mark.parametrize(("spacing", "direction"), CASES)
def test_sphere_distance_within_half_voxel(spacing, direction):
    centre = (12.0, -40.0, 85.0)
    geometry = grid_around(centre, 24.0, spacing, direction)
    truth = sphere_distance(geometry, centre, 15.0)
    dist = signed_distance_map(truth <= 0, geometry)
    assert dist.dtype == np.float32 and dist.shape == geometry.shape_zyx
    near = np.abs(truth) < 3 * max(spacing)
    error = (dist - truth)[near]
    assert np.abs(error).max() <= 0.5 * max(spacing) + 1e-4
    assert abs(error.mean()) < 0.25 * max(spacing)


def test_sign_convention_positive_outside_negative_inside():
    geometry = grid_around((0, 0, 0), 12.0, (1.0, 0.8, 2.0), rotation((0, 0, 1), 20))
    truth = sphere_distance(geometry, (1.0, 2.0, 0.0), 7.0)
    mask = truth <= 0
    dist = signed_distance_map(mask, geometry)
    assert np.all(dist[mask] < 0) and np.all(dist[~mask] > 0)
    # Far outside the value grows like the true distance.
    far = truth > 4
    assert np.allclose(dist[far], truth[far], atol=1.0)


def test_plane_on_isotropic_grid_is_exact():
    geometry = ImageGeometry((10, 10, 20), (1.5, 1.5, 1.5), (0, 0, 0))
    mask = np.zeros(geometry.shape_zyx, bool)
    mask[:8] = True  # surface half-way between slices 7 and 8: z = 7.5 voxels
    dist = signed_distance_map(mask, geometry)
    k = np.arange(20)
    # Inside, the nearest boundary may be the grid edge (beyond the grid counts as outside).
    depth = np.minimum.reduce([7.5 - k, k + 0.5, np.full(20, 4.5)])
    expected = np.where(k < 8, -depth, k - 7.5) * 1.5
    assert np.allclose(dist[:, 4, 4], expected, atol=1e-5)


def test_roi_equals_full_map_inside_roi_and_inf_outside():
    geometry = grid_around((0, 0, 0), 30.0, (1.0, 1.0, 2.0), rotation((1, 0, 1), 15))
    mask = sphere_distance(geometry, (-8.0, 5.0, 3.0), 6.0) <= 0
    full = signed_distance_map(mask, geometry)
    roi = signed_distance_map(mask, geometry, roi_margin_mm=5.0)
    finite = np.isfinite(roi)
    assert 0 < finite.sum() < roi.size
    assert np.array_equal(roi[finite], full[finite])
    assert np.all(full[~finite] > 5.0 - 0.5 * 2.0)
    assert np.all(np.isposinf(roi[~finite]))
    crop, sub = signed_distance_roi(mask, geometry, margin_mm=5.0)
    # The crop's grid places its voxels at the same LPS points as the full grid's.
    points = centres_lps(sub).reshape(-1, 3)
    ijk = np.rint(geometry.lps_to_index(points)).astype(int)
    assert np.allclose(geometry.index_to_lps(ijk), points, atol=1e-6)
    assert np.array_equal(crop.reshape(-1), full[ijk[:, 2], ijk[:, 1], ijk[:, 0]])


def test_empty_and_full_masks():
    geometry = ImageGeometry((6, 5, 4), (1.0, 1.0, 1.0), (0, 0, 0))
    empty = signed_distance_map(np.zeros(geometry.shape_zyx, bool), geometry)
    assert np.all(np.isposinf(empty))
    full = signed_distance_map(np.ones(geometry.shape_zyx, bool), geometry)
    # Beyond the grid counts as outside: the edge voxels are half a voxel deep.
    assert np.all(np.isfinite(full)) and np.all(full < 0)
    assert full[0, 0, 0] == pytest.approx(-0.5) and full[2, 2, 2] == pytest.approx(-1.5)
    crop, _ = signed_distance_roi(np.zeros(geometry.shape_zyx, bool), geometry, margin_mm=3)
    assert crop.shape == (1, 1, 1) and np.isposinf(crop).all()


def test_bad_input_is_one_line():
    geometry = ImageGeometry((6, 5, 4), (1.0, 1.0, 1.0), (0, 0, 0))
    with pytest.raises(BadInputError) as info:
        signed_distance_map(np.zeros((4, 5, 7), bool), geometry)
    assert "\n" not in str(info.value) and "resample" in str(info.value)
    with pytest.raises(BadInputError):
        signed_distance_map(np.ones(geometry.shape_zyx, bool), geometry, roi_margin_mm=-1)


def test_progress_reaches_one_and_cancel_stops():
    geometry = grid_around((0, 0, 0), 20.0, (1.0, 1.0, 1.0))
    mask = sphere_distance(geometry, (0, 0, 0), 8.0) <= 0
    seen = []
    signed_distance_map(mask, geometry, progress=lambda f, t: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        signed_distance_map(mask, geometry, cancel=token)


def test_cancel_during_the_itk_filter_aborts_it():
    geometry = grid_around((0, 0, 0), 40.0, (0.5, 0.5, 0.5))
    mask = sphere_distance(geometry, (0, 0, 0), 20.0) <= 0
    token = CancelToken()

    def cancel_midway(fraction, _text):
        if fraction > 0.05:
            token.cancel()

    with pytest.raises(CancelledError):
        signed_distance_map(mask, geometry, progress=cancel_midway, cancel=token)


def test_sample_volume_is_exact_for_linear_fields_on_oblique_grid():
    geometry = ImageGeometry((7, 6, 5), (0.8, 1.1, 2.0), (10, -5, 30), rotation((1, 1, 0), 40))
    pts = centres_lps(geometry)
    field = (pts @ np.array([0.3, -1.2, 2.0]) + 4.0).astype(np.float32)
    rng = np.random.default_rng(1)
    ijk = rng.uniform(0, np.asarray(geometry.size) - 1, size=(200, 3))
    query = geometry.index_to_lps(ijk)
    got = sample_volume(field, geometry, query)
    assert np.allclose(got, query @ np.array([0.3, -1.2, 2.0]) + 4.0, atol=1e-4)
    # Outside the voxel extent -> fill value; in the half-voxel rim -> edge value.
    far = geometry.index_to_lps([[-0.6, 2, 2], [3, 2, 4.6]])
    assert np.all(np.isnan(sample_volume(field, geometry, far)))
    assert np.all(sample_volume(field, geometry, far, fill_value=-7.0) == -7.0)
    rim = geometry.index_to_lps([[-0.4, 2, 2]])
    assert sample_volume(field, geometry, rim)[0] == pytest.approx(field[2, 2, 0], abs=1e-5)
    assert sample_volume(field, geometry, query.reshape(10, 20, 3)).shape == (10, 20)


def test_sample_volume_ignores_infinite_voxels_of_zero_weight():
    geometry = ImageGeometry((4, 1, 1), (1.0, 1.0, 1.0), (0, 0, 0))
    values = np.array([[[1.0, 2.0, np.inf, np.inf]]], dtype=np.float32)
    got = sample_volume(values, geometry, [[1.0, 0, 0], [1.5, 0, 0], [0.5, 0, 0]])
    assert got[0] == 2.0 and np.isposinf(got[1]) and got[2] == 1.5
