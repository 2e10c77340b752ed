"""Cutting surfaces in LPS mm: a plane, a deformable height field, or any triangle mesh.

Every cut has ``side_mm(points_lps)``: positive on the side the cut *removes* (the side its
normal points to), negative on the side that stays. Its sign is exact; its magnitude is the
signed distance for a plane and the offset along the normal (``w - h(u, v)``) for a height
field. ``surface_mesh(bounds_lps, spacing_mm=...)`` gives a triangle mesh of the cut over an
axis-aligned LPS box (e.g. the organ's), wound so that face normals point to the removed side.

A :class:`HeightFieldCut` is the surface the user drags: a grid of control points over a base
plane, each moved along the plane normal by ``heights_mm``; a bicubic interpolating spline
(scipy ``RectBivariateSpline``, ``s=0``: it passes through every control point) joins them, and
beyond the control grid the edge heights continue unchanged.

:func:`cut_from_mesh` turns the triangle mesh of a :class:`~surgiplan.simulation.ResectionInput`
back into the fastest exact cut: a plane if the mesh is planar, a piecewise-linear height field
if it has no fold over its best-fit plane, else VTK's implicit distance to the mesh (slow).
:func:`bounded_cut_from_mesh` keeps the mesh's edges: a :class:`BoundedCut` removes only what
lies over the mesh's footprint (its triangles projected on the cut's plane), so a cut that
ends inside the organ removes nothing beyond its edge, as a real transection would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator, RectBivariateSpline

from surgiplan.errors import BadInputError
from surgiplan.model.surface import SurfaceMesh

PLANE_TOLERANCE_MM = 1e-3  # a mesh whose vertices lie this close to one plane is a plane cut
_TABLE_STEP_MM = 0.5  # resolution of a height field's lookup table
_CHUNK = 200_000


def unit(vector: Any, name: str = "normal") -> np.ndarray:
    """``vector`` scaled to length 1; ``BadInputError`` for a zero or non-finite vector."""
    v = np.asarray(vector, dtype=float).reshape(3)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < 1e-9:
        raise BadInputError(f"the cut's {name} {tuple(v)} has no direction",
                            action="give a non-zero normal vector (LPS)")
    return v / norm


def plane_frame(normal_lps: Any, u_hint_lps: Any = None) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Unit ``(u, v, n)``, ``u x v = n``; ``u`` is ``u_hint_lps`` projected on the plane."""
    n = unit(normal_lps)
    hint = np.eye(3)[int(np.argmin(np.abs(n)))] if u_hint_lps is None else np.asarray(
        u_hint_lps, float)
    u = hint - (hint @ n) * n
    if np.linalg.norm(u) < 1e-6:
        u = np.eye(3)[int(np.argmin(np.abs(n)))] - n * n[int(np.argmin(np.abs(n)))]
    u = u / np.linalg.norm(u)
    return u, np.cross(n, u), n


def grid_faces(n_rows: int, n_cols: int) -> np.ndarray:
    """Triangles of a row-major ``(n_rows, n_cols)`` vertex grid, wound ``u x v`` (2 per cell)."""
    j, i = np.meshgrid(np.arange(n_rows - 1), np.arange(n_cols - 1), indexing="ij")
    a = (j * n_cols + i).reshape(-1)
    return np.concatenate([np.stack([a, a + 1, a + n_cols + 1], 1),
                           np.stack([a, a + n_cols + 1, a + n_cols], 1)])


