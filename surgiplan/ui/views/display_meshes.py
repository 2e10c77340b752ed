"""Display copies for the 3D view, built in workers so the GUI thread only adds actors.

A display mesh is a pyvista ``PolyData`` in LPS mm with point normals already computed (the
renderer then shades it smoothly without a normals filter running on the GUI thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from surgiplan.model.surface import SurfaceMesh
from surgiplan.model.volume import ImageVolume

if TYPE_CHECKING:
    import pyvista as pv


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (n, 3): area-weighted sums of the faces' normals (right-hand winding).

    Plain numpy in short calls rather than one VTK filter call: a worker computing them does not
    hold the GIL for long, so the GUI thread keeps running.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            out[:, axis] += np.bincount(f[:, corner], weights=face_n[:, axis],
                                        minlength=len(v))
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(length > 0, length, 1.0)


def display_smoothed(mesh: SurfaceMesh, *, iterations: int = 12) -> SurfaceMesh:
    """A visually smooth display copy: Taubin lambda/mu smoothing (no shrinkage), which hides
    the voxel terraces that lighting shows on large surfaces. Display only: measurements use
    the twin's own surfaces, which stay within half a voxel of the segmentation."""
    from scipy import sparse

    v = np.asarray(mesh.vertices_lps, np.float64)
    f = np.asarray(mesh.faces, np.int64)
    if len(f) == 0 or iterations <= 0:
        return mesh
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adjacency = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(v), len(v)))
    adjacency.data[:] = 1.0  # duplicate edges count once
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    average = sparse.diags(1.0 / np.where(degree > 0, degree, 1.0)) @ adjacency
    for _ in range(iterations):
        for factor in (0.5, -0.53):  # Taubin 1995: shrink, then inflate
            v = v + factor * (average @ v - v)
    return SurfaceMesh(v, f)


def clustered(mesh: SurfaceMesh, *, max_triangles: int) -> SurfaceMesh:
    """A copy of ``mesh`` (LPS mm) with at most about ``max_triangles`` triangles, by quadric
    vertex clustering (``vtkQuadricClustering``: ~0.3 s for 200k triangles, against seconds
    for quadric decimation). The cell size follows from the area: a surface of area ``A``
    meshed at cell ``c`` has about ``2 A / c^2`` triangles. Display only (the grid snaps
    vertices by up to half a cell)."""
    from vtkmodules.vtkFiltersCore import vtkQuadricClustering

    from surgiplan.processing.mesh_convert import polydata_to_surface, surface_to_polydata
    from surgiplan.processing.vtk_threads import VTK_PIPELINE_LOCK

    if mesh.n_triangles <= max_triangles:
        return mesh
    v = np.asarray(mesh.vertices_lps, np.float64)
    tri = v[np.asarray(mesh.faces, np.int64)]
    area = float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                                axis=1).sum()) / 2.0
    extent = np.ptp(v, axis=0)
    cell = np.sqrt(2.0 * area / max_triangles)
    out = mesh
    for _ in range(4):  # the estimate is close; shrink the grid while over budget
        divisions = [max(2, int(e / cell)) for e in extent]
        cluster = vtkQuadricClustering()
        cluster.SetInputData(surface_to_polydata(mesh))
        cluster.AutoAdjustNumberOfDivisionsOff()
        cluster.SetNumberOfDivisions(*divisions)
        with VTK_PIPELINE_LOCK:
            cluster.Update()
        out = polydata_to_surface(cluster.GetOutput())
        if out.n_triangles <= 1.1 * max_triangles:
            break
        cell *= 1.15 * np.sqrt(out.n_triangles / max_triangles)
    return out


def mesh_to_polydata(mesh: SurfaceMesh, *, normals: bool = False) -> pv.PolyData:
    """A pyvista PolyData of a SurfaceMesh (points in LPS mm), with point normals if asked."""
    import pyvista as pv

    faces = np.hstack([np.full((mesh.n_triangles, 1), 3, np.int64), mesh.faces]).ravel()
    poly = pv.PolyData(np.asarray(mesh.vertices_lps, np.float32), faces)
    if normals and mesh.n_triangles:
        poly.point_data["Normals"] = vertex_normals(mesh.vertices_lps, mesh.faces).astype(
            np.float32)
        poly.point_data.active_normals_name = "Normals"
        poly.point_data.active_scalars_name = None  # normals shade the mesh, never colour it
    return poly


