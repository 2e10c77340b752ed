"""Scissors: cut a mask by a polygon drawn in a view, extruded along the view normal.

The polygon is given as LPS points (mm) in the view plane and the view normal as an LPS
vector; the cut region is every voxel whose centre projects (along the normal) inside the
polygon, through the whole volume or within ``depth_mm = (near, far)``: the signed distance
(mm) from the polygon plane along the normal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.path import Path

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry


def _plane_frame(polygon_lps: Any, normal_lps: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, 2x3 in-plane basis, unit normal) of the polygon's plane."""
    poly = np.asarray(polygon_lps, dtype=float).reshape(-1, 3)
    if poly.shape[0] < 3 or not np.all(np.isfinite(poly)):
        raise BadInputError("a scissors polygon needs at least 3 finite points",
                            action="draw a closed outline in a view")
    n = np.asarray(normal_lps, dtype=float).reshape(3)
    norm = np.linalg.norm(n)
    if not np.isfinite(norm) or norm < 1e-9:
        raise BadInputError("the scissors view normal is zero", action="draw in a 2D or 3D view")
    n = n / norm
    helper = np.eye(3)[int(np.argmin(np.abs(n)))]
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    return poly.mean(axis=0), np.stack([e1, e2]), n


def polygon_prism_mask(geometry: ImageGeometry, polygon_lps: Any, normal_lps: Any, *,
                       depth_mm: tuple[float, float] | None = None) -> np.ndarray:
    """Voxels whose centre projects inside the polygon along ``normal_lps`` (full grid)."""
    origin, basis, n = _plane_frame(polygon_lps, normal_lps)
    flat = (np.asarray(polygon_lps, float).reshape(-1, 3) - origin) @ basis.T
    outline = Path(flat)
    lo2, hi2 = flat.min(axis=0), flat.max(axis=0)
    nz, ny, nx = geometry.shape_zyx
    j, i = np.mgrid[0:ny, 0:nx]
    out = np.zeros(geometry.shape_zyx, dtype=bool)
    for k in range(nz):
        ijk = np.stack([i.ravel(), j.ravel(), np.full(i.size, k)], axis=1)
        rel = geometry.index_to_lps(ijk) - origin
        uv = rel @ basis.T
        hit = np.all((uv >= lo2) & (uv <= hi2), axis=1)
        if depth_mm is not None:
            t = rel @ n
            hit &= (t >= min(depth_mm)) & (t <= max(depth_mm))
        if hit.any():
            inside = np.zeros(hit.size, dtype=bool)
            inside[hit] = outline.contains_points(uv[hit])
            out[k] = inside.reshape(ny, nx)
    return out


def cut_with_polygon(mask: np.ndarray, geometry: ImageGeometry, polygon_lps: Any,
                     normal_lps: Any, *, remove: str = "inside",
                     depth_mm: tuple[float, float] | None = None) -> np.ndarray:
    """``mask`` without the voxels inside (or outside) the extruded polygon."""
    if remove not in ("inside", "outside"):
        raise BadInputError(f"scissors can remove 'inside' or 'outside', got {remove!r}",
                            action="pick inside or outside")
    prism = polygon_prism_mask(geometry, polygon_lps, normal_lps, depth_mm=depth_mm)
    mask = np.asarray(mask, dtype=bool)
    return mask & ~prism if remove == "inside" else mask & prism