def _box_extent(bounds_lps: Any, origin: np.ndarray, u: np.ndarray, v: np.ndarray,
                pad_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``(u_range, v_range)`` (mm from ``origin``) covering the box's 8 corners, padded."""
    b = np.asarray(bounds_lps, float).reshape(2, 3)
    corners = np.array([[b[x, 0], b[y, 1], b[z, 2]] for x in (0, 1) for y in (0, 1)
                        for z in (0, 1)]) - origin
    cu, cv = corners @ u, corners @ v
    return (np.array([cu.min() - pad_mm, cu.max() + pad_mm]),
            np.array([cv.min() - pad_mm, cv.max() + pad_mm]))


def _grid_mesh(origin: np.ndarray, frame: tuple[np.ndarray, np.ndarray, np.ndarray],
               bounds_lps: Any, spacing_mm: float, height_fn) -> SurfaceMesh:
    """A grid mesh over the box's projection: ``origin + a u + b v + height_fn(a, b) n``."""
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
    u, v, n = frame
    ur, vr = _box_extent(bounds_lps, origin, u, v, pad_mm=spacing_mm)
    a = np.linspace(ur[0], ur[1], max(2, math.ceil((ur[1] - ur[0]) / spacing_mm) + 1))
    b = np.linspace(vr[0], vr[1], max(2, math.ceil((vr[1] - vr[0]) / spacing_mm) + 1))
    bb, aa = np.meshgrid(b, a, indexing="ij")
    h = height_fn(aa.reshape(-1), bb.reshape(-1))
    verts = origin + aa.reshape(-1, 1) * u + bb.reshape(-1, 1) * v + h[:, None] * n
    return SurfaceMesh(verts, grid_faces(len(b), len(a)))


def _local(points_lps: Any, origin: np.ndarray, frame) -> tuple[np.ndarray, ...]:
    p = np.asarray(points_lps, dtype=float).reshape(-1, 3) - origin
    return tuple(p @ axis for axis in frame)


def _height_side(points_lps: Any, origin: np.ndarray, frame, height_range: tuple[float, float],
                 height_fn) -> np.ndarray:
    """``w - h(u, v)``; ``h`` is evaluated only where ``w`` lies within the height range (a
    bound with the right sign elsewhere)."""
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    u, v, n = frame
    w = pts @ n - float(origin @ n)
    low, high = height_range
    out = np.where(w > high, w - high, w - low)
    band = np.flatnonzero((w >= low) & (w <= high))
    local = pts[band] - origin
    out[band] = w[band] - height_fn(local @ u, local @ v)
    return out


@dataclass(frozen=True)
class PlaneCut:
    """A plane through ``point_lps``; removes the side ``normal_lps`` points to."""

    point_lps: tuple[float, float, float]
    normal_lps: tuple[float, float, float]
    kind: str = field(default="plane", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "point_lps", tuple(float(x) for x in self.point_lps))
        object.__setattr__(self, "normal_lps", tuple(float(x) for x in unit(self.normal_lps)))

    def side_mm(self, points_lps: Any) -> np.ndarray:
        """Signed distance (mm) to the plane, positive on the removed side."""
        p = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        return p @ np.asarray(self.normal_lps) - float(np.dot(self.point_lps, self.normal_lps))

    def surface_mesh(self, bounds_lps: Any, *, spacing_mm: float = 2.0) -> SurfaceMesh:
        """The plane over the projection of the LPS box ``bounds_lps`` ((2, 3): min, max)."""
        b = np.asarray(bounds_lps, float).reshape(2, 3)
        n = np.asarray(self.normal_lps)
        centre = b.mean(axis=0)
        origin = centre - ((centre - self.point_lps) @ n) * n
        return _grid_mesh(origin, plane_frame(n), b, spacing_mm, lambda a, _: np.zeros_like(a))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "point_lps": list(self.point_lps),
                "normal_lps": list(self.normal_lps)}


