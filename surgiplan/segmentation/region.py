"""A boolean sub-mask placed in the image grid by a ``(z, y, x)`` box: the unit of local edits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from surgiplan.processing.crop import Box, bounding_box


@dataclass(frozen=True)
class MaskRegion:
    """``mask`` (bool, shape of the box) holds the voxels ``array[box]`` of a full-grid mask.

    The box lies inside the grid (``start >= 0``, ``stop <= n``); voxels outside it are False.
    """

    box: Box
    mask: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(s.stop - s.start for s in self.box)
        if self.mask.shape != shape or self.mask.dtype != bool:
            raise ValueError(f"region mask must be bool of shape {shape}, got "
                             f"{self.mask.dtype} {self.mask.shape}")

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> MaskRegion | None:
        """The region of a full-grid boolean mask cropped to its bounding box (None if empty)."""
        box = bounding_box(mask)
        if box is None:
            return None
        return cls(box, np.ascontiguousarray(mask[box], dtype=bool))

    @property
    def voxel_count(self) -> int:
        return int(np.count_nonzero(self.mask))

    def to_full(self, shape_zyx: Sequence[int]) -> np.ndarray:
        """The full-grid boolean mask of shape ``shape_zyx``."""
        out = np.zeros(tuple(shape_zyx), dtype=bool)
        out[self.box] = self.mask
        return out


def clip_box(box: Box, shape_zyx: Sequence[int]) -> Box | None:
    """``box`` clipped to ``[0, n)`` per axis; None when nothing is left."""
    out = []
    for b, n in zip(box, shape_zyx, strict=True):
        start, stop = max(0, b.start), min(int(n), b.stop)
        if stop <= start:
            return None
        out.append(slice(start, stop))
    return (out[0], out[1], out[2])
