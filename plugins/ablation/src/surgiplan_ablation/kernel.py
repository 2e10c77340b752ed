"""The compiled scoring kernel (numba): many composite ablation zones against one scene.

Zone geometry: each probe's zone is a prolate spheroid (centre ``c``, unit axis ``u``, semi-axes
``a`` along and ``b`` across the axis). For a point ``p``: ``t = (p - c).u`` and
``r = |(p - c) - t u|``; its signed distance to the spheroid (mm, + outside) is the signed
distance of ``(|t|, r)`` to the ellipse with semi-axes ``(a, b)``, found by the trig-free
iteration of the evolute method (each step projects onto the osculating circle; converges for
points inside and outside). A composite zone is the union of its probes' zones: inside if
inside any; its signed distance is the minimum over probes (exact outside the union; inside it
is the depth below the deepest single zone, a lower bound of the true depth, so margins of
overlapping zones are conservative).

Per candidate ``i`` with tumour-boundary offset ``e_i`` (mm, Monte Carlo):

* coverage: % of tumour sample points (signed distance to the tumour ``s < e_i``) inside the
  zone;
* margin: ``min over tumour-surface points q of (-sd_zone(q)) - e_i`` (mm, negative when part
  of the tumour is outside the zone) and the index of the minimising point; when several
  zones hold the whole tumour, the depth below the deepest single zone understates the
  union's depth, so the margin is then the distance from the tumour to the union's boundary:
  the minimum of the tumour's distance map (trilinear) over each zone's surface (2000
  Fibonacci directions) where it lies outside the other zones, minus ``e_i``;
* critical counts: per critical structure, its voxel centres inside the zone;
* heat sink: per vessel structure, the largest centreline diameter ``2 rho`` among centreline
  points whose vessel wall lies within ``reach`` mm of the zone (``sd_zone(centre) <= rho +
  reach``; the heat-sink window, evidence.py);
* clearance: per critical structure, the minimum of the zone's signed distance over its
  clearance points (voxel centres and surface points).
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]
_KERNEL_LOCK = threading.Lock()
_ITERATIONS = 6
_N_DIRS = 2000


def _fibonacci(m: int) -> np.ndarray:
    i = np.arange(m) + 0.5
    z = 1.0 - 2.0 * i / m
    phi = np.pi * (1.0 + 5 ** 0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.ascontiguousarray(np.column_stack([r * np.cos(phi), r * np.sin(phi), z]))


_DIRS = _fibonacci(_N_DIRS)


@njit(cache=True, fastmath=True, inline="always")
def ellipse_signed_distance(px, py, a, b):  # pragma: no cover - compiled
    """Signed distance (+ outside) of the point (px, py) to the ellipse x²/a² + y²/b² = 1."""
    px = abs(px)
    py = abs(py)
    tx = 0.7071067811865476
    ty = 0.7071067811865476
    for _ in range(_ITERATIONS):
        x = a * tx
        y = b * ty
        ex = (a * a - b * b) * tx * tx * tx / a
        ey = (b * b - a * a) * ty * ty * ty / b
        rx = x - ex
        ry = y - ey
        qx = px - ex
        qy = py - ey
        rr = np.sqrt(rx * rx + ry * ry)
        q = max(np.sqrt(qx * qx + qy * qy), 1e-12)
        tx = min(1.0, max(0.0, (qx * rr / q + ex) / a))
        ty = min(1.0, max(0.0, (qy * rr / q + ey) / b))
        t = max(np.sqrt(tx * tx + ty * ty), 1e-12)
        tx /= t
        ty /= t
    dx = px - a * tx
    dy = py - b * ty
    d = np.sqrt(dx * dx + dy * dy)
    if (px / a) ** 2 + (py / b) ** 2 < 1.0:
        return -d
    return d


@njit(cache=True, fastmath=True, inline="always")
def _local(p0, p1, p2, c, u):  # pragma: no cover - compiled
    d0 = p0 - c[0]
    d1 = p1 - c[1]
    d2 = p2 - c[2]
    t = d0 * u[0] + d1 * u[1] + d2 * u[2]
    r2 = max(d0 * d0 + d1 * d1 + d2 * d2 - t * t, 0.0)
    return t, r2


@njit(cache=True, fastmath=True)
def _union_sd(p, centres, axes, sa, sb):  # pragma: no cover - compiled
    best = np.inf
    for j in range(centres.shape[0]):
        t, r2 = _local(p[0], p[1], p[2], centres[j], axes[j])
        d = ellipse_signed_distance(t, np.sqrt(r2), sa[j], sb[j])
        if d < best:
            best = d
    return best


@njit(cache=True, fastmath=True)
def _union_sd_upper(p, centres, axes, sa, sb):  # pragma: no cover - compiled
    """A cheap upper bound of :func:`_union_sd`: the zone is the unit ball scaled by (b, b, a),
    so with ``rho`` the scaled radius, ``sd <= (rho - 1) min(a, b)`` inside and
    ``sd <= (rho - 1) max(a, b)`` outside."""
    best = np.inf
    for j in range(centres.shape[0]):
        t, r2 = _local(p[0], p[1], p[2], centres[j], axes[j])
        rho = np.sqrt(t * t / (sa[j] * sa[j]) + r2 / (sb[j] * sb[j]))
        scale = min(sa[j], sb[j]) if rho < 1.0 else max(sa[j], sb[j])
        best = min(best, (rho - 1.0) * scale)
    return best


@njit(cache=True, fastmath=True)
def _union_sd_lower(p, centres, axes, sa, sb):  # pragma: no cover - compiled
    """A cheap lower bound of :func:`_union_sd` (see :func:`_union_sd_upper`): ``(rho - 1)``
    times ``max(a, b)`` inside and ``min(a, b)`` outside."""
    best = np.inf
    for j in range(centres.shape[0]):
        t, r2 = _local(p[0], p[1], p[2], centres[j], axes[j])
        rho = np.sqrt(t * t / (sa[j] * sa[j]) + r2 / (sb[j] * sb[j]))
        if rho < 1.0:
            bound = (rho - 1.0) * max(sa[j], sb[j])
        else:  # also: no nearer than the bounding sphere
            bound = max((rho - 1.0) * min(sa[j], sb[j]),
                        np.sqrt(t * t + r2) - max(sa[j], sb[j]))
        best = min(best, bound)
    return best


@njit(cache=True, fastmath=True)
def _union_inside(p, centres, axes, sa, sb):  # pragma: no cover - compiled
    for j in range(centres.shape[0]):
        t, r2 = _local(p[0], p[1], p[2], centres[j], axes[j])
        if t * t / (sa[j] * sa[j]) + r2 / (sb[j] * sb[j]) <= 1.0:
            return True
    return False


@njit(cache=True, fastmath=True)
def _trilinear(vol, f0, f1, f2):  # pragma: no cover - compiled
    """``vol`` (nz, ny, nx) at continuous index (i, j, k) = (f0, f1, f2); +inf off the grid."""
    nz, ny, nx = vol.shape
    if not (0.0 <= f0 <= nx - 1 and 0.0 <= f1 <= ny - 1 and 0.0 <= f2 <= nz - 1):
        return np.inf
    i0 = min(int(f0), nx - 2) if nx > 1 else 0
    j0 = min(int(f1), ny - 2) if ny > 1 else 0
    k0 = min(int(f2), nz - 2) if nz > 1 else 0
    x = f0 - i0
    y = f1 - j0
    z = f2 - k0
    i1 = min(i0 + 1, nx - 1)
    j1 = min(j0 + 1, ny - 1)
    k1 = min(k0 + 1, nz - 1)
    c00 = vol[k0, j0, i0] * (1 - x) + vol[k0, j0, i1] * x
    c01 = vol[k0, j1, i0] * (1 - x) + vol[k0, j1, i1] * x
    c10 = vol[k1, j0, i0] * (1 - x) + vol[k1, j0, i1] * x
    c11 = vol[k1, j1, i0] * (1 - x) + vol[k1, j1, i1] * x
    return (c00 * (1 - y) + c01 * y) * (1 - z) + (c10 * (1 - y) + c11 * y) * z


@njit(cache=True, fastmath=True)
def _union_boundary_margin(c, u, a, b, e, dirs, t_map, to_index):  # pragma: no cover
    """min over the union's boundary of the tumour's signed distance, minus ``e``: the margin
    of a tumour inside a composite zone (each zone's surface, sampled along ``dirs``, where it
    is not inside another zone)."""
    best = np.inf
    k = c.shape[0]
    for j in range(k):
        ax = u[j]
        h = 0
        if abs(ax[1]) < abs(ax[h]):
            h = 1
        if abs(ax[2]) < abs(ax[h]):
            h = 2
        hv = np.zeros(3)
        hv[h] = 1.0
        e1 = np.cross(ax, hv)
        e1 /= np.sqrt(e1[0] ** 2 + e1[1] ** 2 + e1[2] ** 2)
        e2 = np.cross(ax, e1)
        for m in range(dirs.shape[0]):
            p = c[j] + b[j] * dirs[m, 0] * e1 + b[j] * dirs[m, 1] * e2 + a[j] * dirs[m, 2] * ax
            covered = False
            for o in range(k):
                if o != j:
                    t, r2 = _local(p[0], p[1], p[2], c[o], u[o])
                    if t * t / (a[o] * a[o]) + r2 / (b[o] * b[o]) < 1.0 - 1e-9:
                        covered = True
                        break
            if covered:
                continue
            f = to_index[:, :3] @ p + to_index[:, 3]
            value = _trilinear(t_map, f[0], f[1], f[2])
            if value < best:
                best = value
    return best - e


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _score(centres, axes, sa, sb, offsets, t_pts, t_sd, s_pts, c_pts, c_idx, v_pts, v_rad,
           v_idx, reach, k_pts, k_idx, dirs, t_map, to_index, out_cov, out_margin, out_arg,
           out_counts, out_heat, out_clear):  # pragma: no cover
    for i in prange(centres.shape[0]):
        c, u, a, b, e = centres[i], axes[i], sa[i], sb[i], offsets[i]
        total = 0
        hit = 0
        for m in range(t_pts.shape[0]):  # sorted by t_sd (scene.py)
            if t_sd[m] >= e:
                break
            total += 1
            if _union_inside(t_pts[m], c, u, a, b):
                hit += 1
        out_cov[i] = 100.0 * hit / total if total > 0 else np.nan
        worst = -np.inf  # the largest zone signed distance over the tumour surface
        arg = -1
        for m in range(s_pts.shape[0]):
            if _union_sd_upper(s_pts[m], c, u, a, b) <= worst:
                continue
            sd = _union_sd(s_pts[m], c, u, a, b)
            if sd > worst:
                worst = sd
                arg = m
        out_margin[i] = -worst - e
        out_arg[i] = arg
        if c.shape[0] > 1 and out_margin[i] >= 0.0 and t_map.size > 0:
            exact = _union_boundary_margin(c, u, a, b, e, dirs, t_map, to_index)
            if exact < np.inf:
                out_margin[i] = exact
        for s in range(out_counts.shape[1]):
            out_counts[i, s] = 0
        for m in range(c_pts.shape[0]):
            if _union_inside(c_pts[m], c, u, a, b):
                out_counts[i, c_idx[m]] += 1
        for s in range(out_heat.shape[1]):
            out_heat[i, s] = 0.0
        for m in range(v_pts.shape[0]):
            if 2.0 * v_rad[m] <= out_heat[i, v_idx[m]]:
                continue
            if _union_sd_lower(v_pts[m], c, u, a, b) > v_rad[m] + reach:
                continue
            if _union_sd(v_pts[m], c, u, a, b) <= v_rad[m] + reach:
                out_heat[i, v_idx[m]] = 2.0 * v_rad[m]
        for s in range(out_clear.shape[1]):
            out_clear[i, s] = np.inf
        for m in range(k_pts.shape[0]):
            s = k_idx[m]
            if _union_sd_lower(k_pts[m], c, u, a, b) >= out_clear[i, s]:
                continue
            sd = _union_sd(k_pts[m], c, u, a, b)
            if sd < out_clear[i, s]:
                out_clear[i, s] = sd


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _signed_distance(points, centres, axes, sa, sb, out):  # pragma: no cover - compiled
    for m in prange(points.shape[0]):
        out[m] = _union_sd(points[m], centres, axes, sa, sb)


def zone_signed_distance(points_lps: np.ndarray, centres: np.ndarray, axes: np.ndarray,
                         semi_long_mm: np.ndarray, semi_short_mm: np.ndarray) -> np.ndarray:
    """Signed distance (mm, + outside) of LPS points (m, 3) to one composite zone (k probes)."""
    pts = np.ascontiguousarray(np.asarray(points_lps, float).reshape(-1, 3))
    out = np.empty(len(pts))
    with _KERNEL_LOCK:
        _signed_distance(pts, *(np.ascontiguousarray(x, dtype=float) for x in
                                (np.atleast_2d(centres), np.atleast_2d(axes),
                                 np.atleast_1d(semi_long_mm), np.atleast_1d(semi_short_mm))),
                         out)
    return out


def score_zones(batch, offsets_mm: np.ndarray, scene, *, heat_reach_mm: float = 10.0
                ) -> dict[str, np.ndarray]:
    """Run :func:`_score` for a :class:`~surgiplan_ablation.zone.ZoneBatch` on a scene.

    Returns arrays over candidates: ``coverage_pct`` (n,), ``margin_mm`` (n,),
    ``margin_arg`` (n,) index into ``scene.surface_lps``, ``critical_voxels`` (n, n_critical),
    ``heat_sink_mm`` (n, n_vessels), ``clearance_mm`` (n, n_critical) (+inf: no points).
    """
    n = len(batch)
    out = {"coverage_pct": np.empty(n), "margin_mm": np.empty(n),
           "margin_arg": np.empty(n, np.int64),
           "critical_voxels": np.empty((n, len(scene.critical_names)), np.int64),
           "heat_sink_mm": np.empty((n, len(scene.vessel_names))),
           "clearance_mm": np.empty((n, len(scene.critical_names)))}
    with _KERNEL_LOCK:
        _score(batch.centres_lps, batch.axes_lps, batch.semi_long_mm, batch.semi_short_mm,
               np.ascontiguousarray(offsets_mm, dtype=float), scene.tumour_lps, scene.tumour_sd,
               scene.surface_lps, scene.critical_lps, scene.critical_index, scene.vessel_lps,
               scene.vessel_radius_mm, scene.vessel_index, float(heat_reach_mm),
               scene.clearance_lps, scene.clearance_index, _DIRS, scene.tumour_map,
               scene.map_to_index, out["coverage_pct"],
               out["margin_mm"], out["margin_arg"], out["critical_voxels"],
               out["heat_sink_mm"], out["clearance_mm"])
    if scene.critical_masks:
        out["clearance_mm"] = np.minimum(out["clearance_mm"], scene.centre_depth_mm(
            batch.centres_lps, batch.semi_short_mm))
    return out