@dataclass(frozen=True)
class HeightFieldCut:
    """A deformable cut: control points on a ``size_mm`` (width along u, along v) grid centred
    on ``centre_lps`` in the plane normal to ``normal_lps``, each displaced along the normal by
    ``heights_mm[row][col]`` (rows along v, columns along u; at least 2 x 2)."""

    centre_lps: tuple[float, float, float]
    normal_lps: tuple[float, float, float]
    size_mm: tuple[float, float]
    heights_mm: tuple[tuple[float, ...], ...]
    u_axis_lps: tuple[float, float, float] | None = None
    kind: str = field(default="height_field", init=False)

    def __post_init__(self) -> None:
        h = np.asarray(self.heights_mm, dtype=float)
        if h.ndim != 2 or min(h.shape) < 2 or not np.all(np.isfinite(h)):
            raise BadInputError("a deformable cut needs a grid of at least 2 x 2 finite "
                                f"heights, got shape {h.shape}",
                                action="give heights_mm as rows of numbers (mm)")
        if not all(s > 0 for s in self.size_mm):
            raise BadInputError(f"the deformable cut's size must be positive, got {self.size_mm}",
                                action="give the control grid's width and height in mm")
        object.__setattr__(self, "heights_mm", tuple(tuple(float(x) for x in r) for r in h))
        object.__setattr__(self, "normal_lps", tuple(float(x) for x in unit(self.normal_lps)))
        object.__setattr__(self, "centre_lps", tuple(float(x) for x in self.centre_lps))

    @classmethod
    def flat(cls, plane: PlaneCut, *, size_mm: tuple[float, float], rows: int = 5,
             cols: int = 5) -> HeightFieldCut:
        """A flat ``rows x cols`` control grid on ``plane`` (the start of a drag)."""
        return cls(plane.point_lps, plane.normal_lps, size_mm, tuple((0.0,) * cols
                                                                     for _ in range(rows)))

    @cached_property
    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return plane_frame(self.normal_lps, self.u_axis_lps)

    @cached_property
    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.asarray(self.heights_mm).shape
        return (np.linspace(-self.size_mm[0] / 2, self.size_mm[0] / 2, cols),
                np.linspace(-self.size_mm[1] / 2, self.size_mm[1] / 2, rows))

    @cached_property
    def _spline(self) -> RectBivariateSpline:
        h = np.asarray(self.heights_mm)
        ua, va = self._axes
        return RectBivariateSpline(va, ua, h, kx=min(3, h.shape[0] - 1),
                                   ky=min(3, h.shape[1] - 1), s=0)

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Heights on a fine grid (lookup table), its u and v axes."""
        ua, va = self._axes
        nu = int(np.clip(self.size_mm[0] / _TABLE_STEP_MM, 32, 1024)) + 1
        nv = int(np.clip(self.size_mm[1] / _TABLE_STEP_MM, 32, 1024)) + 1
        fu, fv = np.linspace(ua[0], ua[-1], nu), np.linspace(va[0], va[-1], nv)
        return self._spline(fv, fu), fu, fv

    def height_mm(self, u_mm: Any, v_mm: Any) -> np.ndarray:
        """Height (mm along the normal) at in-plane coordinates; edge heights continue beyond."""
        table, fu, fv = self._table
        iu = (np.asarray(u_mm, float) - fu[0]) / (fu[1] - fu[0])
        iv = (np.asarray(v_mm, float) - fv[0]) / (fv[1] - fv[0])
        return ndimage.map_coordinates(table, [iv, iu], order=1, mode="nearest")

    def control_points_lps(self) -> np.ndarray:
        """The control points (rows, cols, 3) in LPS mm: what the user drags."""
        u, v, n = self.frame
        ua, va = self._axes
        vv, uu = np.meshgrid(va, ua, indexing="ij")
        h = np.asarray(self.heights_mm)
        return (np.asarray(self.centre_lps) + uu[..., None] * u + vv[..., None] * v
                + h[..., None] * n)

    def with_height(self, row: int, col: int, height_mm: float) -> HeightFieldCut:
        """A copy with control point ``(row, col)`` moved to ``height_mm`` along the normal."""
        h = [list(r) for r in self.heights_mm]
        h[row][col] = float(height_mm)
        return HeightFieldCut(self.centre_lps, self.normal_lps, self.size_mm,
                              tuple(tuple(r) for r in h), self.u_axis_lps)

    def side_mm(self, points_lps: Any) -> np.ndarray:
        """``w - h(u, v)``: offset along the normal from the surface, positive when removed."""
        table = self._table[0]
        return _height_side(points_lps, np.asarray(self.centre_lps), self.frame,
                            (float(table.min()), float(table.max())), self.height_mm)

    def surface_mesh(self, bounds_lps: Any, *, spacing_mm: float = 2.0) -> SurfaceMesh:
        return _grid_mesh(np.asarray(self.centre_lps), self.frame, bounds_lps, spacing_mm,
                          self.height_mm)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "centre_lps": list(self.centre_lps),
                "normal_lps": list(self.normal_lps), "size_mm": list(self.size_mm),
                "heights_mm": [list(r) for r in self.heights_mm],
                "u_axis_lps": None if self.u_axis_lps is None else list(self.u_axis_lps)}


class MeshHeightCut:
    """A triangle mesh without folds over its best-fit plane, as a piecewise-linear height
    field (heights interpolated linearly between the projected vertices, the nearest vertex's
    height beyond them)."""

    kind = "mesh_height_field"

    def __init__(self, vertices_lps: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> None:
        self.origin = origin
        self.frame = plane_frame(normal)
        a, b, w = (np.asarray(x, float) for x in _local(vertices_lps, origin, self.frame))
        uv = np.stack([a, b], 1)
        self._linear = LinearNDInterpolator(uv, w)
        self._nearest = NearestNDInterpolator(uv, w)
        self._range = (float(w.min()), float(w.max()))
        self.n_vertices = len(w)

    def height_mm(self, u_mm: Any, v_mm: Any) -> np.ndarray:
        uv = np.stack([np.asarray(u_mm, float), np.asarray(v_mm, float)], -1)
        h = self._linear(uv)
        missing = ~np.isfinite(h)
        if np.any(missing):
            h[missing] = self._nearest(uv[missing])
        return h

    def side_mm(self, points_lps: Any) -> np.ndarray:
        return _height_side(points_lps, self.origin, self.frame, self._range, self.height_mm)

    def surface_mesh(self, bounds_lps: Any, *, spacing_mm: float = 2.0) -> SurfaceMesh:
        return _grid_mesh(self.origin, self.frame, bounds_lps, spacing_mm, self.height_mm)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_vertices": self.n_vertices,
                "normal_lps": [float(x) for x in self.frame[2]]}


class ImplicitMeshCut:
    """Any oriented triangle mesh: the side is the sign of VTK's implicit signed distance to
    it (``vtkImplicitPolyDataDistance``, sign from the nearest face's normal). About 10 us per
    point: for folded surfaces only."""

    kind = "mesh"

    def __init__(self, mesh: SurfaceMesh) -> None:
        from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

        from surgiplan.processing.mesh_convert import surface_to_polydata

        self.mesh = mesh
        self._distance = vtkImplicitPolyDataDistance()
        self._distance.SetInput(surface_to_polydata(mesh))

    def side_mm(self, points_lps: Any) -> np.ndarray:
        from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

        pts = np.ascontiguousarray(np.asarray(points_lps, float).reshape(-1, 3))
        out = np.empty(len(pts), np.float32)
        for start in range(0, len(pts), _CHUNK):
            chunk = pts[start:start + _CHUNK]
            values = numpy_to_vtk(np.zeros(len(chunk)), deep=True)
            self._distance.FunctionValue(numpy_to_vtk(chunk, deep=True), values)
            out[start:start + len(chunk)] = vtk_to_numpy(values)
        return out

    def surface_mesh(self, bounds_lps: Any, *, spacing_mm: float = 2.0) -> SurfaceMesh:
        return self.mesh

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_vertices": len(self.mesh.vertices_lps),
                "n_faces": self.mesh.n_triangles}


FOOTPRINT_MAX_PIXELS = 1024  # the footprint raster's longest side (pixels)
FOOTPRINT_STEP_MM = 0.25  # its finest pixel (mm)


def footprint_inside(uv_vertices: np.ndarray, faces: np.ndarray, u_axis: np.ndarray,
                     v_axis: np.ndarray) -> np.ndarray:
    """Pixel centres ``(len(v_axis), len(u_axis))`` inside the union of the 2-D triangles:
    even-odd rule along each pixel row over the triangulation's boundary edges (edges of one
    triangle only), so holes and concave outlines are exact to the pixel."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    border = unique[counts == 1]
    a, b = uv_vertices[border[:, 0]], uv_vertices[border[:, 1]]
    step_v, step_u = v_axis[1] - v_axis[0], u_axis[1] - u_axis[0]
    lo = np.ceil((np.minimum(a[:, 1], b[:, 1]) - v_axis[0]) / step_v).astype(int)
    hi = np.ceil((np.maximum(a[:, 1], b[:, 1]) - v_axis[0]) / step_v).astype(int)
    counts = np.clip(hi, 0, len(v_axis)) - np.clip(lo, 0, len(v_axis))
    which = np.repeat(np.arange(len(border)), np.maximum(counts, 0))
    first = np.repeat(np.clip(lo, 0, len(v_axis)) - np.cumsum(np.maximum(counts, 0))
                      + np.maximum(counts, 0), np.maximum(counts, 0))
    rows = first + np.arange(len(which))
    y = v_axis[rows]
    ea, eb = a[which], b[which]
    x = ea[:, 0] + (y - ea[:, 1]) * (eb[:, 0] - ea[:, 0]) / (eb[:, 1] - ea[:, 1])
    cols = np.clip(np.ceil((x - u_axis[0]) / step_u).astype(int), 0, len(u_axis))
    toggles = np.zeros((len(v_axis), len(u_axis) + 1), np.int32)
    np.add.at(toggles, (rows, cols), 1)
    return (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)


