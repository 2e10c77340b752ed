"""Surface meshes of segmented structures, in LPS mm, with VTK's multi-label SurfaceNets.

For each label-map layer holding requested structures, one ``vtkSurfaceNets3D`` pass meshes all
of them at once on the smallest crop that holds them, padded by one background voxel so that
every surface is closed, also where a structure touches the grid edge. Labels that were not
asked for are treated as background in that pass.

SurfaceNets gives a voxel cell two coincident points where a structure's voxels touch only
along an edge, leaving the mesh open there; so the net is extracted unsmoothed (points exactly
on the half-voxel lattice), coincident points are merged, and the closed multi-label mesh is
then smoothed with ``vtkConstrainedSmoothingFilter`` (the smoother SurfaceNets uses itself),
each vertex kept within a box of half a voxel around its lattice position.

Vertices are produced in the crop's scaled index frame (spacing applied, no rotation) and then
placed in patient space with the grid's direction matrix and origin, so oblique scans land
right. Faces are wound so that their normals point out of the structure. Without smoothing the
surface is exactly the boundary between the structure's voxels and the others; smoothing moves
vertices by less than half a voxel.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkFiltersCore import (
    vtkConstrainedSmoothingFilter,
    vtkQuadricDecimation,
    vtkSurfaceNets3D,
)

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation, Structure
from surgiplan.model.surface import SurfaceMesh
from surgiplan.processing.crop import bounding_box, crop_padded, pad_box, sub_geometry
from surgiplan.processing.mesh_convert import polydata_to_surface, surface_to_polydata
from surgiplan.processing.vtk_threads import VTK_PIPELINE_LOCK
from surgiplan.progress import CancelToken, ProgressCallback, check, report

DEFAULT_SMOOTHING_ITERATIONS = 16


def structure_surfaces(
    segmentation: Segmentation,
    *,
    names: list[str] | None = None,
    smoothing: int = DEFAULT_SMOOTHING_ITERATIONS,
    max_triangles: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, SurfaceMesh]:
    """Closed, outward-wound surface meshes (LPS mm) of the named structures (default: all).

    ``smoothing``: SurfaceNets smoothing iterations (0 = the blocky voxel boundary).
    ``max_triangles``: decimate (quadric) any mesh above this many triangles, for display
    copies. A structure without voxels gets an empty mesh. Keys follow ``names`` order.
    """
    wanted = _requested(segmentation, names)
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0 iterations, got {smoothing}")
    if max_triangles is not None and max_triangles < 4:
        raise ValueError(f"max_triangles must be >= 4, got {max_triangles}")
    layers = sorted({s.layer for s in wanted})
    meshes: dict[str, SurfaceMesh] = {}
    for n, layer_index in enumerate(layers):
        check(cancel)
        span = (n / len(layers), (n + 1) / len(layers))
        in_layer = [s for s in wanted if s.layer == layer_index]
        meshes.update(
            layer_surfaces(
                segmentation.layers[layer_index], segmentation.geometry,
                {s.name: s.label for s in in_layer}, smoothing=smoothing,
                progress=_scaled(progress, span), cancel=cancel,
            )
        )
    if max_triangles is not None:
        for name, mesh in meshes.items():
            check(cancel)
            meshes[name] = decimated(mesh, max_triangles=max_triangles)
    report(progress, 1.0, "surfaces")
    return {s.name: meshes[s.name] for s in wanted}


def layer_surfaces(
    labels: np.ndarray,
    geometry: ImageGeometry,
    label_of: dict[str, int],
    *,
    smoothing: int = DEFAULT_SMOOTHING_ITERATIONS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, SurfaceMesh]:
    """Meshes (LPS mm) of the labels ``label_of`` (name -> label) of one label array, one pass."""
    wanted = np.array(sorted(set(label_of.values())), dtype=np.int64)
    crop, padded = _wanted_crop(labels, wanted)
    if crop is None:
        return {name: _empty_mesh() for name in label_of}
    with VTK_PIPELINE_LOCK:
        points_local, faces, boundary = _surface_nets(
            crop, geometry.spacing_mm, wanted, smoothing, progress, cancel
        )
    crop_geometry = sub_geometry(geometry, padded)
    points_lps = points_local @ crop_geometry.direction.T + np.asarray(crop_geometry.origin_lps)
    flip = np.linalg.det(geometry.direction) < 0  # a mirroring grid reverses the winding
    return {
        name: _label_mesh(points_lps, faces, boundary, label, flip=flip)
        for name, label in label_of.items()
    }


def decimated(mesh: SurfaceMesh, *, max_triangles: int) -> SurfaceMesh:
    """The mesh reduced by quadric decimation to at most about ``max_triangles`` triangles."""
    if mesh.n_triangles <= max_triangles:
        return mesh
    decimate = vtkQuadricDecimation()
    decimate.SetInputData(surface_to_polydata(mesh))
    decimate.SetTargetReduction(1.0 - max_triangles / mesh.n_triangles)
    decimate.VolumePreservationOn()
    with VTK_PIPELINE_LOCK:
        decimate.Update()
    return polydata_to_surface(decimate.GetOutput())


# ---------------------------------------------------------------------- internals
def _wanted_crop(labels: np.ndarray, wanted: np.ndarray):
    """The smallest crop holding the ``wanted`` labels, padded by one background voxel.

    Other labels become background. Returns ``(crop, box)`` or ``(None, None)`` if absent.
    """
    occupied = bounding_box(labels)
    if occupied is None:
        return None, None
    region = labels[occupied]
    lut = np.zeros(int(max(int(region.max()), wanted.max())) + 1, dtype=labels.dtype)
    lut[wanted] = wanted
    kept = lut[region]
    box = bounding_box(kept)
    if box is None:
        return None, None
    local = pad_box(box, (1, 1, 1))
    crop = np.ascontiguousarray(crop_padded(kept, local, fill=0))
    offset = [b.start for b in occupied]
    return crop, tuple(slice(b.start + o, b.stop + o) for b, o in zip(local, offset, strict=True))


def _requested(segmentation: Segmentation, names: list[str] | None) -> list[Structure]:
    if names is None:
        return list(segmentation.structures)
    known = set(segmentation.names())
    missing = [n for n in names if n not in known]
    if missing:
        raise BadInputError(
            f"no structure named {', '.join(map(repr, missing))} in the segmentation "
            f"(it has {', '.join(map(repr, sorted(known))) or 'none'})",
            action="choose one of the listed structures",
        )
    return [segmentation.get(n) for n in dict.fromkeys(names)]


def _surface_nets(
    crop: np.ndarray,
    spacing_mm: tuple[float, float, float],
    labels: np.ndarray,
    smoothing: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run vtkSurfaceNets3D on ``crop`` ((z, y, x) labels) in its scaled index frame.

    Returns points (N, 3) mm, triangles (M, 3) and the two labels each side of every triangle
    (M, 2); a triangle's normal points out of the label in column 0.
    """
    image = vtkImageData()
    image.SetDimensions(crop.shape[2], crop.shape[1], crop.shape[0])
    image.SetSpacing(*spacing_mm)
    scalars = numpy_to_vtk(crop.reshape(-1), deep=False)
    image.GetPointData().SetScalars(scalars)
    nets = vtkSurfaceNets3D()
    nets.SetInputData(image)
    for i, label in enumerate(labels):
        nets.SetValue(i, int(label))
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(False)
    _observe(nets, progress, cancel, span=(0.0, 0.5))
    nets.Update()
    check(cancel)
    out = nets.GetOutput()
    if out.GetNumberOfCells() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 2), np.int64)
    points = vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64)
    faces = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    boundary = vtk_to_numpy(out.GetCellData().GetArray("BoundaryLabels")).reshape(-1, 2)
    points, faces = _merge_lattice_points(points, faces, spacing_mm)
    if smoothing > 0:
        points = _smoothed(points, faces, spacing_mm, smoothing, progress, cancel)
    return points, faces, boundary.astype(np.int64)


