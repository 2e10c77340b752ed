"""Paint/erase brushes: a 3D sphere or a 2D disc on an index plane, radius in mm.

A voxel belongs to the brush when its centre lies within ``radius_mm`` of the brush centre
(Euclidean, in LPS mm, so the shape is round on anisotropic and oblique grids). A disc keeps
the voxels of the one index plane (0=i, 1=j, 2=k normal) nearest to the centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import box_from_ijk
from surgiplan.segmentation.region import MaskRegion, clip_box


def _check_radius(radius_mm: float) -> float:
    if not np.isfinite(radius_mm) or radius_mm <= 0:
        raise BadInputError(f"brush radius must be a positive number of mm, got {radius_mm}",
                            action="give a radius such as 5 mm")
    return float(radius_mm)


def _ball(geometry: ImageGeometry, centre_lps: Sequence[float] | np.ndarray, radius_mm: float,
          flat_axis: int | None) -> MaskRegion | None:
    """Voxels within ``radius_mm`` of the centre; ``flat_axis`` keeps one plane of that axis."""
    radius_mm = _check_radius(radius_mm)
    centre_ijk = geometry.lps_to_index(np.asarray(centre_lps, dtype=float))
    reach = np.ceil(radius_mm / np.asarray(geometry.spacing_mm)).astype(int)
    near = np.rint(centre_ijk).astype(int)
    lo, hi = near - reach, near + reach + 1
    if flat_axis is not None:
        lo[flat_axis], hi[flat_axis] = near[flat_axis], near[flat_axis] + 1
    box = clip_box(box_from_ijk(lo, hi), geometry.shape_zyx)
    if box is None:
        return None
    k, j, i = np.meshgrid(*(np.arange(b.start, b.stop) for b in box), indexing="ij")
    offset = np.stack([i, j, k], axis=-1) - centre_ijk
    if flat_axis is not None:
        offset[..., flat_axis] = 0.0  # distance within the plane
    offset_lps = (offset * np.asarray(geometry.spacing_mm)) @ geometry.direction.T
    inside = np.einsum("...i,...i->...", offset_lps, offset_lps) <= radius_mm**2
    return MaskRegion(box, inside) if inside.any() else None


def sphere_region(geometry: ImageGeometry, centre_lps: Sequence[float] | np.ndarray,
                  radius_mm: float) -> MaskRegion | None:
    """Voxels whose centre is within ``radius_mm`` of ``centre_lps``; None if off the grid."""
    return _ball(geometry, centre_lps, radius_mm, None)


def disc_region(geometry: ImageGeometry, centre_lps: Sequence[float], radius_mm: float, *,
                axis: int) -> MaskRegion | None:
    """A disc on the index plane normal to ``axis`` (0=i, 1=j, 2=k) nearest ``centre_lps``.

    In-plane distances are measured from the centre's projection onto that plane.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (i), 1 (j) or 2 (k), got {axis}")
    return _ball(geometry, centre_lps, radius_mm, axis)


def stroke_regions(geometry: ImageGeometry, points_lps: Sequence[Sequence[float]],
                   radius_mm: float, *, axis: int | None = None) -> list[MaskRegion]:
    """Dabs along a mouse stroke, spaced at most half a radius apart (no gaps)."""
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    dabs = [pts[0]] if len(pts) else []
    for a, b in pairwise(pts):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / (0.5 * radius_mm))))
        dabs += [a + (b - a) * t for t in np.linspace(0, 1, n + 1)[1:]]
    out = []
    for p in dabs:
        region = sphere_region(geometry, p, radius_mm) if axis is None else disc_region(
            geometry, p, radius_mm, axis=axis)
        if region is not None:
            out.append(region)
    return out