class BoundedCut:
    """A cut that ends where its mesh ends: ``inner``'s removed side, over the mesh's footprint
    only (the mesh projected along ``inner``'s normal onto its plane). ``side_mm`` is
    ``min(inner side, in-plane signed distance to the footprint's outline)`` (mm; positive
    inside the footprint), so a point is removed only if it is on the removed side *and* over
    the cut. ``origin``/``frame`` are the plane of the projection (LPS mm, unit u, v, n)."""

    def __init__(self, inner: PlaneCut | MeshHeightCut, mesh: SurfaceMesh, origin: np.ndarray,
                 frame: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.inner, self.mesh, self.origin, self.frame = inner, mesh, origin, frame
        uv = np.stack(_local(mesh.vertices_lps, origin, frame)[:2], 1)
        extent = float(np.ptp(uv, axis=0).max())
        step = max(FOOTPRINT_STEP_MM, extent / FOOTPRINT_MAX_PIXELS)
        pad = 4.0 * step
        u_axis = np.arange(uv[:, 0].min() - pad, uv[:, 0].max() + pad + step, step)
        v_axis = np.arange(uv[:, 1].min() - pad, uv[:, 1].max() + pad + step, step)
        inside = footprint_inside(uv, np.asarray(mesh.faces), u_axis, v_axis)
        self.footprint_mm2 = float(np.count_nonzero(inside) * step * step)
        self._table = ((ndimage.distance_transform_edt(inside) - 0.5) * step
                       - (ndimage.distance_transform_edt(~inside) - 0.5) * step
                       ).astype(np.float32)
        self._axes = (u_axis[0], v_axis[0], step)

    @property
    def kind(self) -> str:
        return f"bounded_{self.inner.kind}"

    @property
    def normal_lps(self) -> tuple[float, float, float]:
        if not isinstance(self.inner, PlaneCut):
            raise AttributeError("a curved cut has no single normal")
        return self.inner.normal_lps

    def footprint_mm(self, points_lps: Any) -> np.ndarray:
        """In-plane signed distance (mm) to the footprint's outline, positive inside it (exact
        to the raster's pixel; beyond the raster only its sign is kept)."""
        a, b, _ = _local(points_lps, self.origin, self.frame)
        u0, v0, step = self._axes
        return ndimage.map_coordinates(self._table, [(b - v0) / step, (a - u0) / step],
                                       order=1, mode="nearest")

    def side_mm(self, points_lps: Any) -> np.ndarray:
        """Positive where removed: on the removed side and over the cut (mm, see the class)."""
        return np.minimum(self.inner.side_mm(points_lps), self.footprint_mm(points_lps))

    def surface_mesh(self, bounds_lps: Any, *, spacing_mm: float = 2.0) -> SurfaceMesh:
        """The inner cut's surface over the box, only its triangles over the footprint."""
        full = self.inner.surface_mesh(bounds_lps, spacing_mm=spacing_mm)
        faces = np.asarray(full.faces)
        if not len(faces):
            return full
        centres = full.vertices_lps[faces].mean(axis=1)
        kept = faces[self.footprint_mm(centres) >= 0]
        used, new_faces = np.unique(kept, return_inverse=True)
        return SurfaceMesh(full.vertices_lps[used], new_faces.reshape(-1, 3))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "inner": self.inner.to_json(),
                "footprint_mm2": self.footprint_mm2}


