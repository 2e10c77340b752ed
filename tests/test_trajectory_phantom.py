"""The trajectory simulator against the head phantom's exact analytic truth and the label map."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from surgiplan.simulation import (
    Level,
    PathSearchRequest,
    SimulationContext,
    TrajectoryInput,
    UncertaintyModel,
    load_simulator,
)
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

HEAD_CENTRE = np.array([2.0, 12.0, 40.0])
TUMOUR_LPS = (-28.0, 20.0, 42.0)
RADIUS_MM = 0.4
BAND_MM = 10.0


@pytest.fixture(scope="module")
def head():
    volume, segmentation, truth = shared_phantom("head")
    return SimulationContext(Twin(volume, segmentation)), truth


def _random_trajectories(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        d = rng.normal(size=3)
        entry = HEAD_CENTRE + d / np.linalg.norm(d) * np.array([74.0, 94.0, 88.0])
        target = HEAD_CENTRE + rng.uniform(-1, 1, 3) * np.array([35.0, 50.0, 40.0])
        out.append((entry, target))
    return out


def test_min_distance_matches_analytic_truth_and_label_map(head):
    context, truth = head
    sim = load_simulator("trajectory")
    params = sim.spec.defaults()
    critical = [s.name for s in context.by_role("critical")]
    assert all(truth.structure(n).exact for n in critical)
    geometry = context.geometry
    edt = {n: ndimage.distance_transform_edt(~context.mask(n), sampling=geometry.spacing_mm[::-1])
           for n in critical}
    worst_near = worst_all = worst_labels = 0.0
    for entry, target in _random_trajectories(40, seed=5):
        inputs = TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                 diameter_mm=2 * RADIUS_MM)
        result = sim.run(context, inputs, params, uncertainty=UncertaintyModel(samples=0))
        axis = entry + np.linspace(0, 1, params["path_samples"])[:, None] * (target - entry)
        for name in critical:
            got = result.metric("min_distance_mm", name).value
            exact = truth.signed_distance_mm(name, axis).min() - RADIUS_MM
            worst_all = max(worst_all, abs(got - exact))
            if 0 <= exact + RADIUS_MM <= BAND_MM:  # closest approach outside, within the band
                worst_near = max(worst_near, abs(got - exact))
            # Independent: Euclidean distance transform of the label mask (scipy), half a voxel
            # moved to the boundary, trilinear; valid where the axis stays outside.
            zyx = geometry.lps_to_index(axis)[:, ::-1].T
            outside = ndimage.map_coordinates(edt[name], zyx, order=1, mode="nearest")
            if outside.min() >= 1.0:
                from_labels = outside.min() - 0.5 - RADIUS_MM
                worst_labels = max(worst_labels, abs(got - from_labels))
    half_voxel = 0.5 * max(geometry.spacing_mm)
    half_diagonal = 0.5 * float(np.linalg.norm(geometry.spacing_mm))
    assert worst_near <= half_voxel, f"error vs analytic truth within the band {worst_near:.3f}"
    # Far from a structure or deep inside it, the twin's map (Maurer distance to voxel centres,
    # see surgiplan/processing/distance.py) errs by up to half a voxel diagonal.
    assert worst_all <= half_diagonal, f"worst error vs analytic truth {worst_all:.3f} mm"
    assert worst_labels <= half_voxel, f"worst error vs label-map EDT {worst_labels:.3f} mm"


def test_levels_and_breach_on_a_path_through_a_ventricle(head):
    context, _ = head
    sim = load_simulator("trajectory")
    ventricle = HEAD_CENTRE + np.array([12.0, -2.0, 14.0])  # centre of the left ventricle
    entry = HEAD_CENTRE + np.array([0.0, 0.0, 88.0])
    result = sim.run(context, TrajectoryInput(entry_lps=tuple(entry),
                                              target_lps=tuple(ventricle)),
                     sim.spec.defaults(), uncertainty=UncertaintyModel(samples=300))
    level = result.level("ventricles")
    assert level.level is Level.BREACH and level.min_distance_mm < -3
    assert level.breach_probability == 1.0
    assert "ventricles" in result.details["traversed"]
    low, high = result.metric("path_length_mm").ci95
    assert low < np.linalg.norm(ventricle - entry) < high


def test_live_rescore_is_fast(head):
    context, _ = head
    sim = load_simulator("trajectory")
    inputs = TrajectoryInput(entry_lps=(-70.0, 20.0, 60.0), target_lps=TUMOUR_LPS)
    model = UncertaintyModel(samples=500)
    sim.run(context, inputs, sim.spec.defaults(), uncertainty=model)  # warm caches
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        sim.run(context, inputs, sim.spec.defaults(), uncertainty=model)
        times.append(time.perf_counter() - t0)
    # The 30 ms goal is measured in bench/bench_trajectory.py (timed unit tests flake on a
    # loaded machine); here only a gross regression fails: maps recomputed per run take seconds.
    assert min(times) < 0.5, f"live re-score took {min(times) * 1000:.1f} ms"


def test_search_finds_safe_entries_and_a_heatmap(head):
    context, truth = head
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=TUMOUR_LPS, top_k=5)
    result = sim.search(context, request, sim.spec.defaults())
    assert result.n_candidates > 5000 and 0 < result.n_feasible < result.n_candidates
    assert len(result.candidates) == 5 and result.pareto
    heat = result.heatmaps[0]
    assert heat.values.shape == (result.n_candidates,)
    assert np.isnan(heat.values).sum() == result.n_candidates - result.n_feasible
    for c in result.candidates:
        assert c.length_mm <= request.max_length_mm and c.angle_deg <= request.max_angle_deg
        assert min(c.exact_clearance_mm.values()) >= 0
        axis = np.asarray(c.entry_lps) + np.linspace(0, 1, 400)[:, None] * (
            np.asarray(TUMOUR_LPS) - np.asarray(c.entry_lps))
        analytic = min(truth.signed_distance_mm(n, axis).min() for n in c.exact_clearance_mm)
        assert abs(min(c.exact_clearance_mm.values()) - (analytic - 0.4)) < 0.6
    # Pareto: no front member dominates another.
    pts = np.array([[-c.clearance_mm, c.length_mm, c.angle_deg] for c in result.pareto])
    dominates = np.all(pts[:, None] <= pts[None], axis=2) & np.any(pts[:, None] < pts[None],
                                                                      axis=2)
    assert not dominates.any()
