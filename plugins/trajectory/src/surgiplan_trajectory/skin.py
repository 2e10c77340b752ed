"""Outward normals of the smooth outer skin surface, for entry angles (LPS, unit vectors).

The skin's mesh (SurfaceNets + constrained smoothing, see surgiplan/processing/surfaces.py)
still follows the voxel staircase: its per-vertex normals err by up to ~40 degrees (median
8.5) on the head phantom, and the gradient of the voxel signed-distance map by as much. So the
normal of a vertex is the *area-weighted* sum of its faces' normals (the vector area, which a
staircase and the smooth surface it follows share), averaged over the mesh neighbourhood by
repeated one-ring averaging: a Gaussian of about ``NORMAL_SMOOTHING_MM`` (per in-plane axis)
on the surface. On the head phantom the result agrees with the analytic ellipsoid normal within
about 2 degrees everywhere (median 0.5; tests/verification/test_trajectory_accuracy.py).

Only the *outer* skin is used (a vertex whose point ``OUTSIDE_PROBE_MM`` out along its normal
is inside the image and in no structure), so neither an inner skin boundary (a scalp shell's
skull side) nor the cap where the field of view cuts the body gives a normal; the averaging
runs on the outer skin's own faces. A point takes the normal of the nearest averaging
window's centre (see ``smoothed_vertex_normals``).

Memory: a simulation needs the normals at a few entries only, so ``skin_normals_near`` meshes
the skin in a box ``LOCAL_PAD_MM`` around them (not the whole skin surface, ~230 MiB on a
512x512x200 CT); the path search averages over the outer skin within reach of the target
only (``skin_normals_within``). Both are local operations: the answers on the head phantom
and the bench CT were unchanged (simulate JSON identical; search candidates identical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from surgiplan.model.surface import SurfaceMesh
from surgiplan.processing.crop import margin_voxels_zyx, sub_geometry
from surgiplan.processing.surfaces import layer_surfaces
from surgiplan.simulation import SimulationContext

NORMAL_SMOOTHING_MM = 6.0  # Gaussian scale of the normal averaging on the surface (mm)
SPREAD_PER_STEP = 0.66  # in-plane SD growth per sqrt(step), in mean edge lengths (measured)
MAX_STEPS = 400
OUTSIDE_PROBE_MM = 2.0
LOCAL_PAD_MM = 30.0  # skin_normals_near: 5 smoothing scales around the points
CHUNK_FACES = 1 << 17  # faces per chunk of the per-face arithmetic (bounds its temporaries)

# one entry each (whole skin, near entries, within reach): a search does not evict the normals
# that live re-scoring reads on every drag
_cache: dict[object, tuple[object, SkinNormals]] = {}
_near_cache: dict[object, tuple[object, SkinNormals]] = {}
_within_cache: dict[object, tuple[object, SkinNormals]] = {}


@dataclass(frozen=True)
class SkinNormals:
    """Outer-skin vertices (ids into the skin mesh, LPS points) and their outward normals;
    ``window_normals`` hold at the averaging windows' centres, which ``tree`` indexes."""

    ids: np.ndarray
    points_lps: np.ndarray
    normals: np.ndarray
    window_normals: np.ndarray
    tree: cKDTree
    vertex_tree: cKDTree

    def at(self, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(outward unit normals (n, 3), distance in mm to the nearest outer-skin vertex);
        NaN normals and infinite distances when there is no outer skin."""
        points = np.atleast_2d(points_lps)
        if len(self.ids) == 0:
            return np.full((len(points), 3), np.nan), np.full(len(points), np.inf)
        _, nearest = self.tree.query(points)
        gap, _ = self.vertex_tree.query(points)
        return self.window_normals[nearest], gap


def _ring_average(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Row-stochastic matrix averaging a vertex with its one-ring (vertices sharing a face)."""
    incidence = sp.csr_matrix(
        (np.ones(faces.size), (faces.T.ravel(), np.tile(np.arange(len(faces)), 3))),
        shape=(n, len(faces)))
    ring = (incidence @ incidence.T).tocsr()
    ring.data[:] = 1.0
    degree = np.maximum(np.asarray(ring.sum(axis=1)).ravel(), 1.0)
    return (sp.diags(1.0 / degree) @ ring).tocsr()


def area_weighted_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per vertex, the sum of its faces' normals times twice their area (not unit length)."""
    face_area_normals = np.empty(faces.shape, dtype=float)
    for start in range(0, len(faces), CHUNK_FACES):  # chunks: no (F, 3, 3) temporaries
        tri = vertices[faces[start:start + CHUNK_FACES]]
        face_area_normals[start:start + CHUNK_FACES] = np.cross(tri[:, 1] - tri[:, 0],
                                                                tri[:, 2] - tri[:, 0])
    return np.stack([sum(np.bincount(faces[:, corner], face_area_normals[:, axis],
                                     minlength=len(vertices)) for corner in range(3))
                     for axis in range(3)], axis=1)


def mean_edge_mm(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Mean edge length (mm) of a triangle mesh (in chunks: no (F, 3, 3) temporaries)."""
    edges = np.empty(faces.shape, dtype=float)  # (F, 3) edge lengths, mm
    for start in range(0, len(faces), CHUNK_FACES):
        part = faces[start:start + CHUNK_FACES]
        edges[start:start + CHUNK_FACES] = np.linalg.norm(
            vertices[part[:, [1, 2, 0]]] - vertices[part], axis=2)
    return float(edges.mean())


def smoothed_vertex_normals(vertices: np.ndarray, faces: np.ndarray,
                            scale_mm: float = NORMAL_SMOOTHING_MM, *,
                            edge_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(unit normals, where they hold): area-weighted face normals averaged over
    ~``scale_mm`` (see top), and the same average of the vertex positions, the centre of each
    vertex's averaging window (on an uneven mesh it drifts off the vertex by up to ~1.5 mm;
    the normal belongs to the centre: 2 degrees instead of 5 on a 22 mm sphere).
    ``edge_mm``: the mean edge length that sets the number of averaging steps (default: this
    mesh's; a part of a bigger mesh passes the whole mesh's to average the same way)."""
    both = np.hstack([area_weighted_normals(vertices, faces), vertices]).astype(np.float32)
    if len(faces):
        average = _ring_average(faces, len(vertices)).astype(np.float32)
        edge = mean_edge_mm(vertices, faces) if edge_mm is None else edge_mm
        step = SPREAD_PER_STEP * edge
        for _ in range(min(MAX_STEPS, math.ceil((scale_mm / step) ** 2))):
            both = average @ both
    normals = both[:, :3].astype(float)
    return (normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12),
            both[:, 3:].astype(float))


def _outer_vertices(context: SimulationContext, vertices: np.ndarray,
                    faces: np.ndarray) -> np.ndarray:
    """Ids of vertices whose point ``OUTSIDE_PROBE_MM`` outwards is in the image and in no
    structure: the outer skin, without its inner boundary and the caps where the field of view
    cuts the body (their normal is the image edge's, not the skin's)."""
    rough, _ = smoothed_vertex_normals(vertices, faces, scale_mm=1.0)
    probe = vertices + OUTSIDE_PROBE_MM * rough
    return np.flatnonzero(context.geometry.contains_lps(probe) & ~context.labelled_at(probe))


def skin_normals(context: SimulationContext, skin: str) -> SkinNormals:
    """The outer skin's smooth outward normals (cached per surface mesh)."""
    mesh = context.surface(skin)
    key = id(mesh)
    if key not in _cache or _cache[key][0] is not mesh:
        _cache.clear()
        _cache[key] = (mesh, _normals_of_mesh(context, mesh))
    return _cache[key][1]


def skin_normals_near(context: SimulationContext, skin: str, points_lps: np.ndarray
                      ) -> SkinNormals:
    """The outer skin's smooth outward normals near the LPS points ``(n, 3)`` only: from the
    skin's mesh on the points' box padded by ``LOCAL_PAD_MM`` (memory ~ that box, not the
    whole skin surface; cached for the last box). The surface and its averaging are local,
    so within ``LOCAL_PAD_MM - NORMAL_SMOOTHING_MM`` of the points they are those of
    :func:`skin_normals` up to the Gaussian window's tail beyond the box and the averaging
    step count, which follows the local mesh's mean edge (measured: the same angles on the
    head phantom and the bench CT, 0.01 degree apart on the body cylinder of
    tests/test_memory_budget.py). ``at`` gives infinite distances where no outer skin lies
    within the box."""
    geometry = context.geometry
    zyx = geometry.lps_to_index(np.atleast_2d(np.asarray(points_lps, float)))[:, ::-1]
    pad = np.asarray(margin_voxels_zyx(geometry, LOCAL_PAD_MM))
    lo = np.maximum(np.floor(zyx.min(axis=0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(zyx.max(axis=0)).astype(int) + 1 + pad, geometry.shape_zyx)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    key = ("near", context.snapshot_key(), skin, tuple(map(int, (*lo, *hi))))
    if key not in _near_cache:
        if np.any(hi <= lo):  # every point far off the grid
            mesh = SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
        else:
            labels = context.mask_in_box(skin, box).view(np.uint8)
            mesh = layer_surfaces(labels, sub_geometry(geometry, box), {skin: 1})[skin]
        _near_cache.clear()
        _near_cache[key] = (mesh, _normals_of_mesh(context, mesh))
    return _near_cache[key][1]


def skin_normals_within(context: SimulationContext, skin: str, centre_lps: np.ndarray,
                        radius_mm: float) -> SkinNormals:
    """Every outer-skin vertex (``ids`` into ``context.surface(skin)`` and ``points_lps``, in
    :func:`skin_normals`' order) with its smooth outward normal where it lies within
    ``radius_mm`` of ``centre_lps``, NaN beyond. The outer vertices are found on the whole
    mesh; the normal averaging runs on those within ``radius_mm + LOCAL_PAD_MM`` only (same
    values as :func:`skin_normals` up to the averaging window's tail, see
    :func:`skin_normals_near`). Cached for the last mesh, centre and radius."""
    mesh = context.surface(skin)
    centre = np.asarray(centre_lps, float).reshape(3)
    key = ("within", id(mesh), tuple(centre), float(radius_mm))
    if key not in _within_cache or _within_cache[key][0] is not mesh:
        ids = _outer_vertices(context, mesh.vertices_lps, mesh.faces)
        gap = np.linalg.norm(mesh.vertices_lps[ids] - centre, axis=1)
        outer = np.zeros(len(mesh.vertices_lps), dtype=bool)
        outer[ids] = True  # the whole outer skin's mean edge sets the averaging steps
        edge = mean_edge_mm(mesh.vertices_lps, mesh.faces[outer[mesh.faces].all(axis=1)])
        local = _normals_of_mesh(context, mesh, ids[gap <= radius_mm + LOCAL_PAD_MM], edge)
        ijk = context.geometry.lps_to_index(mesh.vertices_lps[ids])
        order = np.lexsort((ijk[:, 0], ijk[:, 1], ijk[:, 2]))  # skin_normals' order
        ids, gap = ids[order], gap[order]
        normals = np.full((len(ids), 3), np.nan)
        row = np.full(len(mesh.vertices_lps), -1)
        row[ids] = np.arange(len(ids))
        normals[row[local.ids]] = local.normals
        normals[gap > radius_mm] = np.nan
        _within_cache.clear()
        _within_cache[key] = (mesh, SkinNormals(ids, mesh.vertices_lps[ids], normals,
                                         local.window_normals, local.tree, local.vertex_tree))
    return _within_cache[key][1]


def _normals_of_mesh(context: SimulationContext, mesh: SurfaceMesh,
                     ids: np.ndarray | None = None, edge_mm: float | None = None
                     ) -> SkinNormals:
    """Smooth outward normals of the outer part of a skin mesh (see the module docstring);
    ``ids``: the outer vertices to average over, when already known; ``edge_mm``: see
    :func:`smoothed_vertex_normals`."""
    if ids is None:
        ids = _outer_vertices(context, mesh.vertices_lps, mesh.faces)
    ijk = context.geometry.lps_to_index(mesh.vertices_lps[ids])
    ids = ids[np.lexsort((ijk[:, 0], ijk[:, 1], ijk[:, 2]))]  # memory order: cache-friendly
    remap = np.full(len(mesh.vertices_lps), -1)
    remap[ids] = np.arange(len(ids))
    faces = remap[mesh.faces]
    faces = faces[(faces >= 0).all(axis=1)]  # the outer skin's own faces only
    points = np.ascontiguousarray(mesh.vertices_lps[ids])
    normals, centres = smoothed_vertex_normals(points, faces, edge_mm=edge_mm)
    tree = cKDTree(centres if len(centres) else np.zeros((0, 3)))
    at_vertex = normals[tree.query(points)[1]] if len(points) else normals
    return SkinNormals(ids, points, at_vertex, normals, tree, cKDTree(points))