Cut = PlaneCut | HeightFieldCut | MeshHeightCut | ImplicitMeshCut | BoundedCut


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted (unnormalised) face normals (M, 3) by the right-hand rule."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return np.cross(b - a, c - a)


def cut_from_mesh(vertices_lps: Any, faces: Any) -> Cut:
    """The exact cut a triangle mesh describes (removed side: where its normals point)."""
    verts = np.asarray(vertices_lps, dtype=float).reshape(-1, 3)
    tris = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(tris) == 0 or len(verts) < 3:
        raise BadInputError("the cutting surface has no triangles",
                            action="give a plane or a cutting surface with faces")
    normals = face_normals(verts, tris)
    total = normals.sum(axis=0)
    if np.linalg.norm(total) < 1e-9:
        raise BadInputError("the cutting surface has no net orientation (its faces cancel)",
                            action="wind its faces so that normals point to the removed side")
    centroid = verts.mean(axis=0)
    n = np.linalg.svd(verts - centroid, full_matrices=False)[2][-1]
    n = n if n @ total > 0 else -n
    if np.max(np.abs((verts - centroid) @ n)) <= PLANE_TOLERANCE_MM:
        return PlaneCut(tuple(centroid), tuple(n))
    areas = np.linalg.norm(normals, axis=1)
    real = areas > 1e-9 * max(areas.max(), 1e-12)
    if np.all(normals[real] @ n > 0):
        return MeshHeightCut(verts, centroid, n)
    return ImplicitMeshCut(SurfaceMesh(verts, tris))


def bounded_cut_from_mesh(vertices_lps: Any, faces: Any) -> Cut:
    """:func:`cut_from_mesh`, bounded by the mesh's footprint (a :class:`BoundedCut`) when
    the mesh is a plane or a height field; a folded mesh is its own implicit surface."""
    cut = cut_from_mesh(vertices_lps, faces)
    mesh = SurfaceMesh(np.asarray(vertices_lps, float).reshape(-1, 3),
                       np.asarray(faces, np.int64).reshape(-1, 3))
    if isinstance(cut, PlaneCut):
        return BoundedCut(cut, mesh, np.asarray(cut.point_lps), plane_frame(cut.normal_lps))
    if isinstance(cut, MeshHeightCut):
        return BoundedCut(cut, mesh, cut.origin, cut.frame)
    return cut
