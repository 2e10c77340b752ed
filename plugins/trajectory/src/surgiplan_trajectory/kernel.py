"""The compiled path-scoring kernel (numba): many straight paths against one distance map.

For path ``i`` from ``entries[i]`` to ``targets[i]`` (LPS mm), ``n_samples`` equally spaced
axis points ``p(t)``, ``t = 0 .. 1`` (both ends included), are sampled trilinearly in a signed
distance map ``d`` (mm, + outside). With the tool radius ``r`` and a per-path boundary offset
``e`` (mm, Monte Carlo boundary uncertainty), the clearance at a point is
``c(t) = d(p(t)) + e - r`` (tool surface to structure surface, negative = inside). Outputs:

* ``min_clearance[i] = min_t c(t)`` and ``t_at_min[i]`` (the closest point is ``p(t_at_min)``);
* ``risk[i] = mean_t w(c(t))`` with ``w(c) = 1`` for ``c <= 0``, ``(B - c) / B`` for
  ``0 < c < B`` and ``0`` beyond the band ``B`` (mm): the path-length-normalised,
  distance-weighted risk integral ``(1/L) * integral_0^L w(c(s)) ds`` of EpiNav (Zombori G et
  al., IPCAI 2014, LNCS 8498:118-127; Sparks R et al., Int J CARS 2017;12(1):123-136),
  in [0, 1]: 0 = never within the band, 1 = inside the structure all along.

Points outside the grid's voxel extent are ignored (unknown anatomy, treated as far away).
Paths are independent, so the loop runs in parallel (``prange``) without locks. Numba's
threading layer is chosen fork-safe (tbb, else workqueue; GNU OpenMP aborts a forked child, see
the runner's process isolation), and calls are serialised: workqueue is not thread-safe, and
one call already uses every core.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]
_KERNEL_LOCK = threading.Lock()

N_SAMPLES = 161  # axis samples per path: 0.5 mm steps on an 80 mm path


@njit(cache=True, fastmath=True, inline="always")
def _trilinear(dist, z, y, x):  # pragma: no cover - compiled
    nz, ny, nx = dist.shape
    z = min(max(z, 0.0), nz - 1.0)
    y = min(max(y, 0.0), ny - 1.0)
    x = min(max(x, 0.0), nx - 1.0)
    z0 = min(int(z), max(nz - 2, 0))
    y0 = min(int(y), max(ny - 2, 0))
    x0 = min(int(x), max(nx - 2, 0))
    z1 = min(z0 + 1, nz - 1)
    y1 = min(y0 + 1, ny - 1)
    x1 = min(x0 + 1, nx - 1)
    fz, fy, fx = z - z0, y - y0, x - x0
    c00 = dist[z0, y0, x0] * (1 - fx) + dist[z0, y0, x1] * fx
    c01 = dist[z0, y1, x0] * (1 - fx) + dist[z0, y1, x1] * fx
    c10 = dist[z1, y0, x0] * (1 - fx) + dist[z1, y0, x1] * fx
    c11 = dist[z1, y1, x0] * (1 - fx) + dist[z1, y1, x1] * fx
    c0 = c00 * (1 - fy) + c01 * fy
    c1 = c10 * (1 - fy) + c11 * fy
    return c0 * (1 - fz) + c1 * fz


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _score(dist, m, entries, targets, offsets, n_samples, radius, band,
           out_min, out_t, out_risk):  # pragma: no cover - compiled
    nz, ny, nx = dist.shape
    last = max(n_samples - 1, 1)
    for i in prange(entries.shape[0]):
        e0, e1, e2 = entries[i, 0], entries[i, 1], entries[i, 2]
        g0, g1, g2 = targets[i, 0], targets[i, 1], targets[i, 2]
        az = m[0, 0] * e0 + m[0, 1] * e1 + m[0, 2] * e2 + m[0, 3]  # LPS -> (z, y, x) index
        ay = m[1, 0] * e0 + m[1, 1] * e1 + m[1, 2] * e2 + m[1, 3]
        ax = m[2, 0] * e0 + m[2, 1] * e1 + m[2, 2] * e2 + m[2, 3]
        dz = m[0, 0] * g0 + m[0, 1] * g1 + m[0, 2] * g2 + m[0, 3] - az
        dy = m[1, 0] * g0 + m[1, 1] * g1 + m[1, 2] * g2 + m[1, 3] - ay
        dx = m[2, 0] * g0 + m[2, 1] * g1 + m[2, 2] * g2 + m[2, 3] - ax
        best = np.inf
        best_t = 0.0
        risk = 0.0
        shift = offsets[i] - radius
        for s in range(n_samples):
            t = s / last
            z = az + t * dz
            y = ay + t * dy
            x = ax + t * dx
            if z < -0.5 or y < -0.5 or x < -0.5 or z > nz - 0.5 or y > ny - 0.5 or x > nx - 0.5:
                continue
            c = _trilinear(dist, z, y, x) + shift
            if c < best:
                best = c
                best_t = t
            if c <= 0.0:
                risk += 1.0
            elif c < band:
                risk += (band - c) / band
        out_min[i] = best
        out_t[i] = best_t
        out_risk[i] = risk / n_samples


def lps_to_zyx_matrix(geometry) -> np.ndarray:
    """3x4 matrix taking (L, P, S, 1) mm to continuous (z, y, x) voxel indices."""
    return np.ascontiguousarray(geometry.lps_to_index_matrix[:3][::-1])


def score_paths(
    distance_map: np.ndarray,
    lps_to_zyx: np.ndarray,
    entries_lps: np.ndarray,
    targets_lps: np.ndarray,
    *,
    radius_mm: float,
    band_mm: float,
    offsets_mm: np.ndarray | None = None,
    n_samples: int = N_SAMPLES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min_clearance_mm, t_at_min, risk) for each path (see the module docstring).

    ``entries_lps``/``targets_lps``: (n, 3), or a single (3,) point broadcast to all paths.
    """
    entries = np.ascontiguousarray(np.atleast_2d(entries_lps), dtype=np.float64)
    targets = np.atleast_2d(np.asarray(targets_lps, dtype=np.float64))
    n = max(entries.shape[0], targets.shape[0])
    entries = np.ascontiguousarray(np.broadcast_to(entries, (n, 3)))
    targets = np.ascontiguousarray(np.broadcast_to(targets, (n, 3)))
    offsets = np.zeros(n) if offsets_mm is None else np.ascontiguousarray(offsets_mm, float)
    out_min, out_t, out_risk = np.empty(n), np.empty(n), np.empty(n)
    with _KERNEL_LOCK:
        _score(distance_map, np.asarray(lps_to_zyx, np.float64), entries, targets, offsets,
               int(n_samples), float(radius_mm), float(band_mm), out_min, out_t, out_risk)
    return out_min, out_t, out_risk
