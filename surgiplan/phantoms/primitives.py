"""Analytic shapes with signed distance in LPS millimetres (positive outside, negative inside).

Every shape evaluates ``signed_distance(points_lps)`` on an ``(N, 3)`` array and returns ``(N,)``
distances in mm. The distance is *exact* (to << 0.01 mm) where the shape says so:

* :class:`Sphere`, :class:`Ellipsoid`, :class:`Box`, :class:`Cylinder`,
  :class:`EllipticCylinder`: exact everywhere.
* :class:`Shell` (nested ellipsoids, inner strictly inside outer): exact everywhere.
* :class:`Tube` (round cones along a polyline): exact outside; inside exact for a single
  segment, and a bound (closer to zero than the truth) where segments meet.
* :class:`Union`: exact outside, a bound inside. :class:`Intersection` and :class:`Difference`:
  exact inside, a bound outside.

A *bound* always has the right sign and never exceeds the true distance in magnitude, and every
value here is 1-Lipschitz, so a renderer may safely skip regions where ``|d|`` is large.
``exact_inside`` / ``exact_outside`` say which side is exact. Shapes serialise with
``to_json()`` and :func:`shape_from_json`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.spatial.transform import Rotation

_NEWTON_MAX_ITER = 200


def _vec3(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be 3 finite numbers, got {values!r}")
    return arr


def _rotation(axes: Any) -> np.ndarray:
    """A 3x3 orthonormal matrix whose columns are the shape's local axes in LPS."""
    rot = np.eye(3) if axes is None else np.asarray(axes, dtype=float).reshape(3, 3)
    if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6):
        raise ValueError("axes must be orthonormal (columns are the local axes in LPS)")
    return rot


def _points(points_lps: Any) -> np.ndarray:
    pts = np.asarray(points_lps, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    return pts


def _list(arr: np.ndarray) -> list:
    return np.asarray(arr, dtype=float).tolist()


class Shape(ABC):
    """A solid in LPS mm with a signed distance function."""

    kind: ClassVar[str] = ""
    exact_inside: bool = True
    exact_outside: bool = True

    @abstractmethod
    def signed_distance(self, points_lps: Any) -> np.ndarray:
        """Signed distance (mm) of ``(N, 3)`` LPS points: > 0 outside, < 0 inside."""

    @abstractmethod
    def bounds_lps(self) -> np.ndarray:
        """Axis-aligned LPS bounding box ``[[minL, minP, minS], [maxL, maxP, maxS]]`` (mm)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The JSON-ready parameters of this shape (without ``type``)."""

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        """A cheap value with the sign of the signed distance and ``|value| <= |distance|``.

        Renderers use it to skip the exact solve far from the surface. Default: the distance.
        """
        return self.signed_distance(points_lps)

    def volume_mm3(self) -> float | None:
        """Analytic volume in mm^3, or None where it has no simple closed form."""
        return None

    def contains(self, points_lps: Any) -> np.ndarray:
        """True where a point is inside or on the surface."""
        return self.signed_distance(points_lps) <= 0.0

    @property
    def exact(self) -> bool:
        return self.exact_inside and self.exact_outside

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, **self.params()}


# --------------------------------------------------------------------------- solids
class Sphere(Shape):
    kind = "sphere"

    def __init__(self, centre_lps: Any, radius_mm: float) -> None:
        self.centre_lps = _vec3(centre_lps, "centre_lps")
        self.radius_mm = float(radius_mm)
        if self.radius_mm <= 0:
            raise ValueError(f"radius_mm must be positive, got {radius_mm}")

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        return np.linalg.norm(_points(points_lps) - self.centre_lps, axis=1) - self.radius_mm

    def bounds_lps(self) -> np.ndarray:
        return np.stack([self.centre_lps - self.radius_mm, self.centre_lps + self.radius_mm])

    def volume_mm3(self) -> float:
        return 4.0 / 3.0 * np.pi * self.radius_mm**3

    def params(self) -> dict[str, Any]:
        return {"centre_lps": _list(self.centre_lps), "radius_mm": self.radius_mm}


