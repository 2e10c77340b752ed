"""Derived data computed from images and label maps (Qt-free, VTK-render-free).

Modules (import the one you need; this package imports nothing heavy by itself):

* :mod:`surgiplan.processing.distance` - signed distance maps (mm, positive outside) and a
  trilinear sampler of any volume at LPS points.
* :mod:`surgiplan.processing.surfaces` - multi-label surface meshes in LPS mm.
* :mod:`surgiplan.processing.resample` - putting a volume onto another grid; grid overlap.
* :mod:`surgiplan.processing.mesh_convert` - SurfaceMesh <-> vtkPolyData / trimesh.
"""
