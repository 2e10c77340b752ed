"""Resection simulator on the liver phantom: live re-scoring while the user drags a cut.

Figures (same run):

* ``live_plane_rescore_ms``: one ``live()`` re-score of a dragged plane (volumes, remnant %,
  margin, resection surface clipped to the organ at 2 mm, vessel crossings, margin colour
  map), median over a drag of 20 positions; goal < 100 ms.
* ``live_plane_vs_numpy_count``: that time over the bare numpy work a re-score cannot avoid
  (``count_nonzero(organ_centres @ normal > offset)`` on the organ's voxel centres).
* ``live_height_field_rescore_ms``: the same for a deformable 5 x 5 control-grid surface whose
  centre control point is being dragged; goal < 100 ms.
* ``full_run_s``: a full run with 1000 Monte Carlo draws and specimen/remnant surfaces
  (caches warm), for information.
* ``full_run_cold_vs_numpy_draws``: a full run with 50 draws on a fresh twin (no distance map,
  no kept sub-voxel distance: place and run) over the bare numpy work of evaluating 50 draws
  by brute force (a plane-side voxel count over the organ's box per draw, the plane moved by
  each draw's offset); ``full_run_adjusted_s``: the run after the plane is moved 3 mm (the
  "adjust" step: same twin, kept distances), with the same baseline in its detail.
"""

from __future__ import annotations

import os
import time

import numpy as np

from surgiplan.phantoms import make_phantom
from surgiplan.simulation import SimulationContext, UncertaintyModel, load_simulator
from surgiplan.twin import Twin


def _median_ms(calls) -> float:
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def run() -> list[dict]:
    from surgiplan_resection.cuts import HeightFieldCut, PlaneCut
    from surgiplan_resection.simulator import prepare

    volume, segmentation, _ = make_phantom("liver")
    context = SimulationContext(Twin(volume, segmentation))
    sim = load_simulator("resection")
    prepared = prepare(context, "liver", "tumour 1")
    normal = np.array([-1.0, 0.13, 0.07]) / np.linalg.norm([-1.0, 0.13, 0.07])
    planes = [PlaneCut((-50.0 + 1.5 * k, 0.0, 0.0), tuple(normal)) for k in range(20)]
    sim.live(prepared, planes[0])  # warm: distance maps of every critical structure
    live_ms = _median_ms([lambda p=p: sim.live(prepared, p) for p in planes])
    organ = prepared.points[prepared.nominal]
    bare_ms = _median_ms([lambda p=p: np.count_nonzero(organ @ normal > np.dot(p.point_lps,
                                                                                 normal))
                          for p in planes])
    flat = HeightFieldCut.flat(planes[5], size_mm=(160.0, 160.0))
    bent = [flat.with_height(2, 2, float(h)) for h in np.linspace(0, 20, 20)]
    height_ms = _median_ms([lambda c=c: sim.live(prepared, c) for c in bent])
    mesh = planes[5].surface_mesh(prepared.bounds_lps, spacing_mm=50.0)
    from surgiplan.simulation import ResectionInput

    inputs = ResectionInput(organ_structure="liver", target_structure="tumour 1",
                            margin_mm=10.0, cut_vertices_lps=tuple(map(tuple, mesh.vertices_lps)),
                            cut_faces=tuple(map(tuple, mesh.faces)))
    t0 = time.perf_counter()
    sim.run(context, inputs, sim.spec.defaults(), uncertainty=UncertaintyModel(samples=1000))
    full_s = time.perf_counter() - t0
    n = len(organ)
    return [*_cold_and_adjusted_rows(planes[5], normal),
        {"name": "live_plane_rescore_ms", "value": live_ms, "unit": "ms", "goal": 100.0,
         "detail": f"liver phantom, {n} organ voxels, median of 20 drag positions"},
        {"name": "live_plane_vs_numpy_count", "value": live_ms / bare_ms, "unit": "x",
         "goal": None, "detail": f"bare plane count {bare_ms:.2f} ms"},
        {"name": "live_height_field_rescore_ms", "value": height_ms, "unit": "ms",
         "goal": 100.0, "detail": "5 x 5 control grid, centre point dragged 0-20 mm"},
        {"name": "full_run_s", "value": full_s, "unit": "s", "goal": None,
         "detail": "1000 Monte Carlo draws + specimen/remnant surfaces, warm caches"},
    ]


def _plane_inputs(plane, bounds_lps):
    from surgiplan.simulation import ResectionInput

    mesh = plane.surface_mesh(bounds_lps, spacing_mm=50.0)
    return ResectionInput(organ_structure="liver", target_structure="tumour 1", margin_mm=10.0,
                          cut_vertices_lps=tuple(map(tuple, mesh.vertices_lps)),
                          cut_faces=tuple(map(tuple, mesh.faces)))


def _cold_and_adjusted_rows(plane, normal: np.ndarray, draws: int = 50) -> list[dict]:
    """A place-and-run on a fresh twin and the run after a 3 mm adjustment, against the bare
    numpy cost of ``draws`` brute-force plane-side counts over the organ's box."""
    from surgiplan_resection import scoring
    from surgiplan_resection.cuts import PlaneCut

    volume, segmentation, _ = make_phantom("liver")
    twin = Twin(volume, segmentation)
    context = SimulationContext(twin)
    sim = load_simulator("resection")
    scoring.clear_cache()  # a cold start: no sub-voxel distance kept
    geometry = twin.geometry
    organ = np.argwhere(segmentation.mask("liver"))
    lo, hi = organ.min(0), organ.max(0) + 1
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)],
                                indexing="ij"), -1).reshape(-1, 3)
    centres = geometry.index_to_lps(grid[:, ::-1].astype(float))
    inside = segmentation.mask("liver")[tuple(grid.T)]
    offsets = np.random.default_rng(0).normal(0.0, 1.0, draws)
    base = float(np.dot(plane.point_lps, normal))
    t0 = time.perf_counter()
    for e in offsets:
        np.count_nonzero(inside & (centres @ normal > base + e))
    bare_s = time.perf_counter() - t0
    bounds = geometry.index_to_lps(np.stack([lo, hi - 1])[:, ::-1].astype(float))
    bounds = np.stack([bounds.min(0), bounds.max(0)])
    model = UncertaintyModel(samples=draws)
    t0 = time.perf_counter()
    sim.run(context, _plane_inputs(plane, bounds), sim.spec.defaults(), uncertainty=model)
    cold_s = time.perf_counter() - t0
    moved = PlaneCut(tuple(np.asarray(plane.point_lps) + 3.0 * normal), tuple(normal))
    t0 = time.perf_counter()
    sim.run(context, _plane_inputs(moved, bounds), sim.spec.defaults(), uncertainty=model)
    adjusted_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    detail = (f"{draws} draws, liver phantom ({len(grid)} voxels in the organ's box); bare "
              f"numpy {draws} plane-side counts {bare_s:.3f} s; load {load:.1f}")
    return [
        {"name": "full_run_cold_vs_numpy_draws", "value": cold_s / bare_s, "unit": "x",
         "goal": None, "detail": f"place and run {cold_s:.1f} s; {detail}"},
        {"name": "full_run_adjusted_s", "value": adjusted_s, "unit": "s", "goal": None,
         "detail": f"run after a 3 mm adjustment ({adjusted_s / bare_s:.0f}x bare); {detail}"},
    ]
