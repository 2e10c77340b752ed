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


def format_lps(point_lps: Any, *, decimals: int = 1) -> str:
    """A point as patient directions, e.g. ``R 27.7  A 12.0  S 40.1 mm`` (LPS: +x left,
    +y posterior, +z superior; a negative x is to the patient's right); "—" for None."""
    if point_lps is None:
        return "—"
    parts = []
    for value, (plus, minus) in zip(np.asarray(point_lps, float).reshape(3),
                                    (("L", "R"), ("P", "A"), ("S", "I")), strict=True):
        parts.append(f"{plus if value >= 0 else minus} {abs(value):.{decimals}f}")
    return "  ".join(parts) + " mm"
