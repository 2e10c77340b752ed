"""Islands (connected components, 6-connected) of a mask: keep largest, keep clicked, drop small."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import bounding_box


def _labelled(mask: np.ndarray):
    """(box, labels, sizes) of the mask's islands within its bounding box; None if empty."""
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return None
    labels, n = ndimage.label(mask[box])
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return box, labels, sizes


def _keep(mask: np.ndarray, box, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = np.zeros(np.shape(mask), dtype=bool)
    out[box] = keep[labels]
    return out


def keep_largest_island(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected island of ``mask`` (empty stays empty)."""
    found = _labelled(mask)
    if found is None:
        return np.zeros(np.shape(mask), dtype=bool)
    box, labels, sizes = found
    keep = np.zeros(sizes.size, dtype=bool)
    keep[int(np.argmax(sizes))] = True
    return _keep(mask, box, labels, keep)


def keep_island_at(mask: np.ndarray, geometry: ImageGeometry,
                   point_lps: Sequence[float]) -> np.ndarray:
    """The island containing the voxel nearest ``point_lps`` (LPS mm)."""
    ijk = np.rint(geometry.lps_to_index(np.asarray(point_lps, dtype=float))).astype(int)
    zyx = tuple(int(v) for v in ijk[::-1])
    inside_grid = all(0 <= v < n for v, n in zip(zyx, geometry.shape_zyx, strict=True))
    if not inside_grid or not mask[zyx]:
        raise BadInputError("the clicked point is not inside the structure",
                            action="click inside the island to keep")
    box, labels, _sizes = _labelled(mask)
    local = tuple(v - b.start for v, b in zip(zyx, box, strict=True))
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[labels[local]] = True
    return _keep(mask, box, labels, keep)


def remove_small_islands(mask: np.ndarray, geometry: ImageGeometry, *,
                         min_volume_mm3: float) -> np.ndarray:
    """``mask`` without the islands smaller than ``min_volume_mm3``."""
    if not np.isfinite(min_volume_mm3) or min_volume_mm3 < 0:
        raise BadInputError(f"the minimum island volume must be >= 0 mm3, got {min_volume_mm3}",
                            action="give a volume such as 100 mm3")
    found = _labelled(mask)
    if found is None:
        return np.zeros(np.shape(mask), dtype=bool)
    box, labels, sizes = found
    keep = sizes * geometry.voxel_volume_mm3 >= min_volume_mm3
    keep[0] = False
    return _keep(mask, box, labels, keep)
