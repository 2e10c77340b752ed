"""Putting a volume onto another grid (SimpleITK, direction matrices honoured); grid overlap.

Both grids are placed in LPS by their origin, spacing and direction, so resampling is a pure
change of sampling points in patient space (identity transform): a voxel lands where its LPS
position says, whatever the two grids' orientations.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.progress import CancelToken, ProgressCallback

Interpolation = Literal["linear", "nearest", "label"]


def resample_to_grid(
    array: np.ndarray,
    source: ImageGeometry,
    target: ImageGeometry,
    *,
    interpolation: Interpolation = "linear",
    default_value: float = 0,
    transform: Any = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """``array`` (on ``source``) sampled at the voxel centres of ``target``: ``target.shape_zyx``.

    ``transform``: an optional SimpleITK transform mapping target LPS mm points to source LPS mm
    points (ITK's resampling convention); None when both grids share one frame.

    ``interpolation``:

    * ``"linear"``: trilinear, for intensities; float32 result (float64 for float64 input).
    * ``"nearest"``: the nearest source voxel; keeps the dtype. Exact on matching grids.
    * ``"label"``: for label maps, SimpleITK's ``sitkLabelGaussian``: each target voxel takes
      the label with the largest Gaussian-weighted vote around it (sigma = source spacing), so
      labels are never blended into values that do not exist and boundaries do not staircase
      when the grids differ in resolution or orientation; keeps the dtype.

    Target voxels whose centre falls outside the source's voxel extent get ``default_value``.
    """
    import SimpleITK as sitk

    from surgiplan.processing.sitk_filters import execute_filter

    if array.shape != source.shape_zyx:
        raise BadInputError(
            f"array shape {array.shape} does not match its grid {source.shape_zyx}",
            action="pass the geometry the array was read with",
        )
    interpolators = {
        "linear": sitk.sitkLinear,
        "nearest": sitk.sitkNearestNeighbor,
        "label": sitk.sitkLabelGaussian,
    }
    if interpolation not in interpolators:
        raise ValueError(f"interpolation must be one of {sorted(interpolators)}")
    was_bool = array.dtype == bool
    data = array.view(np.uint8) if was_bool else array
    out_dtype: np.dtype = data.dtype
    if interpolation == "linear":
        out_dtype = np.dtype(np.float64 if data.dtype == np.float64 else np.float32)
    image = source.to_sitk(data)
    filt = sitk.ResampleImageFilter()
    filt.SetSize([int(n) for n in target.size])
    filt.SetOutputSpacing(target.spacing_mm)
    filt.SetOutputOrigin(target.origin_lps)
    filt.SetOutputDirection(tuple(float(v) for v in target.direction.reshape(-1)))
    if transform is not None:
        filt.SetTransform(transform)
    filt.SetInterpolator(interpolators[interpolation])
    filt.SetDefaultPixelValue(float(default_value))
    filt.SetOutputPixelType(sitk.GetImageFromArray(np.zeros((1, 1, 1), out_dtype)).GetPixelID())
    result = execute_filter(filt, image, progress=progress, cancel=cancel, text="resampling")
    out = sitk.GetArrayFromImage(result)
    return out.astype(bool) if was_bool else out


def overlap_fraction(a: ImageGeometry, b: ImageGeometry) -> float:
    """Fraction (0..1) of ``a``'s voxel extent (its oriented box) that lies inside ``b``'s.

    Exact for any pair of orientations: the intersection of the two boxes is a convex polytope
    whose volume is computed from its half-space description (scipy / Qhull).
    """
    from scipy.optimize import linprog
    from scipy.spatial import ConvexHull, HalfspaceIntersection

    halfspaces = np.vstack([_box_halfspaces(a), _box_halfspaces(b)])
    normals, offsets = halfspaces[:, :3], halfspaces[:, 3]
    # Chebyshev centre: the deepest interior point; no room inside means no overlap.
    norms = np.linalg.norm(normals, axis=1)
    cost = np.array([0.0, 0.0, 0.0, -1.0])
    bounds = [(None, None)] * 3 + [(0, None)]
    lp = linprog(cost, A_ub=np.column_stack([normals, norms]), b_ub=-offsets, bounds=bounds)
    if not lp.success or lp.x[3] <= 1e-9 * max(1.0, float(np.abs(offsets).max())):
        return 0.0
    corners = HalfspaceIntersection(halfspaces, lp.x[:3]).intersections
    volume_a = float(np.prod(np.asarray(a.size) * np.asarray(a.spacing_mm)))
    return float(min(1.0, ConvexHull(corners).volume / volume_a))


def _box_halfspaces(g: ImageGeometry) -> np.ndarray:
    """The 6 half-spaces ``n . p + c <= 0`` (rows ``[n, c]``) bounding a grid's voxel extent."""
    rows = []
    origin = np.asarray(g.origin_lps)
    for axis in range(3):
        u = g.direction[:, axis]
        low = -0.5 * g.spacing_mm[axis]
        high = (g.size[axis] - 0.5) * g.spacing_mm[axis]
        # u . (p - origin) >= low  and  u . (p - origin) <= high
        rows.append(np.append(-u, u @ origin + low))
        rows.append(np.append(u, -(u @ origin) - high))
    return np.array(rows)
