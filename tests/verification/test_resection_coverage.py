"""Coverage of the resection simulator's 95 % intervals: draw the stated errors (organ and target
boundary offsets of one voxel, a 2 mm transection placement SD), recompute the true values
from the liver phantom's analytic truth (quasi-Monte Carlo volumes, analytic plane-to-sphere
margin, analytic vessel sections; ``_resection_truth``) and require 93-97 % of them inside each
interval, probabilities included (their Wilson intervals over repeated seeded runs). Negative
control: intervals from a model without the boundary and placement errors must fail."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("surgiplan_resection", reason="install it: pip install -e plugins/resection")

from surgiplan.simulation import ResectionInput, UncertaintyModel, load_simulator
from tests.verification._resection_truth import liver_case, plane_side, qmc_liver, section_diameter

POINT, NORMAL = np.array([-38.3, 0.0, 0.0]), np.array([-1.0, 0.13, 0.07])
TUMOUR_CENTRE, TUMOUR_RADIUS = np.array([-65.0, -25.0, 20.0]), 12.0
CUT_SD_MM = 2.0
WORLDS = 2000


def _inputs(case, **kw) -> ResectionInput:
    sim = load_simulator("resection")
    mesh = sim.plane_cut(POINT, NORMAL).surface_mesh(case.context.geometry.bounds_lps(),
                                                      spacing_mm=50.0)
    return ResectionInput(organ_structure="liver", target_structure="tumour 1",
                          cut_vertices_lps=tuple(map(tuple, mesh.vertices_lps.tolist())),
                          cut_faces=tuple(map(tuple, mesh.faces.tolist())), **kw)


def _run(case, boundary_sd, cut_sd, samples=4000, seed=11):
    sim = load_simulator("resection")
    params = {**sim.spec.defaults(), "display_meshes": False, "liver_condition": "cirrhosis"}
    model = UncertaintyModel(entry_sd_mm=0.0, target_sd_mm=cut_sd, boundary_sd_mm=boundary_sd,
                             samples=samples, seed=seed)
    return sim.run(case.context, _inputs(case, margin_mm=5.0), params, uncertainty=model)


def _worlds(case, n, seed=5):
    """True values of ``n`` worlds drawn from the stated model (analytic truth)."""
    world = qmc_liver()
    sd = max(case.context.geometry.spacing_mm)
    rng = np.random.default_rng(seed)
    e_o, e_t, e_c = rng.normal(0, sd, n), rng.normal(0, sd, n), rng.normal(0, CUT_SD_MM, n)
    side = plane_side(world.points, POINT, NORMAL)
    organ = np.searchsorted(np.sort(world.d_liver), e_o) * world.cell_ml
    resected = np.array([np.count_nonzero((world.d_liver < eo) & (side > -ec))
                         for eo, ec in zip(e_o, e_c, strict=True)]) * world.cell_ml
    n_hat = NORMAL / np.linalg.norm(NORMAL)
    margin0 = float((TUMOUR_CENTRE - POINT) @ n_hat) - TUMOUR_RADIUS
    foot = TUMOUR_CENTRE - (margin0 + TUMOUR_RADIUS) * n_hat
    assert case.truth.signed_distance_mm("liver", foot[None])[0] < 0  # the nearest cut point
    return {"organ_volume_ml": organ, "resected_volume_ml": resected,
            "remnant_volume_ml": organ - resected,
            "remnant_pct": 100 * (organ - resected) / organ,
            "margin_mm": margin0 + e_c - e_t, "e_v": rng.normal(0, sd, (n, 8))}


def _coverage(result, truth) -> dict[str, float]:
    out = {}
    for key in ("organ_volume_ml", "resected_volume_ml", "remnant_volume_ml", "remnant_pct",
                "margin_mm"):
        m = result.metric(key, "tumour 1" if key == "margin_mm" else None)
        low, high = m.ci95
        out[key] = float(np.mean((truth[key] >= low) & (truth[key] <= high)))
    case = liver_case()
    for k, m in enumerate(x for x in result.metrics
                          if x.key == "crossing_diameter_mm" and x.assessable):
        c = max((c for c in result.details["crossings"] if c["structure"] == m.structure),
                key=lambda c: c["diameter_mm"])
        true = np.maximum(section_diameter(case.truth, m.structure, np.asarray(c["point_lps"]),
                                           NORMAL, half_mm=15.0) + 2 * truth["e_v"][:, k], 0.0)
        out[f"diameter {m.structure}"] = float(np.mean((true >= m.ci95[0]) &
                                                       (true <= m.ci95[1])))
    return out


@pytest.fixture(scope="module")
def worlds():
    return _worlds(liver_case(), WORLDS)


def test_prediction_intervals_cover_95_percent_of_the_true_values(worlds):
    result = _run(liver_case(), None, CUT_SD_MM)
    coverage = _coverage(result, worlds)
    assert len(coverage) >= 6
    bad = {k: v for k, v in coverage.items() if not 0.93 <= v <= 0.97}
    assert not bad, f"coverage outside 93-97 %: {bad} (all: {coverage})"


def test_negative_control_without_boundary_and_placement_error_fails(worlds):
    result = _run(liver_case(), 0.0, 0.0)
    coverage = _coverage(result, worlds)
    assert all(v < 0.93 for k, v in coverage.items() if not k.startswith("diameter"))


def _probability_coverage(case, cut_sd, true_p: dict[str, float], runs=300, samples=50):
    sim = load_simulator("resection")
    from surgiplan_resection.simulator import build_result

    prepared = sim.prepare(case.context, "liver", "tumour 1")
    score = prepared.score(sim.plane_cut(POINT, NORMAL), rule="cut_side", margin_mm=5.0)
    params = {**sim.spec.defaults(), "liver_condition": "cirrhosis"}
    sd = max(case.context.geometry.spacing_mm)
    hits = {k: 0 for k in true_p}
    for seed in range(runs):
        draws = prepared.intervals(score, sd_mm=sd, cut_sd_mm=cut_sd, samples=samples,
                                   seed=1000 + seed)
        result = build_result(score, draws, params, required_margin_mm=true_p["_required"])
        for key in hits:
            if key.startswith("_"):
                continue
            m = result.metric(key, "tumour 1" if key == "p_margin_below_required" else None)
            hits[key] += m.ci95[0] <= true_p[key] <= m.ci95[1]
    return {k: v / runs for k, v in hits.items() if not k.startswith("_")}


def _true_probabilities(worlds) -> dict[str, float]:
    margin = float(np.quantile(worlds["margin_mm"], 0.3))
    return {"p_remnant_below_threshold": float(np.mean(worlds["remnant_pct"] < 40.0)),
            "p_margin_below_required": float(np.mean(worlds["margin_mm"] < margin)),
            "_required": margin}


@pytest.fixture(scope="module")
def good(worlds) -> dict[str, float]:
    """Coverage of both probabilities under the stated model: one set of 300 seeded runs
    serves the remnant and the margin test (each run's result holds both intervals)."""
    return _probability_coverage(liver_case(), CUT_SD_MM, _true_probabilities(worlds))


def test_remnant_probability_interval_covers_the_true_probability(worlds, good):
    case = liver_case()
    true_p = _true_probabilities(worlds)
    assert 0.05 < true_p["p_remnant_below_threshold"] < 0.95
    assert 0.93 <= good["p_remnant_below_threshold"] <= 0.97, good
    bad = _probability_coverage(case, 0.0, true_p, runs=100)
    assert bad["p_remnant_below_threshold"] < 0.93, bad


def test_margin_probability_interval_covers_the_true_probability(good):
    # the interval carries the staircase bias of the measured margin (one-sided, h/6: 0.16 mm
    # measured here); without it coverage was 91 %
    print("coverage", good)
    assert 0.93 <= good["p_margin_below_required"] <= 0.97, good
