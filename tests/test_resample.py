"""Resampling between grids (direction matrices honoured) and grid overlap."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.resample import overlap_fraction, resample_to_grid
from tests.test_distance import centres_lps, rotation

SOURCE = ImageGeometry((40, 36, 30), (0.8, 0.8, 1.5), (-10, 20, 50), rotation((1, 1, 1), 25))
CENTRE = SOURCE.slice_centre_lps()


def centred_grid(size, spacing, direction) -> ImageGeometry:
    """A grid whose centre is CENTRE."""
    half = (np.asarray(size) - 1) * np.asarray(spacing) / 2.0
    return ImageGeometry(size, spacing, tuple(CENTRE - direction @ half), direction)


def ball(geometry, radius=8.0) -> np.ndarray:
    return np.linalg.norm(centres_lps(geometry) - CENTRE, axis=-1) <= radius


def test_identity_grid_is_exact_for_every_interpolation():
    labels = ball(SOURCE).astype(np.uint8) * 3
    for interpolation in ("nearest", "label"):
        out = resample_to_grid(labels, SOURCE, SOURCE, interpolation=interpolation)
        assert out.dtype == np.uint8 and np.array_equal(out, labels)
    ramp = np.random.default_rng(0).normal(size=SOURCE.shape_zyx).astype(np.float32)
    assert np.allclose(resample_to_grid(ramp, SOURCE, SOURCE), ramp, atol=1e-5)
    mask = resample_to_grid(labels > 0, SOURCE, SOURCE, interpolation="nearest")
    assert mask.dtype == bool and np.array_equal(mask, labels > 0)


def test_shifted_grid_moves_values_by_whole_voxels():
    shifted = ImageGeometry(
        SOURCE.size, SOURCE.spacing_mm, SOURCE.index_to_lps([3, -2, 1]), SOURCE.direction
    )
    values = np.arange(SOURCE.n_voxels, dtype=np.int32).reshape(SOURCE.shape_zyx)
    out = resample_to_grid(values, SOURCE, shifted, interpolation="nearest", default_value=-1)
    # target voxel (i, j, k) is source voxel (i+3, j-2, k+1)
    assert np.array_equal(out[:-1, 2:, :-3], values[1:, :-2, 3:])
    assert np.all(out[-1] == -1) and np.all(out[:, :2] == -1)


def test_linear_field_is_reproduced_on_a_rotated_grid():
    target = centred_grid((30, 30, 20), (1.0, 1.0, 1.0), rotation((0, 1, 0), 40))
    gradient = np.array([0.5, -0.25, 1.0])
    field = (centres_lps(SOURCE) @ gradient).astype(np.float32)
    out = resample_to_grid(field, SOURCE, target, interpolation="linear", default_value=np.nan)
    expected = centres_lps(target) @ gradient
    assert out.dtype == np.float32
    assert np.array_equal(np.isnan(out), ~SOURCE.contains_lps(centres_lps(target)))
    # Between the source's voxel centres trilinear interpolation of a linear field is exact
    # (in the half-voxel rim ITK holds the edge value).
    ijk = SOURCE.lps_to_index(centres_lps(target))
    hull = np.all((ijk >= 0) & (ijk <= np.asarray(SOURCE.size) - 1), axis=-1)
    assert hull.mean() > 0.3
    assert np.allclose(out[hull], expected[hull], atol=1e-3)


@pytest.mark.parametrize("interpolation", ["nearest", "label"])
def test_labels_stay_at_their_lps_place_on_a_rotated_grid(interpolation):
    mirrored = rotation((1, -2, 0.5), 70) @ np.diag([1, -1, 1])
    target = centred_grid((34, 34, 34), (0.7, 0.7, 0.7), mirrored)
    labels = ball(SOURCE).astype(np.uint16) * 7
    out = resample_to_grid(labels, SOURCE, target, interpolation=interpolation)
    assert out.dtype == np.uint16 and set(np.unique(out)) == {0, 7}
    truth = ball(target)
    got = out == 7
    dice = 2 * np.sum(got & truth) / (got.sum() + truth.sum())
    assert dice > 0.9
    centroid = centres_lps(target)[got].mean(axis=0)
    assert np.linalg.norm(centroid - CENTRE) < 0.3


def test_bad_shape_is_one_line():
    with pytest.raises(BadInputError) as info:
        resample_to_grid(np.zeros((2, 2, 2)), SOURCE, SOURCE)
    assert "\n" not in str(info.value)


def test_overlap_fraction():
    g = ImageGeometry((10, 10, 10), (1.0, 1.0, 2.0), (0, 0, 0))
    assert overlap_fraction(g, g) == pytest.approx(1.0)
    half = ImageGeometry((10, 10, 10), (1.0, 1.0, 2.0), (5, 0, 0))
    assert overlap_fraction(g, half) == pytest.approx(0.5)
    far = ImageGeometry((10, 10, 10), (1.0, 1.0, 2.0), (50, 0, 0))
    assert overlap_fraction(g, far) == 0.0
    touching = ImageGeometry((10, 10, 10), (1.0, 1.0, 2.0), (10, 0, 0))
    assert overlap_fraction(g, touching) == 0.0
    big = ImageGeometry((30, 30, 30), (1.0, 1.0, 2.0), (-10, -10, -20))
    assert overlap_fraction(g, big) == pytest.approx(1.0)
    assert overlap_fraction(big, g) == pytest.approx(1 / 27)
    # A square rotated 45 degrees about its centre keeps 4 * (sqrt(2) - 1) ~ 0.828 of itself.
    centre = g.slice_centre_lps()
    turn = rotation((0, 0, 1), 45)
    rotated = ImageGeometry(g.size, g.spacing_mm, tuple(centre - turn @ [4.5, 4.5, 9.0]), turn)
    # The two squares intersect in a regular octagon: 2 (sqrt(2) - 1) of the square's area.
    assert overlap_fraction(g, rotated) == pytest.approx(2 * (np.sqrt(2) - 1), rel=1e-6)
