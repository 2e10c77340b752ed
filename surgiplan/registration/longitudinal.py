"""Following a patient over time: a structure at baseline (the twin's reference) against the
same structure on a registered follow-up series, both on the reference grid (LPS mm).

Volume change: millilitres at each time point, change (ml, %). Growth map: at every voxel of
the follow-up structure's surface, the signed distance (mm) to the baseline structure's
surface, positive where the structure grew outward, negative where it shrank inward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.distance import signed_distance_map
from surgiplan.progress import CancelToken, ProgressCallback


@dataclass(frozen=True)
class StructureChange:
    """How one structure changed between baseline and follow-up (reference grid)."""

    name: str
    baseline_ml: float
    followup_ml: float
    max_growth_mm: float  # largest outward move of the surface (>= 0 when it grew anywhere)
    max_shrink_mm: float  # largest inward move, as a positive number
    mean_surface_change_mm: float  # mean signed distance over the follow-up surface

    @property
    def change_ml(self) -> float:
        return self.followup_ml - self.baseline_ml

    @property
    def change_percent(self) -> float | None:
        return None if self.baseline_ml == 0 else 100.0 * self.change_ml / self.baseline_ml

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "baseline_ml": self.baseline_ml,
                "followup_ml": self.followup_ml, "change_ml": self.change_ml,
                "change_percent": self.change_percent, "max_growth_mm": self.max_growth_mm,
                "max_shrink_mm": self.max_shrink_mm,
                "mean_surface_change_mm": self.mean_surface_change_mm}


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def growth_map_mm(baseline: np.ndarray, followup: np.ndarray, geometry: ImageGeometry, *,
                  progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> np.ndarray:
    """Signed distance (float32 mm) from the baseline surface at the follow-up surface voxels,
    NaN elsewhere: positive = grown outward, negative = shrunk inward."""
    distance = signed_distance_map(baseline, geometry, progress=progress, cancel=cancel)
    out = np.full(geometry.shape_zyx, np.nan, dtype=np.float32)
    surface = surface_voxels(followup)
    out[surface] = distance[surface]
    return out


def structure_change(name: str, baseline: np.ndarray, followup: np.ndarray,
                     geometry: ImageGeometry) -> StructureChange:
    """Volumes and surface movement of one structure (masks on the reference grid)."""
    voxel_ml = geometry.voxel_volume_mm3 / 1000.0
    growth = growth_map_mm(baseline, followup, geometry)
    values = growth[np.isfinite(growth)]
    return StructureChange(
        name=name, baseline_ml=float(np.count_nonzero(baseline) * voxel_ml),
        followup_ml=float(np.count_nonzero(followup) * voxel_ml),
        max_growth_mm=float(max(values.max(), 0.0)) if values.size else 0.0,
        max_shrink_mm=float(max(-values.min(), 0.0)) if values.size else 0.0,
        mean_surface_change_mm=float(values.mean()) if values.size else 0.0)
