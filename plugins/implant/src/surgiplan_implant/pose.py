"""Rigid 4x4 poses placing an implant (its own frame, mm) in patient LPS (mm)."""

from __future__ import annotations

from typing import Any

import numpy as np

from surgiplan.errors import BadInputError


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pose_from_axis(head_lps: Any, tip_lps: Any, *, lateral_hint_lps: Any = (1.0, 0.0, 0.0),
                   ) -> np.ndarray:
    """4x4 pose with the implant origin at ``head_lps`` and its +z axis towards ``tip_lps``.

    The implant's +x axis is ``lateral_hint_lps`` made perpendicular to the axis (patient left
    by default; any fixed roll for a screw, which is symmetric about z).
    """
    head, tip = np.asarray(head_lps, float), np.asarray(tip_lps, float)
    axis = tip - head
    if not np.all(np.isfinite(axis)) or np.linalg.norm(axis) < 1e-6:
        raise BadInputError("the entry and the target are the same point",
                            action="give a target away from the entry")
    z = _unit(axis)
    hint = np.asarray(lateral_hint_lps, float)
    if abs(float(hint @ z)) > 0.95 * np.linalg.norm(hint):
        hint = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
    x = _unit(hint - (hint @ z) * z)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, np.cross(z, x), z, head
    return pose


def poses_from_axes(heads_lps: np.ndarray, tips_lps: np.ndarray,
                    reference_pose: np.ndarray) -> np.ndarray:
    """(n, 4, 4) poses moving ``reference_pose`` so its origin is at each head, +z to each tip.

    Each is the reference rotated by the smallest rotation taking its axis onto the new one
    (Rodrigues), so the roll about the axis is kept (Monte Carlo placement draws).
    """
    z0 = reference_pose[:3, 2]
    z1 = _unit(np.asarray(tips_lps, float) - np.asarray(heads_lps, float))
    v = np.cross(z0, z1)
    c = z1 @ z0
    k = np.zeros((len(z1), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    factor = (1.0 / (1.0 + np.maximum(c, -1.0 + 1e-9)))[:, None, None]
    rot = np.eye(3)[None] + k + factor * (k @ k)
    poses = np.tile(np.eye(4), (len(z1), 1, 1))
    poses[:, :3, :3] = rot @ reference_pose[:3, :3]
    poses[:, :3, 3] = heads_lps
    return poses


def apply_pose(pose: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Implant-frame points (..., 3) mm -> LPS mm."""
    return np.asarray(points_mm, float) @ pose[:3, :3].T + pose[:3, 3]


def parse_pose(values: Any) -> np.ndarray:
    """16 numbers (row-major) -> a checked rigid 4x4 pose (``BadInputError`` otherwise)."""
    try:
        m = np.asarray(values, dtype=float).reshape(4, 4)
    except ValueError:
        raise BadInputError("a pose needs 16 numbers (a row-major 4x4 matrix)",
                            action="give --pose with 16 numbers") from None
    if not np.all(np.isfinite(m)) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise BadInputError("the pose's last row must be 0 0 0 1",
                            action="give a rigid row-major 4x4 matrix, LPS mm")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
        raise BadInputError("the pose is not a rigid rotation + translation",
                            action="give an orthonormal rotation with determinant +1")
    return m