class Ellipsoid(Shape):
    """Ellipsoid with semi-axes ``semi_axes_mm`` along the columns of ``axes`` (LPS).

    The distance is the exact Euclidean distance to the surface, found by solving the
    closest-point problem (Eberly, "Distance from a point to an ellipsoid") with a safeguarded
    Newton/bisection iteration on the Lagrange parameter, including the degenerate cases.
    """

    kind = "ellipsoid"

    def __init__(self, centre_lps: Any, semi_axes_mm: Any, axes: Any = None) -> None:
        self.centre_lps = _vec3(centre_lps, "centre_lps")
        self.semi_axes_mm = _vec3(semi_axes_mm, "semi_axes_mm")
        if np.any(self.semi_axes_mm <= 0):
            raise ValueError(f"semi_axes_mm must be positive, got {semi_axes_mm}")
        self.axes = _rotation(axes)
        self._order = np.argsort(-self.semi_axes_mm, kind="stable")  # largest first

    def local(self, points_lps: Any) -> np.ndarray:
        """Points in the ellipsoid frame (mm), coordinates along its axes."""
        return (_points(points_lps) - self.centre_lps) @ self.axes

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        q = np.abs(self.local(points_lps))[:, self._order]
        e = self.semi_axes_mm[self._order]
        dist = _ellipsoid_distance(q, e)
        inside = np.sum((q / e) ** 2, axis=1) < 1.0
        return np.where(inside, -dist, dist)

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        """``(k - 1) * e_min``, ``k = |q / e|``: k is (1 / e_min)-Lipschitz, so this bounds d."""
        k = np.linalg.norm(self.local(points_lps) / self.semi_axes_mm, axis=1)
        return (k - 1.0) * float(self.semi_axes_mm.min())

    def bounds_lps(self) -> np.ndarray:
        half = np.sqrt(((self.axes * self.semi_axes_mm[None, :]) ** 2).sum(axis=1))
        return np.stack([self.centre_lps - half, self.centre_lps + half])

    def volume_mm3(self) -> float:
        return 4.0 / 3.0 * np.pi * float(np.prod(self.semi_axes_mm))

    def params(self) -> dict[str, Any]:
        return {
            "centre_lps": _list(self.centre_lps),
            "semi_axes_mm": _list(self.semi_axes_mm),
            "axes": _list(self.axes),
        }


