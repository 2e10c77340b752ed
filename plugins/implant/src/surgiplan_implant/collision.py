"""Collisions between placed implants: signed mesh-to-mesh clearance (LPS mm)."""

from __future__ import annotations

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]  # (vertices LPS mm (N, 3), faces (M, 3))


def _signed_distances(points: np.ndarray, mesh: Mesh) -> np.ndarray:
    """Signed distance (mm, negative inside) of points to a closed mesh."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkDoubleArray
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

    from surgiplan.model.surface import SurfaceMesh
    from surgiplan.processing.mesh_convert import surface_to_polydata

    function = vtkImplicitPolyDataDistance()
    function.SetInput(surface_to_polydata(SurfaceMesh(*mesh)))
    values = vtkDoubleArray()
    function.FunctionValue(numpy_to_vtk(np.ascontiguousarray(points, float), deep=True), values)
    return vtk_to_numpy(values).astype(float)


def _dense_points(mesh: Mesh) -> np.ndarray:
    vertices, faces = mesh
    return np.vstack([vertices, vertices[faces].mean(axis=1)])


def mesh_clearance_mm(a: Mesh, b: Mesh) -> float:
    """Smallest signed distance between two closed meshes (mm): negative = they overlap
    (its magnitude the deepest vertex/face-centre penetration), positive = the gap."""
    return float(min(_signed_distances(_dense_points(a), b).min(),
                     _signed_distances(_dense_points(b), a).min()))
