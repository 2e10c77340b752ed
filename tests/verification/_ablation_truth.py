"""Independent ground truth for the ablation simulator (no import of the plug-in).

Zones are the phantom library's exact ellipsoids (``surgiplan.phantoms.primitives``); the
tumour and the critical structures are the liver phantom's analytic shapes (truth.json); the
counts that the simulator defines on voxels (critical volumes) come from the label map with
numpy. Formulas:

* margin: if part of the tumour surface is outside the union of zones, minus the largest
  (exact, outside) signed distance of dense tumour-surface samples to the union; otherwise the
  smallest tumour signed distance over dense samples of the union's boundary (each zone's
  surface outside the other zones) — the distance from the tumour to the nearest boundary;
* coverage: share of quasi-random points of the tumour inside the union, bracketed by the
  union shrunk / grown by half a voxel (the simulator counts voxel centres);
* union volume: quasi-random points in the union's bounding box;
* clearance: positive: the structure's exact signed distance minimised over the union's
  boundary samples; otherwise the zones' signed distance (minimum over zones) minimised over
  the structure's analytic surface (label-map boundary voxels projected onto it by Newton
  steps) and over the zones' centres lying in the structure;
* heat sink: the tubes' centrelines sampled every 0.2 mm with linearly interpolated radii; the
  largest diameter >= 3 mm whose wall lies within ``reach`` of the union.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from surgiplan.phantoms.primitives import Ellipsoid, Sphere, Tube, Union


def fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z * z)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def spheroid(tip, shaft, long_mm, short_mm, offset_mm=0.0, grow_mm=0.0) -> Ellipsoid:
    """The zone of a probe: centre ``offset_mm`` back from the tip, long axis along the probe."""
    tip = np.asarray(tip, float)
    axis = tip - np.asarray(shaft, float)
    axis /= np.linalg.norm(axis)
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    semi = (short_mm / 2 + grow_mm, short_mm / 2 + grow_mm, long_mm / 2 + grow_mm)
    return Ellipsoid(tip - offset_mm * axis, semi, np.column_stack([e1, np.cross(axis, e1),
                                                                   axis]))


def union_sd(zones: list[Ellipsoid], pts: np.ndarray) -> np.ndarray:
    """min over zones of the signed distance (exact outside the union)."""
    return np.min([z.signed_distance(pts) for z in zones], axis=0)


def inside_any(zones: list[Ellipsoid], pts: np.ndarray) -> np.ndarray:
    return np.any([np.sum((z.local(pts) / z.semi_axes_mm) ** 2, axis=1) <= 1.0
                   for z in zones], axis=0)


def ellipsoid_surface(e: Ellipsoid, n: int) -> np.ndarray:
    return (fibonacci_sphere(n) * np.asarray(e.semi_axes_mm)) @ np.asarray(e.axes).T \
        + np.asarray(e.centre_lps)


def shape_surface(shape, n: int) -> np.ndarray:
    if isinstance(shape, Sphere):
        return shape.centre_lps + shape.radius_mm * fibonacci_sphere(n)
    return ellipsoid_surface(shape, n)


def union_boundary(zones: list[Ellipsoid], n: int) -> np.ndarray:
    parts = []
    for j, z in enumerate(zones):
        pts = ellipsoid_surface(z, n)
        others = [o for k, o in enumerate(zones) if k != j]
        parts.append(pts if not others else pts[~inside_any(others, pts)])
    return np.vstack(parts)


def margin_mm(tumour, zones: list[Ellipsoid], n: int = 20000) -> float:
    out = union_sd(zones, shape_surface(tumour, n)).max()
    if out > 0:
        return -float(out)
    return float(tumour.signed_distance(union_boundary(zones, n)).min())


def _box_points(lo: np.ndarray, hi: np.ndarray, m: int, seed: int) -> np.ndarray:
    return lo + (hi - lo) * qmc.Sobol(3, seed=seed).random_base2(m)


def coverage_bracket_pct(tumour, zones: list[Ellipsoid], half_voxel: float,
                         m: int = 16) -> tuple[float, float]:
    lo, hi = tumour.bounds_lps()
    pts = _box_points(lo, hi, m, 1)
    pts = pts[tumour.signed_distance(pts) < 0]
    sd = union_sd(zones, pts)
    return 100 * float(np.mean(sd < -half_voxel)), 100 * float(np.mean(sd < half_voxel))


def union_volume_ml(zones: list[Ellipsoid], m: int = 18) -> float:
    bounds = np.array([z.bounds_lps() for z in zones])
    lo, hi = bounds[:, 0].min(0), bounds[:, 1].max(0)
    pts = _box_points(lo, hi, m, 2)
    return float(np.mean(inside_any(zones, pts)) * np.prod(hi - lo) / 1000)


def volume_in_zone_ml(mask: np.ndarray, geometry, zones: list[Ellipsoid]) -> float:
    """Label-map voxels of a structure whose centres lie inside the union (ml)."""
    zyx = np.argwhere(mask)
    pts = geometry.index_to_lps(zyx[:, ::-1].astype(float))
    return float(np.count_nonzero(inside_any(zones, pts)) * geometry.voxel_volume_mm3 / 1000)


def _project(shape, pts: np.ndarray, step: float = 0.05) -> np.ndarray:
    for _ in range(4):
        d = shape.signed_distance(pts)
        grad = np.stack([(shape.signed_distance(pts + step * e)
                          - shape.signed_distance(pts - step * e)) / (2 * step)
                         for e in np.eye(3)], axis=1)
        norm2 = np.maximum(np.einsum("ij,ij->i", grad, grad), 1e-12)
        pts = pts - (d / norm2)[:, None] * grad
    return pts


def clearance_mm(shape, mask: np.ndarray, geometry, zones: list[Ellipsoid],
                 n: int = 20000) -> float:
    """min over the structure of the zones' signed distance (see the module docstring)."""
    positive = float(shape.signed_distance(union_boundary(zones, n)).min())
    if positive > 0:
        return positive
    bounds = np.array([z.bounds_lps() for z in zones])
    lo, hi = bounds[:, 0].min(0) - 3, bounds[:, 1].max(0) + 3
    from scipy import ndimage

    edge = mask & ~ndimage.binary_erosion(mask)
    pts = geometry.index_to_lps(np.argwhere(edge)[:, ::-1].astype(float))
    pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    best = float(union_sd(zones, _project(shape, pts)).min()) if len(pts) else np.inf
    for z in zones:
        if shape.signed_distance(np.asarray(z.centre_lps)[None])[0] < 0:
            best = min(best, -min(z.semi_axes_mm))
    return best