def _ellipsoid_distance(y: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Unsigned distance from first-orthant points ``y`` (N, n) to the ellipse (n = 2) or
    ellipsoid (n = 3) with semi-axes ``e`` (sorted descending). The closest point is
    ``x_i = e_i^2 y_i / (t + e_i^2)`` with ``t`` the largest root of
    ``F(t) = sum (e_i y_i / (t + e_i^2))^2 - 1`` on ``t >= -e_min^2``.
    """
    e2 = e**2
    emin2 = e2[-1]
    tiny = 1e-12 * e[-1]
    pole = np.isclose(e2, emin2, rtol=1e-12, atol=0.0)  # axes sharing the smallest semi-axis
    ey = e * y
    # Degenerate: no weight on the smallest axes; the root may sit exactly at the pole.
    degenerate = np.all(y[:, pole] <= tiny, axis=1)
    f_pole = np.zeros(len(y))
    if np.any(~pole):
        f_pole = np.sum((ey[:, ~pole] / (e2[~pole] - emin2)) ** 2, axis=1) - 1.0
    at_pole = degenerate & (f_pole <= 0.0)
    y = np.where(degenerate[:, None] & pole[None, :], 0.0, y)
    ey = e * y
    t = np.full(len(y), -emin2)
    solve = ~at_pole
    if np.any(solve):
        t[solve] = _largest_root(ey[solve], e2, emin2)
    dist = np.empty(len(y))
    # General case: y - x = t * y / (t + e^2) (accurate near the surface where t ~ 0).
    if np.any(solve):
        ys, den = y[solve], t[solve][:, None] + e2[None, :]
        ratio = np.divide(ys, den, out=np.zeros_like(ys), where=ys > 0.0)
        dist[solve] = np.abs(t[solve]) * np.linalg.norm(ratio, axis=1)
    if np.any(at_pole):
        dist[at_pole] = _pole_distance(y[at_pole], e, pole)
    return dist


def _root_terms(ey: np.ndarray, e2: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F(t) and F'(t). Terms with y_i = 0 contribute nothing, even at their pole."""
    f = np.full(len(t), -1.0)
    df = np.zeros(len(t))
    for i in range(len(e2)):
        den = np.maximum(t + e2[i], 1e-300)
        r = ey[:, i] / den
        r2 = r * r
        f += r2
        df -= 2.0 * r2 / den
    return f, df


def _largest_root(ey: np.ndarray, e2: np.ndarray, emin2: float) -> np.ndarray:
    """Largest root of the convex decreasing F on t > -e_min^2.

    A Newton step from either side of the root lands on its left (F convex), and Newton from
    the left climbs monotonically; a bisection of the bracket guards slow (near-pole) cases.
    The start is the first-order guess t ~ k (k - 1) / |y / e^2|^2, k = |y / e|.
    """
    cand = np.where(ey > 0.0, ey - e2[None, :], -np.inf)  # where one term alone equals 1
    lo = np.maximum(np.max(cand, axis=1), -emin2)  # F(lo) >= 0
    hi = np.maximum(np.linalg.norm(ey, axis=1) - emin2, lo)  # F(hi) <= 0
    y = ey / np.sqrt(e2)[None, :]
    k = np.linalg.norm(ey / e2[None, :], axis=1)  # |y / e|
    g2 = np.sum((y / e2[None, :]) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.where(g2 > 0.0, k * (k - 1.0) / g2, lo)
    guess = np.clip(np.nan_to_num(guess, nan=0.0), lo, hi)
    f, df = _root_terms(ey, e2, guess)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(df < 0.0, guess - f / df, lo)
    hi = np.where(f < 0.0, guess, hi)
    lo = np.clip(np.nan_to_num(step, nan=-np.inf), lo, hi)
    scale = np.maximum(np.abs(lo) + np.abs(hi), emin2)
    active = np.arange(len(ey))
    for _ in range(_NEWTON_MAX_ITER):
        a_ey, a_lo, a_hi = ey[active], lo[active], hi[active]
        f, df = _root_terms(a_ey, e2, a_lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(df < 0.0, a_lo - f / df, a_lo)
        newton = np.clip(np.nan_to_num(newton, nan=-np.inf), a_lo, a_hi)
        tol = 1e-15 * scale[active]
        converged = (newton - a_lo <= tol) | (f <= 0.0) | (a_hi - a_lo <= tol)
        slow = ~converged & (newton - a_lo < 0.25 * (a_hi - a_lo))
        mid = 0.5 * (newton + a_hi)
        f_mid, _ = _root_terms(a_ey[slow], e2, mid[slow])
        new_lo, new_hi = newton.copy(), a_hi.copy()
        new_lo[slow] = np.where(f_mid >= 0.0, mid[slow], newton[slow])
        new_hi[slow] = np.where(f_mid >= 0.0, a_hi[slow], mid[slow])
        lo[active], hi[active] = new_lo, new_hi
        active = active[~converged]
        if active.size == 0:
            break
    return lo


def _pole_distance(y: np.ndarray, e: np.ndarray, pole: np.ndarray) -> np.ndarray:
    """Distance when the root is t = -e_min^2: the closest point leaves the plane y_pole = 0."""
    e2 = e**2
    emin2 = e2[-1]
    x = np.zeros_like(y)
    free = ~pole
    x[:, free] = e2[free] * y[:, free] / (e2[free] - emin2)
    rest = 1.0 - np.sum((x[:, free] / e[free]) ** 2, axis=1)
    first_pole = int(np.flatnonzero(pole)[0])
    x[:, first_pole] = e[first_pole] * np.sqrt(np.clip(rest, 0.0, None))
    return np.linalg.norm(x - y, axis=1)


class Box(Shape):
    """Box with half-sizes ``half_size_mm`` along the columns of ``axes`` (exact distance)."""

    kind = "box"

    def __init__(self, centre_lps: Any, half_size_mm: Any, axes: Any = None) -> None:
        self.centre_lps = _vec3(centre_lps, "centre_lps")
        self.half_size_mm = _vec3(half_size_mm, "half_size_mm")
        if np.any(self.half_size_mm <= 0):
            raise ValueError(f"half_size_mm must be positive, got {half_size_mm}")
        self.axes = _rotation(axes)

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        q = np.abs((_points(points_lps) - self.centre_lps) @ self.axes) - self.half_size_mm
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        return outside + np.minimum(q.max(axis=1), 0.0)

    def bounds_lps(self) -> np.ndarray:
        half = np.abs(self.axes) @ self.half_size_mm
        return np.stack([self.centre_lps - half, self.centre_lps + half])

    def volume_mm3(self) -> float:
        return 8.0 * float(np.prod(self.half_size_mm))

    def params(self) -> dict[str, Any]:
        return {
            "centre_lps": _list(self.centre_lps),
            "half_size_mm": _list(self.half_size_mm),
            "axes": _list(self.axes),
        }


class Cylinder(Shape):
    """Capped cylinder: ``radius_mm`` around ``axis`` through ``centre_lps``, length
    ``2 * half_length_mm`` (exact distance)."""

    kind = "cylinder"

    def __init__(
        self, centre_lps: Any, axis: Any, radius_mm: float, half_length_mm: float
    ) -> None:
        self.centre_lps = _vec3(centre_lps, "centre_lps")
        axis = _vec3(axis, "axis")
        norm = float(np.linalg.norm(axis))
        if norm == 0:
            raise ValueError("cylinder axis must not be zero")
        self.axis = axis / norm
        self.radius_mm = float(radius_mm)
        self.half_length_mm = float(half_length_mm)
        if self.radius_mm <= 0 or self.half_length_mm <= 0:
            raise ValueError("cylinder radius_mm and half_length_mm must be positive")

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        rel = _points(points_lps) - self.centre_lps
        along = rel @ self.axis
        radial = np.linalg.norm(rel - along[:, None] * self.axis, axis=1)
        q = np.stack([radial - self.radius_mm, np.abs(along) - self.half_length_mm], axis=1)
        return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)

    def bounds_lps(self) -> np.ndarray:
        a = self.axis
        half = np.abs(a) * self.half_length_mm + self.radius_mm * np.sqrt(
            np.clip(1.0 - a * a, 0.0, None)
        )
        return np.stack([self.centre_lps - half, self.centre_lps + half])

    def volume_mm3(self) -> float:
        return np.pi * self.radius_mm**2 * 2.0 * self.half_length_mm

    def params(self) -> dict[str, Any]:
        return {
            "centre_lps": _list(self.centre_lps),
            "axis": _list(self.axis),
            "radius_mm": self.radius_mm,
            "half_length_mm": self.half_length_mm,
        }


class EllipticCylinder(Shape):
    """Capped elliptic cylinder (exact distance): an ellipse with semi-axes ``semi_axes_mm``
    along ``axes[:, 0]`` and ``axes[:, 1]``, extruded ``+-half_length_mm`` along ``axes[:, 2]``.
    """

    kind = "elliptic_cylinder"

    def __init__(
        self, centre_lps: Any, semi_axes_mm: Any, half_length_mm: float, axes: Any = None
    ) -> None:
        self.centre_lps = _vec3(centre_lps, "centre_lps")
        semi = np.asarray(semi_axes_mm, dtype=float).reshape(-1)
        if semi.shape != (2,) or np.any(semi <= 0) or not np.all(np.isfinite(semi)):
            raise ValueError(f"semi_axes_mm must be 2 positive numbers, got {semi_axes_mm}")
        self.semi_axes_mm = semi
        self.half_length_mm = float(half_length_mm)
        if self.half_length_mm <= 0:
            raise ValueError("half_length_mm must be positive")
        self.axes = _rotation(axes)
        self._order = np.argsort(-semi, kind="stable")

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        q = (_points(points_lps) - self.centre_lps) @ self.axes
        y = np.abs(q[:, :2])[:, self._order]
        e = self.semi_axes_mm[self._order]
        radial = _ellipsoid_distance(y, e)
        radial = np.where(np.sum((y / e) ** 2, axis=1) < 1.0, -radial, radial)
        return _extrude(radial, np.abs(q[:, 2]) - self.half_length_mm)

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        q = (_points(points_lps) - self.centre_lps) @ self.axes
        k = np.linalg.norm(q[:, :2] / self.semi_axes_mm, axis=1)
        radial = (k - 1.0) * float(self.semi_axes_mm.min())
        return _extrude(radial, np.abs(q[:, 2]) - self.half_length_mm)

    def bounds_lps(self) -> np.ndarray:
        # the ellipse's extent along each LPS axis plus the extrusion's (a box, not a
        # quadrature sum: that undercut rotated cylinders and Union skipped them)
        ellipse = np.sqrt(((self.axes[:, :2] * self.semi_axes_mm[None, :]) ** 2).sum(axis=1))
        half = ellipse + np.abs(self.axes[:, 2]) * self.half_length_mm
        return np.stack([self.centre_lps - half, self.centre_lps + half])

    def volume_mm3(self) -> float:
        return np.pi * float(np.prod(self.semi_axes_mm)) * 2.0 * self.half_length_mm

    def params(self) -> dict[str, Any]:
        return {
            "centre_lps": _list(self.centre_lps),
            "semi_axes_mm": _list(self.semi_axes_mm),
            "half_length_mm": self.half_length_mm,
            "axes": _list(self.axes),
        }


def _extrude(radial: np.ndarray, axial: np.ndarray) -> np.ndarray:
    """Distance of a capped extrusion from its cross-section and axial signed distances."""
    d = np.stack([radial, axial], axis=1)
    return np.linalg.norm(np.maximum(d, 0.0), axis=1) + np.minimum(d.max(axis=1), 0.0)


def _box_distance(points: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Distance (mm) from points to an axis-aligned box, 0 inside it: a lower bound of the
    distance to anything the box contains."""
    gap = np.maximum(bounds[0] - points, 0.0) + np.maximum(points - bounds[1], 0.0)
    return np.linalg.norm(gap, axis=1)


def _min_over(
    points: np.ndarray, parts: Sequence[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]
) -> np.ndarray:
    """Exact ``min`` of part distances, evaluating a part only where the point is inside its
    bounding box or the box is nearer than the best value so far (``(bounds, fn)`` pairs)."""
    best = np.full(len(points), np.inf)
    for bounds, fn in parts:
        gap = _box_distance(points, bounds)
        sel = np.flatnonzero((gap < best) | (gap <= 0.0))
        if sel.size:
            best[sel] = np.minimum(best[sel], fn(points[sel]))
    return best


class Tube(Shape):
    """A vessel-like tube: round cones (capsules when radii are equal) along a polyline.

    ``points_lps`` (K, 3) is the centreline; ``radii_mm`` is one radius or one per point
    (tapered). Exact outside; inside exact for one segment, a bound where segments meet.
    """

    kind = "tube"
    exact_inside = False

    def __init__(self, points_lps: Any, radii_mm: Any) -> None:
        pts = np.asarray(points_lps, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
            raise ValueError("a tube needs a polyline of at least 2 LPS points, shape (K, 3)")
        radii = np.broadcast_to(np.asarray(radii_mm, dtype=float), (len(pts),)).copy()
        if np.any(radii <= 0):
            raise ValueError("tube radii_mm must be positive")
        lengths = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        if np.any(lengths <= np.abs(np.diff(radii))):
            raise ValueError("each tube segment must be longer than its change in radius")
        self.points_lps = pts
        self.radii_mm = radii
        self.exact_inside = len(pts) == 2

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        pts, r = self.points_lps, self.radii_mm
        parts = []
        for n in range(len(pts) - 1):
            ends, radius = pts[n : n + 2], r[n : n + 2, None]
            bounds = np.stack([(ends - radius).min(axis=0), (ends + radius).max(axis=0)])
            parts.append((bounds, lambda q, n=n: _round_cone_distance(
                q, pts[n], pts[n + 1], float(r[n]), float(r[n + 1]))))
        return _min_over(_points(points_lps), parts)

    def bounds_lps(self) -> np.ndarray:
        r = self.radii_mm[:, None]
        return np.stack([(self.points_lps - r).min(axis=0), (self.points_lps + r).max(axis=0)])

    def volume_mm3(self) -> float | None:
        if len(self.points_lps) != 2:
            return None
        r1, r2 = self.radii_mm
        length = float(np.linalg.norm(self.points_lps[1] - self.points_lps[0]))
        if r1 != r2:
            return None
        return np.pi * r1**2 * length + 4.0 / 3.0 * np.pi * r1**3

    def params(self) -> dict[str, Any]:
        return {"points_lps": _list(self.points_lps), "radii_mm": _list(self.radii_mm)}


def _round_cone_distance(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, r1: float, r2: float
) -> np.ndarray:
    """Exact signed distance to the convex hull of spheres (a, r1) and (b, r2)
    (Quilez's round cone; a capsule when r1 == r2)."""
    ba = b - a
    l2 = float(ba @ ba)
    rr = r1 - r2
    a2 = l2 - rr * rr
    pa = p - a
    y = pa @ ba
    z = y - l2
    x2 = np.sum((pa * l2 - y[:, None] * ba) ** 2, axis=1)
    y2 = y * y * l2
    z2 = z * z * l2
    k = np.sign(rr) * rr * rr * x2
    cap_b = np.sign(z) * a2 * z2 > k
    cap_a = np.sign(y) * a2 * y2 < k
    side = (np.sqrt(np.clip(x2 * a2 / l2, 0.0, None)) + y * rr) / l2 - r1
    dist = np.where(cap_a, np.sqrt(x2 + y2) / l2 - r1, side)
    return np.where(cap_b, np.sqrt(x2 + z2) / l2 - r2, dist)


class Shell(Shape):
    """The solid between two nested ellipsoids (inner strictly inside outer): exact distance
    ``max(d_outer, -d_inner)``."""

    kind = "shell"

    def __init__(self, outer: Ellipsoid, inner: Ellipsoid) -> None:
        if not isinstance(outer, Ellipsoid) or not isinstance(inner, Ellipsoid):
            raise ValueError("a shell is made of two ellipsoids")
        self.outer, self.inner = outer, inner
        if np.any(outer.signed_distance(_ellipsoid_surface_samples(inner)) >= 0.0):
            raise ValueError("the inner ellipsoid of a shell must lie strictly inside the outer")

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        p = _points(points_lps)
        out = self.outer.signed_distance(p)
        # -d_inner <= -bound_inner where the bound is positive: skip points where that is
        # already below d_outer (they cannot change the max).
        b_inner = self.inner.signed_distance_bound(p)
        sel = np.flatnonzero((b_inner <= 0.0) | (-b_inner > out))
        out[sel] = np.maximum(out[sel], -self.inner.signed_distance(p[sel]))
        return out

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        p = _points(points_lps)
        return np.maximum(
            self.outer.signed_distance_bound(p), -self.inner.signed_distance_bound(p)
        )

    def bounds_lps(self) -> np.ndarray:
        return self.outer.bounds_lps()

    def volume_mm3(self) -> float:
        return self.outer.volume_mm3() - self.inner.volume_mm3()

    def params(self) -> dict[str, Any]:
        return {"outer": self.outer.to_json(), "inner": self.inner.to_json()}


def _ellipsoid_surface_samples(ell: Ellipsoid, n: int = 24) -> np.ndarray:
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n))
    unit = np.stack(
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1
    ).reshape(-1, 3)
    return ell.centre_lps + (unit * ell.semi_axes_mm) @ ell.axes.T


# --------------------------------------------------------------------------- booleans
class _Boolean(Shape):
    def __init__(self, children: Sequence[Shape]) -> None:
        self.children = list(children)
        if not self.children:
            raise ValueError(f"a {self.kind} needs at least one shape")

    def params(self) -> dict[str, Any]:
        return {"children": [c.to_json() for c in self.children]}

    def _combine(self, points_lps: Any, op: Callable, *, bound: bool = False) -> np.ndarray:
        p = _points(points_lps)
        fns = [c.signed_distance_bound if bound else c.signed_distance for c in self.children]
        out = fns[0](p)
        for fn in fns[1:]:
            out = op(out, fn(p))
        return out


class Union(_Boolean):
    """Union: ``min`` of the distances. Exact outside (when every child is), a bound inside.

    With ``disjoint=True`` the caller states the children are pairwise separated (no two
    touch); then a point inside one child is nearest to that child's own surface and the
    union is exact inside too (when every child is).
    """

    kind = "union"

    def __init__(self, children: Sequence[Shape], *, disjoint: bool = False) -> None:
        super().__init__(children)
        self.disjoint = bool(disjoint)
        self.exact_outside = all(c.exact_outside for c in self.children)
        inside = all(c.exact_inside for c in self.children)
        self.exact_inside = inside and (self.disjoint or len(self.children) == 1)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "disjoint": self.disjoint}

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        parts = [(c.bounds_lps(), c.signed_distance) for c in self.children]
        return _min_over(_points(points_lps), parts)

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        parts = [(c.bounds_lps(), c.signed_distance_bound) for c in self.children]
        return _min_over(_points(points_lps), parts)

    def bounds_lps(self) -> np.ndarray:
        b = np.stack([c.bounds_lps() for c in self.children])
        return np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)])


