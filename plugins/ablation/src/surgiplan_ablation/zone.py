"""Ablation zones: prolate ellipsoids around probe axes, one per probe; several probes make a
composite zone (their union).

A probe runs from ``shaft_lps`` (a point on the shaft, toward the entry) to ``tip_lps``. Its
zone has diameter ``long_mm`` along the axis and ``short_mm`` across it, and its centre lies
``tip_offset_mm`` back from the tip along the shaft (device table, see devices.py).

A :class:`ZoneBatch` holds ``n`` candidate composite zones of ``k`` probes each as arrays, the
form the scoring kernel (kernel.py) takes: centres (n, k, 3) LPS mm, unit axes (n, k, 3),
semi-axes ``semi_long_mm``/``semi_short_mm`` (n, k) mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkFiltersSources import vtkSphereSource

from surgiplan_ablation.devices import ZoneSize


@dataclass(frozen=True)
class Zone:
    """One probe's zone: centre (LPS mm), unit axis (shaft -> tip), semi-axes (mm)."""

    centre_lps: tuple[float, float, float]
    axis_lps: tuple[float, float, float]
    semi_long_mm: float
    semi_short_mm: float

    @classmethod
    def from_probe(cls, tip_lps, shaft_lps, size: ZoneSize) -> Zone:
        tip = np.asarray(tip_lps, float)
        axis = tip - np.asarray(shaft_lps, float)
        axis /= np.linalg.norm(axis)
        centre = tip - size.tip_offset_mm * axis
        return cls(tuple(centre), tuple(axis), size.long_mm / 2.0, size.short_mm / 2.0)

    @property
    def volume_ml(self) -> float:
        return 4.0 / 3.0 * np.pi * self.semi_long_mm * self.semi_short_mm ** 2 / 1000.0

    def rotation(self) -> np.ndarray:
        """3x3 matrix whose columns are two short axes and the long axis (LPS)."""
        return _frame(np.asarray(self.axis_lps, float))

    def bounds_lps(self) -> np.ndarray:
        """(2, 3) axis-aligned box (min, max) around the zone, mm."""
        scaled = self.rotation() * np.array([self.semi_short_mm, self.semi_short_mm,
                                             self.semi_long_mm])
        half = np.linalg.norm(scaled, axis=1)
        centre = np.asarray(self.centre_lps)
        return np.vstack([centre - half, centre + half])

    def mesh(self, *, resolution: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """A closed triangle mesh of the zone: (vertices LPS mm (N, 3), faces (M, 3))."""
        source = vtkSphereSource()
        source.SetRadius(1.0)
        source.SetThetaResolution(resolution)
        source.SetPhiResolution(resolution)
        source.Update()
        poly = source.GetOutput()
        unit = vtk_to_numpy(poly.GetPoints().GetData()).astype(float)
        cells = vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
        scale = np.array([self.semi_short_mm, self.semi_short_mm, self.semi_long_mm])
        vertices = (unit * scale) @ self.rotation().T + np.asarray(self.centre_lps)
        return vertices, cells.astype(np.int64)


def _frame(axis: np.ndarray) -> np.ndarray:
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    return np.column_stack([e1, e2, axis])


@dataclass(frozen=True)
class ZoneBatch:
    """``n`` composite zones of ``k`` probes: arrays for the kernel (see module docstring)."""

    centres_lps: np.ndarray
    axes_lps: np.ndarray
    semi_long_mm: np.ndarray
    semi_short_mm: np.ndarray

    @classmethod
    def of(cls, zones: list[list[Zone]]) -> ZoneBatch:
        """From ``zones[i]`` = the probes' zones of candidate ``i`` (same count for each)."""
        return cls(np.array([[z.centre_lps for z in c] for c in zones], float),
                   np.array([[z.axis_lps for z in c] for c in zones], float),
                   np.array([[z.semi_long_mm for z in c] for c in zones], float),
                   np.array([[z.semi_short_mm for z in c] for c in zones], float))

    @classmethod
    def from_probes(cls, tips_lps: np.ndarray, shafts_lps: np.ndarray, long_mm: np.ndarray,
                    short_mm: np.ndarray, tip_offset_mm: np.ndarray) -> ZoneBatch:
        """Vectorised :meth:`Zone.from_probe`: tips/shafts (n, k, 3), sizes (n, k) mm."""
        tips = np.asarray(tips_lps, float)
        axes = tips - np.asarray(shafts_lps, float)
        axes = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
        centres = tips - np.asarray(tip_offset_mm, float)[..., None] * axes
        return cls(np.ascontiguousarray(centres), np.ascontiguousarray(axes),
                   np.ascontiguousarray(np.asarray(long_mm, float) / 2.0),
                   np.ascontiguousarray(np.asarray(short_mm, float) / 2.0))

    def __len__(self) -> int:
        return int(self.centres_lps.shape[0])

    def zones(self, i: int) -> list[Zone]:
        return [Zone(tuple(self.centres_lps[i, j]), tuple(self.axes_lps[i, j]),
                     float(self.semi_long_mm[i, j]), float(self.semi_short_mm[i, j]))
                for j in range(self.centres_lps.shape[1])]


def fibonacci_directions(m: int) -> np.ndarray:
    """``m`` near-uniform unit vectors (Fibonacci lattice), (m, 3)."""
    i = np.arange(m) + 0.5
    z = 1.0 - 2.0 * i / m
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def union_volume_ml(batch: ZoneBatch, *, n_dirs: int = 4000, chunk: int = 64) -> np.ndarray:
    """Volume (ml) of each composite zone: the union of its probes' spheroids, (n,).

    One probe: ``4/3 pi a b^2``. Several: the divergence theorem over the union's boundary,
    ``V = 1/3 sum_j integral over the part of zone j's surface outside the other zones of
    x . n dA``; with ``x = c + A u`` (``A = R diag(b, b, a)``, ``u`` on the unit sphere) the
    vector area element is ``det(A) A^-T u dOmega``, integrated over ``n_dirs`` Fibonacci
    directions (overlaps are counted once, unlike the sum of the spheroids).
    """
    a, b = batch.semi_long_mm, batch.semi_short_mm
    single = 4.0 / 3.0 * np.pi * a * b * b / 1000.0
    if batch.centres_lps.shape[1] == 1:
        return single[:, 0]
    u = fibonacci_directions(n_dirs)
    out = np.empty(len(batch))
    for start in range(0, len(batch), chunk):
        sl = slice(start, start + chunk)
        out[sl] = _union_chunk(batch.centres_lps[sl], batch.axes_lps[sl], a[sl], b[sl], u)
    return out / 1000.0


def _frames(axes: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices (columns e1, e2, axis) for unit axes (..., 3)."""
    helper = np.eye(3)[np.argmin(np.abs(axes), axis=-1)]
    e1 = np.cross(axes, helper)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e2 = np.cross(axes, e1)
    return np.stack([e1, e2, axes], axis=-1)


def _union_chunk(centres, axes, a, b, u) -> np.ndarray:
    rot = _frames(axes)  # (n, k, 3, 3)
    scale = np.stack([b, b, a], axis=-1)  # (n, k, 3)
    origin = centres.mean(axis=1, keepdims=True)
    local = u[None, None] * scale[:, :, None, :]  # (n, k, m, 3) in each zone's frame
    pts = np.einsum("nkij,nkmj->nkmi", rot, local) + centres[:, :, None, :]
    keep = np.ones(pts.shape[:3], bool)
    k = centres.shape[1]
    for j in range(k):
        for other in range(k):
            if other == j:
                continue
            rel = pts[:, j] - centres[:, other, None, :]
            q = np.einsum("nmi,ni->nm", rel, axes[:, other])
            r2 = np.einsum("nmi,nmi->nm", rel, rel) - q * q
            inside = q * q / a[:, other, None] ** 2 + r2 / b[:, other, None] ** 2 < 1.0
            keep[:, j] &= ~inside
    det = (a * b * b)[:, :, None]  # (n, k, 1)
    normal_local = u[None, None] / scale[:, :, None, :]  # A^-T u in the zone frame
    normal = np.einsum("nkij,nkmj->nkmi", rot, normal_local)
    flux = np.einsum("nkmi,nkmi->nkm", pts - origin[:, :, None, :], normal) * det
    return (flux * keep).sum(axis=(1, 2)) * (4.0 * np.pi / len(u)) / 3.0


def zones_in_image(batch: ZoneBatch, geometry, *, grow_mm: float = 0.0) -> np.ndarray:
    """Whether every probe's zone, grown by ``grow_mm``, lies inside the image (n,) bool.

    Along each image axis ``d`` a spheroid reaches ``sqrt(b^2 + (a^2 - b^2) (d.u)^2)`` from its
    centre; the image spans its voxels' outer faces.
    """
    direction = np.asarray(geometry.direction, float)
    spacing = np.asarray(geometry.spacing_mm, float)
    size = np.asarray(geometry.size, float)
    centres = batch.centres_lps.reshape(-1, 3)
    idx = geometry.lps_to_index(centres).reshape(batch.centres_lps.shape)
    cos = np.einsum("nki,ij->nkj", batch.axes_lps, direction)
    a = batch.semi_long_mm[..., None]
    b = batch.semi_short_mm[..., None]
    reach = (np.sqrt(b * b + (a * a - b * b) * cos * cos) + grow_mm) / spacing
    ok = (idx - reach >= -0.5) & (idx + reach <= size - 0.5)
    return ok.all(axis=(1, 2))
