"""Independent reference values for the trajectory simulator (numpy/scipy and the phantom's
analytic shapes only; nothing here calls the plug-in's code).

Conventions as the simulator states them: clearance = min over the axis of the structure's
signed distance (mm, + outside) minus the tool radius; risk = mean over ``n`` equally spaced
axis points of w(c) (1 inside, (B - c)/B within the band B, 0 beyond); entry angle = angle
between the path direction and the inward skin normal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

HEAD_CENTRE_LPS = np.array([2.0, 12.0, 40.0])
SCALP_SEMI_MM = np.array([74.0, 94.0, 88.0])
BRAIN_HALF_BOX_MM = np.array([35.0, 50.0, 40.0])

Distance = Callable[[np.ndarray], np.ndarray]  # (..., 3) LPS points -> signed distance mm


def axis_points(entries: np.ndarray, targets: np.ndarray, n: int) -> np.ndarray:
    """(m, n, 3) equally spaced points from each entry to its target (both ends included)."""
    t = np.linspace(0.0, 1.0, n)[None, :, None]
    entries, targets = np.atleast_2d(entries), np.atleast_2d(targets)
    return entries[:, None, :] + t * (targets - entries)[:, None, :]


def clearance_mm(distance: Distance, entries, targets, radius_mm: float, n: int,
                 offsets_mm: np.ndarray | float = 0.0) -> np.ndarray:
    """Min over the axis of (signed distance + offset) - radius, per path."""
    axis = axis_points(entries, targets, n)
    d = distance(axis.reshape(-1, 3)).reshape(axis.shape[:2])
    return d.min(axis=1) + offsets_mm - radius_mm


def segment_to_point_mm(entries: np.ndarray, targets: np.ndarray,
                        point: np.ndarray) -> np.ndarray:
    """Exact distance (mm) from each straight segment entry -> target to one point."""
    d = targets - entries
    t = np.clip(np.einsum("ij,ij->i", point - entries, d) / np.einsum("ij,ij->i", d, d), 0, 1)
    return np.linalg.norm(entries + t[:, None] * d - point, axis=1)


def risk(distance: Distance, entries, targets, radius_mm: float, band_mm: float, n: int,
         offsets_mm: np.ndarray | float = 0.0) -> np.ndarray:
    """The distance-weighted risk integral (mean of w over ``n`` axis points), per path."""
    axis = axis_points(entries, targets, n)
    c = distance(axis.reshape(-1, 3)).reshape(axis.shape[:2]) - radius_mm
    c = c + np.reshape(offsets_mm, (-1, 1))
    return np.clip((band_mm - c) / band_mm, 0.0, 1.0).mean(axis=1)


def outward_normal(distance: Distance, points_lps: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Unit gradient of an exact signed distance (the outward normal of the nearest surface)."""
    points = np.atleast_2d(points_lps)
    grad = np.stack([(distance(points + h * e) - distance(points - h * e)) / (2 * h)
                     for e in np.eye(3)], axis=1)
    return grad / np.linalg.norm(grad, axis=1, keepdims=True)


def entry_angle_deg(entries, targets, outward_normals) -> np.ndarray:
    """Angle (deg) between entry -> target and the inward normal."""
    d = np.atleast_2d(targets) - np.atleast_2d(entries)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    cos = -np.einsum("ij,ij->i", d, np.atleast_2d(outward_normals))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def outside_edt_mm(mask: np.ndarray, spacing_xyz: tuple[float, float, float]) -> np.ndarray:
    """Euclidean distance (mm) from each outside voxel centre to the nearest inside centre."""
    return ndimage.distance_transform_edt(~mask, sampling=tuple(spacing_xyz)[::-1])


def sample_zyx(volume: np.ndarray, index_xyz: np.ndarray) -> np.ndarray:
    """Trilinear samples of a (z, y, x) volume at continuous (x, y, z) indices."""
    return ndimage.map_coordinates(volume, np.asarray(index_xyz)[:, ::-1].T, order=1,
                                   mode="nearest")


def head_plans(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random plans: entry exactly on the analytic scalp ellipsoid, target inside the brain."""
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(n):
        u = rng.normal(size=3)
        u[2] = abs(u[2]) + 0.2  # upper head: the scalp's underside is the neck, not drilled
        entry = HEAD_CENTRE_LPS + SCALP_SEMI_MM * u / np.linalg.norm(u)
        target = HEAD_CENTRE_LPS + rng.uniform(-1, 1, 3) * BRAIN_HALF_BOX_MM
        plans.append((entry, target))
    return plans

