"""Conversions between :class:`SurfaceMesh` (numpy, LPS mm) and vtkPolyData / trimesh."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

from surgiplan.model.surface import SurfaceMesh

if TYPE_CHECKING:
    import trimesh


def surface_to_polydata(mesh: SurfaceMesh) -> vtkPolyData:
    """A vtkPolyData holding copies of the mesh's vertices (LPS mm) and triangles."""
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(mesh.vertices_lps), deep=True))
    n = mesh.faces.shape[0]
    offsets = numpy_to_vtkIdTypeArray(np.arange(0, 3 * n + 1, 3, dtype=np.int64), deep=True)
    connectivity = numpy_to_vtkIdTypeArray(
        np.ascontiguousarray(mesh.faces.reshape(-1), dtype=np.int64), deep=True
    )
    cells = vtkCellArray()
    cells.SetData(offsets, connectivity)
    polydata = vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    return polydata


def polydata_to_surface(polydata: vtkPolyData) -> SurfaceMesh:
    """The triangles of a vtkPolyData (points taken as LPS mm) as a SurfaceMesh (copies).

    Polygons with more than three corners are triangulated; lines and vertices are dropped.
    """
    polys = polydata.GetPolys()
    if polydata.GetNumberOfPoints() == 0 or polys is None or polys.GetNumberOfCells() == 0:
        return SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    offsets = vtk_to_numpy(polys.GetOffsetsArray())
    if np.any(np.diff(offsets) != 3):
        from vtkmodules.vtkFiltersCore import vtkTriangleFilter

        triangulate = vtkTriangleFilter()
        triangulate.SetInputData(polydata)
        triangulate.PassLinesOff()
        triangulate.PassVertsOff()
        triangulate.Update()
        return polydata_to_surface(triangulate.GetOutput())
    vertices = vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    faces = vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    return SurfaceMesh(vertices, faces)


def surface_to_trimesh(mesh: SurfaceMesh) -> trimesh.Trimesh:
    """A trimesh.Trimesh view of the mesh (no merging or reordering of vertices)."""
    import trimesh

    return trimesh.Trimesh(mesh.vertices_lps, mesh.faces, process=False)