@dataclass
class Scene3D:
    """What the 3D view shows of a twin: a subsampled volume and display surfaces."""

    volume: ImageVolume | None = None
    surfaces: dict[str, pv.PolyData] = field(default_factory=dict)  # structure name -> mesh
    scan_surface: pv.PolyData | None = None  # iso-surface when the twin has no structures
    # the smoothed display surfaces made (not read from the bundle's cache): kept by the
    # window and written into the bundle's display cache when the case is saved
    made: dict[str, SurfaceMesh] = field(default_factory=dict)


# ---------------------------------------------------------------------------- display cache
# The smoothed display surfaces travel in the case bundle (``display/`` entries, kept by the
# bundle's extras mechanism), keyed by a hash of the structure's voxels and the grid: a
# reopened case shows them without meshing; an edited structure's key no longer matches.
DISPLAY_FOLDER = "display/"
DISPLAY_INDEX = f"{DISPLAY_FOLDER}index.json"


def structure_keys(segmentation) -> dict[str, str]:
    """SHA-256 of each structure's voxels (packed mask) and the grid, by structure name."""
    import hashlib

    geo = segmentation.geometry
    grid = repr((geo.size, geo.spacing_mm, geo.origin_lps, np.round(geo.direction, 9).tolist()))
    keys = {}
    for s in segmentation.structures:
        digest = hashlib.sha256(grid.encode())
        layer = segmentation.layers[s.layer]
        for k in range(0, layer.shape[0], 8):  # 8 planes (a multiple of 8 voxels) at a time:
            # the same bytes as packing the whole mask, without a full-grid mask
            digest.update(np.packbits(layer[k:k + 8] == s.label).data)
        keys[s.name] = digest.hexdigest()
    return keys


def _entry_name(name: str) -> str:
    import hashlib

    return f"{DISPLAY_FOLDER}{hashlib.sha256(name.encode()).hexdigest()[:20]}.vtp"


def cached_display_meshes(twin, names: list[str] | None = None) -> dict[str, SurfaceMesh]:
    """Display surfaces stored in ``twin.bundle_extras`` whose key still matches the voxels."""
    import json

    from surgiplan.io.bundle import vtp_to_mesh

    raw = twin.bundle_extras.get(DISPLAY_INDEX)
    if not raw:
        return {}  # nothing cached: no need to hash the voxels
    try:
        index = json.loads(raw)
    except ValueError:
        return {}
    keys = structure_keys(twin.segmentation)
    wanted = twin.segmentation.names() if names is None else names
    found: dict[str, SurfaceMesh] = {}
    for s in twin.structures:
        record = index.get(s.name) if isinstance(index, dict) else None
        if s.name not in wanted or not isinstance(record, dict):
            continue
        entry = record.get("entry")
        if record.get("key") != keys[s.name] or entry not in twin.bundle_extras:
            continue
        try:
            found[s.name] = vtp_to_mesh(twin.bundle_extras[entry], path=entry)
        except Exception:  # a damaged cache entry is simply rebuilt
            continue
    return found


def display_cache_entries(twin, meshes: dict[str, SurfaceMesh]) -> dict[str, bytes]:
    """Bundle entries storing ``meshes`` (display surfaces) with their keys, merged into the
    twin's current display index."""
    import json

    from surgiplan.io.bundle import mesh_to_vtp

    keys = structure_keys(twin.segmentation)
    raw = twin.bundle_extras.get(DISPLAY_INDEX)
    try:
        index = json.loads(raw) if raw else {}
    except ValueError:
        index = {}
    index = {k: v for k, v in (index if isinstance(index, dict) else {}).items()
             if k in twin.segmentation.names()}
    entries: dict[str, bytes] = {}
    for s in twin.structures:
        if s.name not in meshes:
            continue
        entry = _entry_name(s.name)
        entries[entry] = mesh_to_vtp(meshes[s.name])
        index[s.name] = {"key": keys[s.name], "entry": entry}
    entries[DISPLAY_INDEX] = json.dumps(index, sort_keys=True).encode()
    return entries
