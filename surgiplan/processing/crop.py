"""Bounding boxes of masks and the sub-grids (crops) they define, in numpy (z, y, x) order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.label_layer import Box, LabelLayer, nonzero_box

#: Smallest ``(z, y, x)`` slices holding every True (non-zero) voxel of a 3D mask; None if empty.
bounding_box = nonzero_box


def box_from_ijk(lo_ijk: Sequence[int] | np.ndarray, hi_ijk: Sequence[int] | np.ndarray) -> Box:
    """The ``(z, y, x)`` box of voxel indices ``lo_ijk <= (i, j, k) < hi_ijk``."""
    return (slice(int(lo_ijk[2]), int(hi_ijk[2])), slice(int(lo_ijk[1]), int(hi_ijk[1])),
            slice(int(lo_ijk[0]), int(hi_ijk[0])))


def union_box(boxes: Sequence[Box | None]) -> Box | None:
    """Smallest box holding every given box (None entries are ignored)."""
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    z, y, x = (slice(min(b[a].start for b in real), max(b[a].stop for b in real))
               for a in range(3))
    return z, y, x


def pad_box(box: Box, pad_zyx: Sequence[int] | np.ndarray,
            shape_zyx: Sequence[int] | None = None) -> Box:
    """``box`` grown by ``pad_zyx`` voxels on each side, clipped to ``shape_zyx`` when given."""
    out = []
    for a in range(3):
        start, stop = box[a].start - int(pad_zyx[a]), box[a].stop + int(pad_zyx[a])
        if shape_zyx is not None:
            start, stop = max(0, start), min(int(shape_zyx[a]), stop)
        out.append(slice(start, stop))
    return (out[0], out[1], out[2])


def margin_voxels_zyx(geometry: ImageGeometry, margin_mm: float) -> tuple[int, int, int]:
    """Whole voxels per (z, y, x) axis needed to cover ``margin_mm`` (rounded up)."""
    sx, sy, sz = geometry.spacing_mm
    z, y, x = (int(np.ceil(max(0.0, margin_mm) / s - 1e-9)) for s in (sz, sy, sx))
    return z, y, x


def sub_geometry(geometry: ImageGeometry, box: Box) -> ImageGeometry:
    """Geometry of the crop ``array[box]``: same spacing and direction, shifted origin.

    ``box`` may reach outside the grid (a padded crop): the origin is then extrapolated.
    """
    start_ijk = np.array([box[2].start, box[1].start, box[0].start], dtype=float)
    size = (box[2].stop - box[2].start, box[1].stop - box[1].start, box[0].stop - box[0].start)
    origin = geometry.index_to_lps(start_ijk)
    return ImageGeometry(size, geometry.spacing_mm, tuple(origin), geometry.direction)


def crop_padded(array: np.ndarray | LabelLayer, box: Box, fill: int | float = 0
                ) -> np.ndarray:
    """``array[box]`` where the parts of ``box`` outside the array are filled with ``fill``."""
    inner = tuple(
        slice(max(0, b.start), min(n, b.stop)) for b, n in zip(box, array.shape, strict=True)
    )
    pads = [
        (i.start - b.start, b.stop - i.stop) for b, i in zip(box, inner, strict=True)
    ]
    part = array[inner]
    if not any(p for pair in pads for p in pair):
        return part
    return np.pad(part, pads, mode="constant", constant_values=fill)
