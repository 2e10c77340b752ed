"""Sub-voxel signed distance to a labelled structure (mm, positive outside), for margins,
margin-rule specimens and vessel sections.

Why not the twin's distance map: that map puts the zero level half of the *largest* spacing
beyond the last voxel centre, so on a 1 x 1 x 1.5 mm grid it reads about 0.43 mm short outside a
round structure (measured on the liver phantom's tumours against their analytic spheres): a
10 mm tumour margin taken from it removed 8 % too much liver, and vessels read up to 1.3 mm
thin. Here the label is resampled (linear, in index space scaled by the spacing, so any
direction matrix is honoured) onto a fine isotropic grid over a region of interest, smoothed
with a Gaussian of SD half the largest spacing (it removes the staircase of the voxel faces),
thresholded at 0.5 (the surface half-way between inside and outside centres) and given an exact
Euclidean distance (scipy) with the fine grid's half-step centring. Points outside the region
of interest get ``+inf``. The fine cells sit half a step off the label's voxel centres (a step
of a quarter of the smallest spacing then puts every half-way plane between two fine centres:
no quantisation bias on grid-aligned faces). :func:`target_distance` nests a grid of a quarter
of the smallest spacing within
:data:`NEAR_MM` of the structure in a 0.5 mm one reaching :data:`FAR_MM`. Measured on the liver
phantom's tumours (1 x 1 x 1.5 mm grid): the liver volume within 3, 5 and 10 mm of the label's
surface is that within the analytic sphere's to +2.4, +1.8 and +1.3 % (tumour 1; tumour 2 +2.4,
+0.7, +0.5 %); pointwise error SD 0.15 mm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry

MAX_FINE_VOXELS = 6_000_000  # the fine grid's step grows so that it holds at most this many
NEAR_MM = 12.0  # the 0.25 mm grid reaches this far from the structure
FAR_MM = 31.0  # the 0.5 mm grid reaches this far


class SmoothDistance:
    """Signed distance (mm, + outside) to ``mask``'s smoothed surface within ``pad_mm`` of it.

    ``box_zyx`` ((lo, hi) voxel indices, hi exclusive) limits the region of interest further
    (e.g. around one vessel section). Call with LPS points ``(N, 3)``.
    """

    def __init__(self, mask: np.ndarray, geometry: ImageGeometry, *, pad_mm: float,
                 step_mm: float | None = None,
                 box_zyx: tuple[np.ndarray, np.ndarray] | None = None,
                 sigma_mm: float | None = None) -> None:
        self.geometry = geometry
        self.spacing_zyx = np.asarray(geometry.spacing_mm[::-1], float)
        found = np.argwhere(mask) if box_zyx is None else None
        if box_zyx is None and found.size == 0:
            raise ValueError("empty mask")
        pad = np.ceil(pad_mm / self.spacing_zyx).astype(int) + 2
        if box_zyx is None:
            lo, hi = found.min(0) - pad, found.max(0) + 1 + pad
        else:
            lo, hi = np.asarray(box_zyx[0]), np.asarray(box_zyx[1])
        self.lo = np.maximum(lo, 0)
        hi = np.minimum(hi, mask.shape)
        sub = np.ascontiguousarray(mask[tuple(slice(a, b) for a, b in zip(self.lo, hi,
                                                                           strict=True))])
        extent = (np.asarray(sub.shape) - 1) * self.spacing_zyx
        if step_mm is None:
            step_mm = max(min(self.spacing_zyx) / 2.0,
                          float(np.prod(extent + 1e-9) / MAX_FINE_VOXELS) ** (1 / 3))
        self.step = float(step_mm)
        shape = np.floor(extent / self.step).astype(int) + 1
        axes = [(np.arange(n) + 0.5) * self.step / s for n, s in zip(shape, self.spacing_zyx,
                                                                      strict=True)]
        fine = _resample(sub.astype(np.float32), axes)
        sigma = (max(self.spacing_zyx) / 2.0 if sigma_mm is None else sigma_mm) / self.step
        inside = ndimage.gaussian_filter(fine, sigma, mode="nearest") >= 0.5
        half = self.step / 2.0
        if inside.all() or not inside.any():
            self.values = np.full(inside.shape, -math.inf if inside.all() else math.inf,
                                  np.float32)
        else:
            out = ndimage.distance_transform_edt(~inside, sampling=self.step)
            into = _inside_distance(inside, self.step)
            self.values = np.where(inside, half - into, out - half).astype(np.float32)

    def __call__(self, points_lps: Any) -> np.ndarray:
        pts = np.asarray(points_lps, float).reshape(-1, 3)
        ijk = self.geometry.lps_to_index(pts)
        fine = (ijk[:, ::-1] - self.lo) * self.spacing_zyx / self.step - 0.5
        limit = np.asarray(self.values.shape) - 1
        ok = np.all((fine >= 0) & (fine <= limit), axis=1)
        out = np.full(len(pts), np.inf)
        if ok.any():
            out[ok] = ndimage.map_coordinates(self.values, fine[ok].T, order=1)
        return out


def _inside_distance(inside: np.ndarray, step_mm: float) -> np.ndarray:
    """``distance_transform_edt(inside)`` (mm; 0 outside) computed on the inside cells' box
    grown by one cell only: an inside cell's nearest outside cell lies in that box (the
    nearest point of the box to any outside cell beyond it is an outside cell no farther)."""
    found = np.argwhere(inside)
    lo = np.maximum(found.min(0) - 1, 0)
    hi = np.minimum(found.max(0) + 2, inside.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    out = np.zeros(inside.shape)
    out[box] = ndimage.distance_transform_edt(inside[box], sampling=step_mm)
    return out


def _resample(sub: np.ndarray, axes: list[np.ndarray]) -> np.ndarray:
    """Trilinear values of ``sub`` at the outer product of fractional index ``axes`` (z, y, x),
    separably (one 1-D linear interpolation per axis)."""
    out = sub
    for axis, coords in enumerate(axes):
        base = np.clip(np.floor(coords).astype(int), 0, out.shape[axis] - 1)
        nxt = np.minimum(base + 1, out.shape[axis] - 1)
        w = (coords - base).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        out = np.take(out, base, axis=axis) * (1 - w) + np.take(out, nxt, axis=axis) * w
    return out


class NestedDistance:
    """The first finite value of several :class:`SmoothDistance` s (finest first)."""

    def __init__(self, levels: list[SmoothDistance]) -> None:
        self.levels = levels

    @property
    def step(self) -> float:
        return self.levels[0].step

    def __call__(self, points_lps: Any) -> np.ndarray:
        pts = np.asarray(points_lps, float).reshape(-1, 3)
        out = self.levels[0](pts)
        for level in self.levels[1:]:
            missing = ~np.isfinite(out)
            if not missing.any():
                break
            out[missing] = level(pts[missing])
        return out


def target_distance(mask: np.ndarray, geometry: ImageGeometry, *,
                    far_mm: float = FAR_MM) -> NestedDistance:
    """A target's sub-voxel distance: 0.25 mm steps within :data:`NEAR_MM`, 0.5 mm to
    ``far_mm`` (coarser only where a grid would exceed :data:`MAX_FINE_VOXELS`)."""
    step = min(geometry.spacing_mm) / 4.0
    near = SmoothDistance(mask, geometry, pad_mm=_pad(mask, geometry, NEAR_MM, step),
                          step_mm=step)
    far = SmoothDistance(mask, geometry, pad_mm=far_mm, step_mm=_step(mask, geometry, far_mm,
                                                                       0.5))
    return NestedDistance([near, far])


def _pad(mask: np.ndarray, geometry: ImageGeometry, pad_mm: float, step_mm: float) -> float:
    """``pad_mm``, or less so that the padded box holds at most :data:`MAX_FINE_VOXELS`."""
    found = np.argwhere(mask)
    extent = (found.max(0) - found.min(0)) * np.asarray(geometry.spacing_mm[::-1])
    for pad in np.arange(pad_mm, 0.0, -1.0):
        if np.prod((extent + 2 * pad + 4 * max(geometry.spacing_mm)) / step_mm) <= \
                MAX_FINE_VOXELS:
            return float(pad)
    return 1.0


def _step(mask: np.ndarray, geometry: ImageGeometry, pad_mm: float, wanted_mm: float) -> float:
    """``wanted_mm``, or the step that keeps the padded box within :data:`MAX_FINE_VOXELS`."""
    found = np.argwhere(mask)
    extent = (found.max(0) - found.min(0)) * np.asarray(geometry.spacing_mm[::-1]) + 2 * pad_mm
    return max(wanted_mm, float(np.prod(extent) / MAX_FINE_VOXELS) ** (1 / 3))


def surface_measure(mask: np.ndarray, geometry: ImageGeometry, *,
                    step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The label's surface as weighted points: LPS centres of fine cells and weights (mm2)
    summing to its area. Co-area formula: the volume integral of the gradient magnitude of the
    label's smoothed indicator (resampled and smoothed as in :class:`SmoothDistance`) is the
    mean area of its level sets, that of the half-way surface to first order."""
    spacing = np.asarray(geometry.spacing_mm[::-1], float)
    found = np.argwhere(mask)
    lo = np.maximum(found.min(0) - 3, 0)
    hi = np.minimum(found.max(0) + 4, mask.shape)
    sub = mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))].astype(np.float32)
    shape = np.floor((np.asarray(sub.shape) - 1) * spacing / step_mm).astype(int) + 1
    axes = [np.arange(n) * step_mm / s for n, s in zip(shape, spacing, strict=True)]
    smooth = ndimage.gaussian_filter(_resample(sub, axes), max(spacing) / 2.0 / step_mm,
                                     mode="constant")
    grad = np.sqrt(sum(g * g for g in np.gradient(smooth, step_mm)))
    cells = np.argwhere(grad > 1e-4 * grad.max())
    zyx = lo + cells * step_mm / spacing
    return geometry.index_to_lps(zyx[:, ::-1]), grad[tuple(cells.T)] * step_mm ** 3
