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