def centreline(shape, step: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Points and radii along every tube of ``shape`` (a Tube or a Union of them)."""
    tubes = [shape] if isinstance(shape, Tube) else [
        c for c in getattr(shape, "children", []) if isinstance(c, Tube)]
    pts, radii = [], []
    for t in tubes:
        for a, b, ra, rb in zip(t.points_lps[:-1], t.points_lps[1:], t.radii_mm[:-1],
                                t.radii_mm[1:], strict=True):
            s = np.linspace(0, 1, max(2, int(np.linalg.norm(b - a) / step)))
            pts.append(a + s[:, None] * (b - a))
            radii.append(ra + s * (rb - ra))
    return np.vstack(pts), np.concatenate(radii)


def heat_sink_mm(shape, zones: list[Ellipsoid], reach: float, min_diameter: float = 3.0
                 ) -> float:
    pts, radii = centreline(shape)
    near = (union_sd(zones, pts) <= radii + reach) & (2 * radii >= min_diameter)
    return float(2 * radii[near].max()) if np.any(near) else 0.0


def is_tubular(shape) -> bool:
    return isinstance(shape, Tube) or (isinstance(shape, Union) and any(
        isinstance(c, Tube) for c in shape.children))


def spheroid_depth(points: np.ndarray, centres: np.ndarray, axes: np.ndarray,
                   semi_long: np.ndarray, semi_short: np.ndarray, iters: int = 44
                   ) -> np.ndarray:
    """Signed distance (+ outside) of points (n, 3) to n spheroids, vectorised (Eberly's
    bisection for the distance from a point to an ellipse, in the plane of the axis)."""
    rel = points - centres
    t = np.abs(np.einsum("ij,ij->i", rel, axes))
    r = np.sqrt(np.maximum(np.einsum("ij,ij->i", rel, rel) - t * t, 0.0))
    swap = semi_short > semi_long
    e0 = np.where(swap, semi_short, semi_long)
    e1 = np.where(swap, semi_long, semi_short)
    y0 = np.where(swap, r, t)
    y1 = np.where(swap, t, r)
    z0, z1 = y0 / e0, y1 / e1
    g = z0 * z0 + z1 * z1 - 1.0
    r0 = (e0 / e1) ** 2
    lo = np.where(g < 0, z1 - 1.0, 0.0)
    hi = np.where(g < 0, 0.0, np.sqrt((r0 * z0) ** 2 + z1 * z1) - 1.0)
    for _ in range(iters):
        s = 0.5 * (lo + hi)
        value = (r0 * z0 / (s + r0)) ** 2 + (z1 / (s + 1.0)) ** 2 - 1.0
        lo = np.where(value > 0, s, lo)
        hi = np.where(value > 0, hi, s)
    s = 0.5 * (lo + hi)
    x0 = r0 * y0 / (s + r0)
    x1 = y1 / (s + 1.0)
    axis_case = y1 < 1e-9  # on the major axis
    inner = y0 < (e0 * e0 - e1 * e1) / e0
    ax0 = np.where(inner, e0 * e0 * y0 / np.maximum(e0 * e0 - e1 * e1, 1e-12), e0)
    ax1 = np.where(inner, e1 * np.sqrt(np.maximum(1 - (ax0 / e0) ** 2, 0.0)), 0.0)
    x0 = np.where(axis_case, ax0, x0)
    x1 = np.where(axis_case, ax1, x1)
    d = np.hypot(x0 - y0, x1 - y1)
    return np.where(g < 0, -d, d)
