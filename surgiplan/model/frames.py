"""LPS <-> RAS, the one world-frame conversion (done only at file boundaries: NIfTI, 3D Slicer
RAS markups, RAS mesh exports).

Both frames are right-handed, in millimetres: RAS is DICOM patient LPS with x and y negated,
so the same map converts either way (it is its own inverse).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LPS_RAS_SIGNS = np.array([-1.0, -1.0, 1.0])  # per-axis signs taking LPS to RAS and back
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # the same as a 4x4 homogeneous matrix


def lps_to_ras(points_lps: Any) -> np.ndarray:
    """Points ``(..., 3)`` in LPS mm as RAS mm (a new float array)."""
    return np.asarray(points_lps, dtype=float) * LPS_RAS_SIGNS


def ras_to_lps(points_ras: Any) -> np.ndarray:
    """Points ``(..., 3)`` in RAS mm as LPS mm (a new float array)."""
    return np.asarray(points_ras, dtype=float) * LPS_RAS_SIGNS
