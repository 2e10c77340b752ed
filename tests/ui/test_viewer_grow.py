"""Region growing as the viewer uses it: Apply adds exactly what the preview showed, and
background seeds separate an organ from a touching neighbour of the same intensity."""

from __future__ import annotations

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.region_grow import RegionGrowPreview, region_grow


def two_organs() -> tuple[np.ndarray, ImageGeometry]:
    """Two 60 HU balls (radius 10 mm) in -100 HU fat, touching through a 4 mm bridge."""
    geo = ImageGeometry((80, 40, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    k, j, i = np.indices(geo.shape_zyx)
    left = (i - 25) ** 2 + (j - 20) ** 2 + (k - 20) ** 2 <= 100
    right = (i - 55) ** 2 + (j - 20) ** 2 + (k - 20) ** 2 <= 100
    bridge = (abs(j - 20) <= 2) & (abs(k - 20) <= 2) & (i > 25) & (i < 55)
    image = np.where(left | right | bridge, 60, -100).astype(np.int16)
    rng = np.random.default_rng(1)
    return (image + rng.normal(0, 3, image.shape)).astype(np.int16), geo


def test_background_seeds_keep_the_neighbour_out():
    image, geo = two_organs()
    seed, other = [[25.0, 20.0, 20.0]], [[55.0, 20.0, 20.0]]
    flooded = region_grow(image, geo, seed, lower=40, upper=80).to_full(geo.shape_zyx)
    assert flooded[20, 20, 55]  # without background seeds: both organs
    kept = region_grow(image, geo, seed, lower=40, upper=80,
                       background_lps=other).to_full(geo.shape_zyx)
    assert kept[20, 20, 25] and not kept[20, 20, 55]
    assert 0.8 * 4 / 3 * np.pi * 1000 < kept.sum() < 1.6 * 4 / 3 * np.pi * 1000


def test_apply_adds_exactly_what_the_preview_showed():
    image, geo = two_organs()
    preview = RegionGrowPreview(image, geo, budget_s=0.0, start_radius_mm=12.0)
    result = preview.update([[25.0, 20.0, 20.0]], lower=40, upper=80)
    assert not result.complete  # it leaks through the bridge: stopped at the box
    applied = preview.commit([[25.0, 20.0, 20.0]], lower=40, upper=80)
    assert np.array_equal(applied.to_full(geo.shape_zyx), result.region.to_full(geo.shape_zyx))