class Intersection(_Boolean):
    """Intersection: ``max`` of the distances. Exact inside (when every child is), a bound
    outside."""

    kind = "intersection"

    def __init__(self, children: Sequence[Shape]) -> None:
        super().__init__(children)
        self.exact_inside = all(c.exact_inside for c in self.children)
        self.exact_outside = len(self.children) == 1 and self.children[0].exact_outside

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        return self._combine(points_lps, np.maximum)

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        return self._combine(points_lps, np.maximum, bound=True)

    def bounds_lps(self) -> np.ndarray:
        b = np.stack([c.bounds_lps() for c in self.children])
        return np.stack([b[:, 0].max(axis=0), b[:, 1].min(axis=0)])


class Difference(Shape):
    """``base`` minus ``cut``: ``max(d_base, -d_cut)``. Exact inside (when base is exact inside
    and cut exact outside), a bound outside."""

    kind = "difference"

    def __init__(self, base: Shape, cut: Shape) -> None:
        self.base, self.cut = base, cut
        self.exact_inside = base.exact_inside and cut.exact_outside
        self.exact_outside = False

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        p = _points(points_lps)
        return np.maximum(self.base.signed_distance(p), -self.cut.signed_distance(p))

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        p = _points(points_lps)
        return np.maximum(self.base.signed_distance_bound(p), -self.cut.signed_distance_bound(p))

    def bounds_lps(self) -> np.ndarray:
        return self.base.bounds_lps()

    def params(self) -> dict[str, Any]:
        return {"base": self.base.to_json(), "cut": self.cut.to_json()}


