"""A resection cut ends where its surface ends (issue 15, item 7): the plug-in scores the
bounded (possibly curved) cutting surface it is given, not the infinite plane through it.
Checked on the liver phantom against its analytic truth (quasi-Monte Carlo over the shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.surface import SurfaceMesh
from surgiplan.phantoms import make_phantom
from surgiplan.simulation import ResectionInput, SimulationContext, UncertaintyModel, load_simulator
from surgiplan.twin import Twin

pytest.importorskip("surgiplan_resection", reason="install it: pip install -e plugins/resection")

from surgiplan_resection.cuts import (
    BoundedCut,
    HeightFieldCut,
    PlaneCut,
    bounded_cut_from_mesh,
    footprint_inside,
    grid_faces,
    plane_frame,
)

# the plane of tests/test_resection_phantom.py (no voxel centre on it), normal -x: removes
# the right lobe
PLANE = PlaneCut((-38.3, 0.0, 0.0), (-1.0, 0.13, 0.07))
HALF_MM = 25.0  # half side of the bounded square patch, much smaller than the liver's section


@pytest.fixture(scope="module")
def liver():
    volume, segmentation, truth = make_phantom("liver")
    twin = Twin(volume, segmentation)
    return twin, SimulationContext(twin), truth


def _patch(half_mm: float, step_mm: float = 5.0) -> SurfaceMesh:
    """A square patch of PLANE centred on its point, ``2 half_mm`` wide (u, v of plane_frame)."""
    u, v, _ = plane_frame(PLANE.normal_lps)
    a = np.arange(-half_mm, half_mm + 1e-9, step_mm)
    bb, aa = np.meshgrid(a, a, indexing="ij")
    verts = (np.asarray(PLANE.point_lps) + aa.reshape(-1, 1) * u + bb.reshape(-1, 1) * v)
    return SurfaceMesh(verts, grid_faces(len(a), len(a)))


def _analytic_ml(truth, keep) -> float:
    """Liver label-region volume (ml) where ``keep`` holds (Sobol QMC over its box)."""
    from scipy.stats import qmc

    lo, hi = np.array([-115.0, -80.0, -52.0]), np.array([66.0, 70.0, 72.0])
    points = qmc.scale(qmc.Sobol(3, seed=3).random_base2(19), lo, hi)
    inside = truth.structure("liver").signed_distance_mm(points) < 0
    inside[inside] = keep(points[inside])
    order = truth.priority_order()
    for name in order[:order.index("liver")]:
        inside[inside] = truth.structure(name).signed_distance_mm(points[inside]) >= 0
    return float(inside.mean() * np.prod(hi - lo) / 1000.0)


def _run(context, mesh: SurfaceMesh):
    sim = load_simulator("resection")
    inputs = ResectionInput(organ_structure="liver",
                            cut_vertices_lps=tuple(map(tuple, mesh.vertices_lps.tolist())),
                            cut_faces=tuple(map(tuple, mesh.faces.tolist())))
    return sim.run(context, inputs, {**sim.spec.defaults(), "display_meshes": False},
                   uncertainty=UncertaintyModel(samples=0))


def test_footprint_raster_is_exact_for_a_square_with_a_hole():
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    inner = np.array([[4, 4], [6, 4], [6, 6], [4, 6]], float)
    verts = np.vstack([outer, inner])
    faces = np.array([[0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6],
                      [3, 0, 4], [3, 4, 7]])
    axis = np.arange(-2.0, 12.0, 0.1) + 0.05
    inside = footprint_inside(verts, faces, axis, axis)
    assert np.count_nonzero(inside) * 0.01 == pytest.approx(100.0 - 4.0, abs=0.5)
    centre = int(np.argmin(np.abs(axis - 5.0)))
    assert not inside[centre, centre] and inside[centre, int(np.argmin(np.abs(axis - 2.0)))]


def test_a_cut_covering_the_organ_scores_as_the_plane(liver):
    twin, context, _ = liver
    mesh = PLANE.surface_mesh(context.geometry.bounds_lps(), spacing_mm=50.0)
    cut = bounded_cut_from_mesh(mesh.vertices_lps, mesh.faces)
    assert isinstance(cut, BoundedCut) and cut.kind == "bounded_plane"
    centres = context.geometry.index_to_lps(np.argwhere(twin.segmentation.mask("liver"))[:, ::-1])
    assert np.array_equal(cut.side_mm(centres) > 0, PLANE.side_mm(centres) > 0)


def test_a_bounded_patch_removes_only_what_lies_over_it(liver):
    """A 50 mm square patch inside the liver's section removes the prism over it on the
    removed side: equal to the voxel count of that prism and, within 3 %, to the analytic
    volume; far less than the infinite plane would remove."""
    twin, context, truth = liver
    result = _run(context, _patch(HALF_MM))
    resected = result.metric("resected_volume_ml").value
    u, v, n = plane_frame(PLANE.normal_lps)

    def over_patch(p: np.ndarray) -> np.ndarray:
        d = p - np.asarray(PLANE.point_lps)
        return (d @ n > 0) & (np.abs(d @ u) < HALF_MM) & (np.abs(d @ v) < HALF_MM)

    centres = context.geometry.index_to_lps(np.argwhere(twin.segmentation.mask("liver"))[:, ::-1])
    voxel_ml = context.geometry.voxel_volume_mm3 / 1000.0
    counted = np.count_nonzero(over_patch(centres)) * voxel_ml
    edge = max(context.geometry.spacing_mm) * 4 * 2 * HALF_MM * 60.0 / 1000.0  # rim voxels
    assert resected == pytest.approx(counted, abs=0.25 * edge)
    assert resected == pytest.approx(_analytic_ml(truth, over_patch), rel=0.03)
    whole = _analytic_ml(truth, lambda p: (p - np.asarray(PLANE.point_lps)) @ n > 0)
    assert resected < 0.5 * whole
    surface = result.details["cut_surface_vertices"]
    assert surface > 0


def test_a_curved_bounded_cut_follows_its_control_points():
    """A height field pushed 15 mm at its centre, bounded to its control grid, agrees in sign
    with the analytic surface over the grid and removes nothing beyond it."""
    bent = HeightFieldCut.flat(PLANE, size_mm=(60.0, 60.0), rows=3, cols=3).with_height(
        1, 1, 15.0)
    box = np.asarray(PLANE.point_lps) + np.array([[-40.0] * 3, [40.0] * 3])
    mesh = bent.surface_mesh(box, spacing_mm=2.0)
    u, v, _ = bent.frame
    local = mesh.vertices_lps - np.asarray(bent.centre_lps)
    keep = np.all(np.abs(np.stack([local @ u, local @ v], 1)) <= 30.0, axis=1)
    index = -np.ones(len(keep), int)
    index[keep] = np.arange(np.count_nonzero(keep))
    faces = index[mesh.faces]
    clipped = SurfaceMesh(mesh.vertices_lps[keep], faces[np.all(faces >= 0, axis=1)])
    cut = bounded_cut_from_mesh(clipped.vertices_lps, clipped.faces)
    assert isinstance(cut, BoundedCut) and cut.kind == "bounded_mesh_height_field"
    rng = np.random.default_rng(0)
    probe = np.asarray(bent.centre_lps) + rng.uniform(-45, 45, (20000, 3))
    pl = probe - np.asarray(bent.centre_lps)
    over = np.all(np.abs(np.stack([pl @ u, pl @ v], 1)) < 28.0, axis=1)
    clear = over & (np.abs(bent.side_mm(probe)) > 0.5)
    assert np.array_equal(cut.side_mm(probe[clear]) > 0, bent.side_mm(probe[clear]) > 0)
    beyond = np.any(np.abs(np.stack([pl @ u, pl @ v], 1)) > 31.0, axis=1)
    assert not np.any(cut.side_mm(probe[beyond]) > 0)