def _merge_lattice_points(
    points: np.ndarray, faces: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident points of an unsmoothed net (they sit on the half-voxel lattice)."""
    lattice = np.rint(points / (0.5 * np.asarray(spacing_mm))).astype(np.int64)
    lattice -= lattice.min(axis=0)
    extent = lattice.max(axis=0) + 1
    keys = (lattice[:, 2] * extent[1] + lattice[:, 1]) * extent[0] + lattice[:, 0]
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if unique_keys.size == keys.size:
        return points, faces
    return points[first], inverse[faces]


def _smoothed(
    points: np.ndarray,
    faces: np.ndarray,
    spacing_mm: tuple[float, float, float],
    iterations: int,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> np.ndarray:
    """Constrained Laplacian smoothing; each point stays in a box of half a voxel's size around
    its start, which keeps thin tubes from shrinking: every vertex stays within half a voxel
    diagonal of the true surface (tests/test_phantom_surfaces.py)."""
    smoother = vtkConstrainedSmoothingFilter()
    smoother.SetInputData(surface_to_polydata(SurfaceMesh(points, faces)))
    smoother.SetNumberOfIterations(int(iterations))
    smoother.SetRelaxationFactor(0.5)
    smoother.SetConstraintStrategyToConstraintBox()
    smoother.SetConstraintBox(*(0.5 * v for v in spacing_mm))
    _observe(smoother, progress, cancel, span=(0.5, 1.0))
    smoother.Update()
    check(cancel)
    return vtk_to_numpy(smoother.GetOutput().GetPoints().GetData()).astype(np.float64)


def _label_mesh(
    points_lps: np.ndarray,
    faces: np.ndarray,
    boundary: np.ndarray,
    label: int,
    *,
    flip: bool,
) -> SurfaceMesh:
    """The faces bounding ``label``, wound outwards, with only the vertices they use."""
    own = faces[boundary[:, 0] == label]
    other = faces[boundary[:, 1] == label][:, ::-1]
    selected = np.concatenate([own, other])
    if selected.shape[0] == 0:
        return _empty_mesh()
    if flip:
        selected = selected[:, ::-1]
    used = np.zeros(points_lps.shape[0], dtype=bool)
    used[selected.reshape(-1)] = True
    new_index = np.cumsum(used) - 1
    return SurfaceMesh(points_lps[used], new_index[selected])


def _empty_mesh() -> SurfaceMesh:
    return SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))


def _observe(
    algorithm,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    *,
    span: tuple[float, float],
) -> None:
    """Forward VTK progress events into ``span``; abort the algorithm when ``cancel`` is set."""
    if progress is None and cancel is None:
        return
    lo, hi = span

    def on_progress(caller, _event) -> None:
        report(progress, lo + (hi - lo) * caller.GetProgress(), "surfaces")
        if cancel is not None and cancel.cancelled:
            caller.SetAbortExecuteAndUpdateTime()

    algorithm.AddObserver("ProgressEvent", on_progress)


def _scaled(progress: ProgressCallback | None, span: tuple[float, float]):
    if progress is None:
        return None
    lo, hi = span
    return lambda fraction, text: progress(lo + (hi - lo) * fraction, text)
