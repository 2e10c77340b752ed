"""Structure surfaces: LPS placement on oblique grids, closed outward meshes, decimation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import trimesh

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.processing.mesh_convert import (
    polydata_to_surface,
    surface_to_polydata,
    surface_to_trimesh,
)
from surgiplan.processing.surfaces import (
    coarse_surface,
    structure_surfaces,
    surface_nets_triangles,
)
from tests.test_distance import centres_lps, grid_around, rotation

CENTRE = np.array([20.0, -35.0, 110.0])


def sphere_segmentation(geometry, radius=9.0) -> Segmentation:
    seg = Segmentation(geometry=geometry, layers=[np.zeros(geometry.shape_zyx, np.uint8)])
    inside = np.linalg.norm(centres_lps(geometry) - CENTRE, axis=-1) <= radius
    seg.add("tumour", inside, role="target")
    return seg


def check_closed_outward(mesh, *, manifold=True) -> trimesh.Trimesh:
    """Closed with consistent winding, and outward; ``manifold=False`` allows pinch edges.

    Voxels that touch only along an edge give a closed surface whose pinch edge has 4 faces.
    """
    tm = surface_to_trimesh(mesh)
    if manifold:
        assert tm.is_watertight and tm.is_winding_consistent
    directed = mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    uses = Counter(map(tuple, directed.tolist()))
    assert all(uses[(b, a)] == n for (a, b), n in uses.items()), "open or inconsistent edge"
    assert tm.volume > 0  # outward normals give a positive enclosed volume
    return tm


@pytest.mark.parametrize(
    ("spacing", "direction"),
    [
        ((0.8, 0.8, 1.6), rotation((1, 2, 0.5), 30)),
        ((1.0, 0.7, 1.2), rotation((0, 1, 0), 90) @ np.diag([1, 1, -1])),  # mirroring grid
    ],
)
def test_sphere_surface_lands_in_lps_on_oblique_grid(spacing, direction):
    geometry = grid_around(CENTRE, 14.0, spacing, direction)
    mesh = structure_surfaces(sphere_segmentation(geometry))["tumour"]
    radial = np.linalg.norm(mesh.vertices_lps - CENTRE, axis=1)
    half_diagonal = 0.5 * np.linalg.norm(spacing)
    assert np.abs(radial - 9.0).max() <= half_diagonal + 0.25 * max(spacing)
    tm = check_closed_outward(mesh)
    assert tm.volume == pytest.approx(4 / 3 * np.pi * 9.0**3, rel=0.12)
    centroids = tm.triangles_center - CENTRE
    outward = np.einsum("ij,ij->i", tm.face_normals, centroids) > 0
    assert outward.mean() > 0.99


def test_unsmoothed_surface_is_the_voxel_boundary():
    geometry = grid_around(CENTRE, 12.0, (1.0, 1.0, 2.0), rotation((1, 0, 0), 20))
    seg = sphere_segmentation(geometry, radius=7.0)
    mesh = structure_surfaces(seg, smoothing=0)["tumour"]
    tm = check_closed_outward(mesh)
    assert tm.volume == pytest.approx(seg.voxel_count("tumour") * 2.0, rel=1e-6)


def test_multi_label_layers_names_and_grid_edge():
    geometry = ImageGeometry((40, 36, 30), (1.0, 1.0, 1.5), (-20, 10, -5), rotation((0, 0, 1), 15))
    seg = Segmentation(geometry=geometry, layers=[np.zeros(geometry.shape_zyx, np.uint8)])
    z, y, x = np.indices(geometry.shape_zyx)
    a = (x - 12) ** 2 + (y - 18) ** 2 + ((z - 15) * 1.5) ** 2 <= 64
    b = ((x - 24) ** 2 + (y - 18) ** 2 + ((z - 15) * 1.5) ** 2 <= 49) & ~a  # touches a
    edge = (x >= 30) & (y < 8)  # box cut by the grid edges
    overlap = (x - 14) ** 2 + (y - 18) ** 2 <= 9  # tube through a: goes to a second layer
    for name, mask in [("a", a), ("b", b), ("edge", edge), ("tube", overlap), ("none", a & b)]:
        seg.add(name, mask)
    assert len(seg.layers) == 2
    meshes = structure_surfaces(seg, smoothing=0)
    assert list(meshes) == ["a", "b", "edge", "tube", "none"]
    for name in ("a", "b", "edge", "tube"):
        tm = check_closed_outward(meshes[name], manifold=name != "b")
        assert tm.volume == pytest.approx(seg.voxel_count(name) * 1.5, rel=1e-6), name
    assert meshes["none"].is_empty()
    only = structure_surfaces(seg, names=["b", "tube"])
    assert list(only) == ["b", "tube"]
    check_closed_outward(only["b"], manifold=False)
    with pytest.raises(BadInputError, match="no structure named 'liver'"):
        structure_surfaces(seg, names=["liver"])


def test_max_triangles_meshes_coarser_and_keeps_the_shape():
    geometry = grid_around(CENTRE, 16.0, (0.5, 0.5, 0.5))
    seg = sphere_segmentation(geometry, radius=12.0)
    full = structure_surfaces(seg)["tumour"]
    assert surface_nets_triangles(seg.layers[0], 1) == full.n_triangles > 10_000
    for budget in (2000, 6000):
        small = structure_surfaces(seg, max_triangles=budget)["tumour"]
        assert budget / 4 <= small.n_triangles <= budget
        radial = np.linalg.norm(small.vertices_lps - CENTRE, axis=1)
        assert np.abs(radial - 12.0).max() < 0.6
        check_closed_outward(small)
    same = structure_surfaces(seg, max_triangles=full.n_triangles)["tumour"]
    assert np.array_equal(same.faces, full.faces)  # within the budget: the full mesh


def test_coarse_surface_lands_in_lps_on_a_mirroring_oblique_grid():
    direction = rotation((0, 1, 0), 90) @ np.diag([1, 1, -1])
    geometry = grid_around(CENTRE, 16.0, (0.6, 0.5, 0.8), direction)
    seg = sphere_segmentation(geometry, radius=10.0)
    small = coarse_surface(seg.layers[0], geometry, 1, max_triangles=1500)
    assert 0 < small.n_triangles <= 1500
    radial = np.linalg.norm(small.vertices_lps - CENTRE, axis=1)
    assert np.abs(radial - 10.0).max() < 0.8
    check_closed_outward(small)


def test_vtk_uses_the_threaded_smp_backend():
    # surgiplan/__init__.py (imported above) sets it before VTK first loads.
    from vtkmodules.vtkCommonCore import vtkSMPTools

    assert vtkSMPTools.GetBackend() == "STDThread"


def test_polydata_round_trip():
    geometry = grid_around(CENTRE, 8.0, (1.0, 1.0, 1.0))
    mesh = structure_surfaces(sphere_segmentation(geometry, radius=5.0))["tumour"]
    back = polydata_to_surface(surface_to_polydata(mesh))
    assert np.array_equal(back.faces, mesh.faces)
    assert np.allclose(back.vertices_lps, mesh.vertices_lps)