# --------------------------------------------------------------------------- JSON
def _ellipsoid_from_json(data: dict[str, Any]) -> Ellipsoid:
    """A shell wall: an ellipsoid (anything else is refused like :class:`Shell` does)."""
    shape = shape_from_json(data)
    if not isinstance(shape, Ellipsoid):
        raise ValueError("a shell is made of two ellipsoids")
    return shape


def shape_from_json(data: dict[str, Any]) -> Shape:
    """Rebuild a shape from :meth:`Shape.to_json` output."""
    kind = data.get("type")
    p = {k: v for k, v in data.items() if k != "type"}
    builders: dict[str, Callable[[], Shape]] = {
        "sphere": lambda: Sphere(p["centre_lps"], p["radius_mm"]),
        "ellipsoid": lambda: Ellipsoid(p["centre_lps"], p["semi_axes_mm"], p.get("axes")),
        "box": lambda: Box(p["centre_lps"], p["half_size_mm"], p.get("axes")),
        "cylinder": lambda: Cylinder(
            p["centre_lps"], p["axis"], p["radius_mm"], p["half_length_mm"]
        ),
        "elliptic_cylinder": lambda: EllipticCylinder(
            p["centre_lps"], p["semi_axes_mm"], p["half_length_mm"], p.get("axes")
        ),
        "tube": lambda: Tube(p["points_lps"], p["radii_mm"]),
        "shell": lambda: Shell(_ellipsoid_from_json(p["outer"]),
                               _ellipsoid_from_json(p["inner"])),
        "union": lambda: Union(
            [shape_from_json(c) for c in p["children"]], disjoint=bool(p.get("disjoint", False))
        ),
        "intersection": lambda: Intersection([shape_from_json(c) for c in p["children"]]),
        "difference": lambda: Difference(shape_from_json(p["base"]), shape_from_json(p["cut"])),
    }
    if kind not in builders:
        raise ValueError(f"unknown shape type {kind!r}; known: {sorted(builders)}")
    return builders[kind]()


def rotation_deg(axis: Any, degrees: float) -> np.ndarray:
    """3x3 rotation (right-handed, about ``axis`` in LPS) usable as a shape's ``axes``."""
    a = _vec3(axis, "axis")
    return Rotation.from_rotvec(np.radians(degrees) * a / np.linalg.norm(a)).as_matrix()
