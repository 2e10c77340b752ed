"""Memory budgets of distance maps (issue 11 item 8): a map is held only in its structure's
region of interest, agrees with the full-grid computation there, and is a conservative lower
bound beyond it."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.processing.distance import (
    sample_volume,
    signed_distance_map,
    signed_distance_roi_map,
)
from surgiplan.simulation.context import SimulationContext
from surgiplan.twin import Twin

SHAPE_ZYX = (120, 160, 140)
SPACING = (0.8, 0.7, 1.2)  # x, y, z mm (anisotropic on purpose)


def _grid() -> ImageGeometry:
    return ImageGeometry(SHAPE_ZYX[::-1], SPACING, (-50.0, -60.0, -70.0))


def _ball(geometry: ImageGeometry, centre_zyx=(40, 70, 90), radius_mm=5.0) -> np.ndarray:
    zz, yy, xx = np.indices(geometry.shape_zyx, sparse=True)
    sx, sy, sz = geometry.spacing_mm
    cz, cy, cx = centre_zyx
    return (((zz - cz) * sz) ** 2 + ((yy - cy) * sy) ** 2 + ((xx - cx) * sx) ** 2
            <= radius_mm ** 2)


@pytest.fixture(scope="module")
def maps():
    geometry = _grid()
    mask = _ball(geometry)
    return geometry, mask, signed_distance_roi_map(mask, geometry, margin_mm=10.0), \
        signed_distance_map(mask, geometry)


def test_roi_map_memory_is_bounded_by_its_region(maps):
    geometry, _, roi, _ = maps
    full_bytes = 4 * geometry.n_voxels
    assert roi.values.dtype == np.float32
    assert roi.nbytes < 0.10 * full_bytes, (roi.nbytes, full_bytes)
    assert roi.values.shape == tuple(s.stop - s.start for s in roi.region)


def test_roi_values_equal_the_full_grid_map_inside_the_region(maps):
    _, _, roi, full = maps
    np.testing.assert_allclose(roi.values, full[roi.region], rtol=0, atol=1e-5)


def test_roi_sampling_exact_near_and_a_lower_bound_far(maps):
    geometry, _, roi, full = maps
    rng = np.random.default_rng(3)
    lo_ijk = np.array([s.start for s in roi.region[::-1]]) - 3.0
    hi_ijk = np.array([s.stop for s in roi.region[::-1]]) + 2.0
    ijk = np.concatenate([
        rng.uniform(-0.5, np.asarray(geometry.size) - 0.5, size=(2000, 3)),
        rng.uniform(np.maximum(lo_ijk, -0.5), np.minimum(hi_ijk, np.asarray(geometry.size) - 0.5),
                    size=(2000, 3))])
    points = geometry.index_to_lps(ijk)
    truth = sample_volume(full, geometry, points, fill_value=np.inf)
    got = roi.sample(points)
    exact = roi.exact_at_index(ijk[:, ::-1])
    assert exact.sum() > 100 and (~exact).sum() > 100
    np.testing.assert_allclose(got[exact], truth[exact], rtol=0, atol=1e-4)
    assert np.all(got[~exact] <= truth[~exact] + 1e-4)  # conservative lower bound
    assert np.all(got[~exact] >= 10.0 - 0.5 * max(SPACING) - 1e-6)  # beyond the margin
    off = geometry.index_to_lps(np.array([[-3.0, 5.0, 5.0]]))
    assert roi.sample(off)[0] == np.inf


def test_context_samples_without_a_full_grid_map_near_the_structure():
    geometry = _grid()
    image = ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT")
    twin = Twin(image)
    mask = _ball(geometry)
    twin.add_structure("nerve", mask, role="critical")
    context = SimulationContext(twin)
    full = signed_distance_map(mask, geometry)
    near = geometry.index_to_lps(np.array([[90.0, 70.0, 40.0], [95.5, 72.2, 43.1]]))
    np.testing.assert_allclose(context.signed_distance_mm("nerve", near),
                               sample_volume(full, geometry, near, fill_value=np.inf),
                               atol=1e-4)
    assert twin.cached_full_distance("nerve") is None  # no full-grid map was built
    far = geometry.index_to_lps(np.array([[5.0, 5.0, 100.0]]))
    bound = context.signed_distance_mm("nerve", far, exact=False)
    assert twin.cached_full_distance("nerve") is None
    exact = context.signed_distance_mm("nerve", far)
    np.testing.assert_allclose(exact, sample_volume(full, geometry, far, fill_value=np.inf),
                               atol=1e-4)
    assert bound[0] <= exact[0] and bound[0] >= 10.0


def test_distance_in_a_box_equals_the_full_map_there_without_building_it():
    geometry = _grid()
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    mask = _ball(geometry)
    twin.add_structure("nerve", mask, role="critical")
    twin.add_structure("nothing", np.zeros(geometry.shape_zyx, bool), role="critical")
    context = SimulationContext(twin)
    full = signed_distance_map(mask, geometry)
    for box in [(slice(30, 50), slice(60, 80), slice(80, 100)),  # around the ball
                (slice(0, 120), slice(0, 20), slice(0, 140)),  # far from it, to the grid edge
                (slice(110, 120), slice(150, 160), slice(130, 140))]:
        got = context.distance_in_box("nerve", box)
        assert got.dtype == np.float32 and not got.flags.writeable
        # Maurer's float32 sums differ by ~1e-6 relative between a region and the full grid
        np.testing.assert_allclose(got, full[box], rtol=0, atol=1e-4)
    assert twin.cached_full_distance("nerve") is None  # no full-grid map was built
    empty = context.distance_in_box("nothing", (slice(0, 2), slice(0, 3), slice(0, 4)))
    assert empty.shape == (2, 3, 4) and np.all(np.isposinf(empty))
    with pytest.raises(ValueError, match="within the grid"):
        context.distance_in_box("nerve", (slice(-1, 5), slice(0, 3), slice(0, 4)))
