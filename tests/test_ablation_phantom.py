"""The ablation simulator against the liver phantom's exact analytic tumour (a 12 mm sphere).

Analytic references: the margin is min over the sphere's surface of the exact signed distance
to the ellipsoid (the phantom's own exact ellipsoid distance, dense surface sampling); the
coverage is the fraction of a dense uniform sample of the ball inside the ellipsoid. Tolerance:
half a voxel (half the largest spacing, 0.75 mm on this 1 x 1 x 1.5 mm grid); the coverage must
lie between the analytic coverages of the zone shrunk and grown by half a voxel.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.phantoms.primitives import Ellipsoid
from surgiplan.simulation import (
    AblationInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
    run_simulation,
)
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

CENTRE = np.array([-65.0, -25.0, 20.0])  # "tumour 1" of the liver phantom
RADIUS = 12.0


@pytest.fixture(scope="module")
def liver():
    volume, segmentation, truth = shared_phantom("liver")
    assert truth.structure("tumour 1").exact
    return SimulationContext(Twin(volume, segmentation))


@pytest.fixture(scope="module")
def sphere_samples():
    rng = np.random.default_rng(7)
    u = rng.normal(size=(100_000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    ball = rng.uniform(-1, 1, (300_000, 3))
    ball = ball[np.linalg.norm(ball, axis=1) <= 1.0]
    return CENTRE + RADIUS * u, CENTRE + RADIUS * ball


def _ellipsoid(tip, shaft, long_mm, short_mm, grow_mm=0.0) -> Ellipsoid:
    axis = np.asarray(tip, float) - np.asarray(shaft, float)
    axis /= np.linalg.norm(axis)
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    semi = (short_mm / 2 + grow_mm, short_mm / 2 + grow_mm, long_mm / 2 + grow_mm)
    return Ellipsoid(tip, semi, np.column_stack([e1, np.cross(axis, e1), axis]))


CASES = [  # tip (= zone centre), shaft point, long, short
    (CENTRE, CENTRE + np.array([-45, 0, 0]), 40.0, 34.0),
    (CENTRE + np.array([2, -1.5, 1]), CENTRE + np.array([-40, -15, 20]), 44.0, 36.0),
    (CENTRE + np.array([4, 3, -2]), CENTRE + np.array([-30, 30, 10]), 30.0, 22.0),
    (CENTRE + np.array([-6, 0, 0]), CENTRE + np.array([-50, 5, -5]), 36.0, 28.0),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_coverage_and_margin_equal_the_analytic_values_within_half_a_voxel(
        liver, sphere_samples, case):
    tip, shaft, long_mm, short_mm = CASES[case]
    surface, ball = sphere_samples
    inputs = AblationInput(device_id="custom", tip_lps=tuple(tip), shaft_lps=tuple(shaft),
                           settings={"long_mm": long_mm, "short_mm": short_mm},
                           target_structure="tumour 1")
    result = run_simulation(load_simulator("ablation"), liver, inputs,
                            parameters={"score_paths": False},
                            uncertainty=UncertaintyModel(samples=0))
    assert result.ok, result.error
    half_voxel = max(liver.geometry.spacing_mm) / 2
    margin = -_ellipsoid(tip, shaft, long_mm, short_mm).signed_distance(surface).max()
    assert result.metric("min_margin_mm").value == pytest.approx(margin, abs=half_voxel)
    coverage = {g: 100 * np.mean(_ellipsoid(tip, shaft, long_mm, short_mm, g)
                                 .signed_distance(ball) < 0) for g in (-half_voxel, half_voxel)}
    assert coverage[-half_voxel] - 0.1 <= result.metric("coverage_pct").value \
        <= coverage[half_voxel] + 0.1
    if case == 0:  # concentric: the margin is the short semi-axis minus the radius
        assert margin == pytest.approx(short_mm / 2 - RADIUS, abs=1e-3)
        assert result.metric("coverage_pct").value == 100.0
    if case == 3:
        assert result.metric("coverage_pct").value < 100.0
        assert result.metric("min_margin_mm").value < 0


def test_monte_carlo_gives_intervals_and_collapses_without_error(liver):
    sim = load_simulator("ablation")
    inputs = AblationInput(device_id="custom", tip_lps=tuple(CENTRE),
                           shaft_lps=tuple(CENTRE + np.array([-45, 0, 0])),
                           settings={"long_mm": 44, "short_mm": 40},
                           target_structure="tumour 1")
    params = {"score_paths": False}
    res = run_simulation(sim, liver, inputs, parameters=params,
                         uncertainty=UncertaintyModel(samples=400, seed=3))
    margin = res.metric("min_margin_mm")
    low, high = margin.ci95
    assert low < margin.value < high and high - low > 2.0
    p5 = res.metric("p_margin_ge_5mm")
    assert 0.0 < p5.value < 1.0 and p5.ci95[0] <= p5.value <= p5.ci95[1]
    exact = run_simulation(sim, liver, inputs, parameters={**params, "zone_long_sd_pct": 0.0,
                                                           "zone_short_sd_pct": 0.0,
                                                           "discretisation": False},
                           uncertainty=UncertaintyModel(entry_sd_mm=0, target_sd_mm=0,
                                                        boundary_sd_mm=0, samples=50))
    m = exact.metric("min_margin_mm")
    assert m.ci95 == pytest.approx((m.value, m.value))
    assert exact.metric("p_margin_ge_5mm").value == float(m.value >= 5.0)


def test_composite_zone_covers_more_than_each_probe(liver):
    sim = load_simulator("ablation")
    scorer = sim.live_scorer(liver)
    first = dict(device_id="custom", tip_lps=tuple(CENTRE + np.array([0, -7, 0])),
                 shaft_lps=tuple(CENTRE + np.array([-45, -7, 0])),
                 settings={"long_mm": 36, "short_mm": 20}, target_structure="tumour 1")
    second = dict(first, tip_lps=tuple(CENTRE + np.array([0, 7, 0])),
                  shaft_lps=tuple(CENTRE + np.array([-45, 7, 0])))
    a = scorer.score(AblationInput(**first))["coverage_pct"]
    b = scorer.score(AblationInput(**second))["coverage_pct"]
    both = AblationInput(**first, extra_probes=(
        {k: v for k, v in second.items() if k != "target_structure"},))
    union = scorer.score(both)
    assert union["coverage_pct"] > max(a, b)
    # The union, not the sum (15.08 ml): an independent 0.25 mm grid count of either spheroid.
    step = 0.25
    x, y, z = np.meshgrid(np.arange(-18, 18, step) + step / 2,
                          np.arange(-17, 17, step) + step / 2,
                          np.arange(-10, 10, step) + step / 2, indexing="ij")
    inside = ((x / 18) ** 2 + ((y - 7) ** 2 + z ** 2) / 100 <= 1) | \
        ((x / 18) ** 2 + ((y + 7) ** 2 + z ** 2) / 100 <= 1)
    union_ml = inside.sum() * step ** 3 / 1000
    assert union_ml == pytest.approx(14.16, abs=0.01)
    assert union["zone_volume_ml"] == pytest.approx(union_ml, rel=0.005)


def test_heat_sink_flags_a_large_vessel_touching_the_zone_higher_for_rf(liver):
    sim = load_simulator("ablation")
    portal = np.array([-55.0, 2.0, 5.0])  # on the right portal branch (radius 4.5 mm)
    inputs = dict(device_id="custom", tip_lps=tuple(portal + np.array([-16, 0, 0])),
                  shaft_lps=tuple(portal + np.array([-60, 0, 0])), settings={"long_mm": 30,
                                                                  "short_mm": 24},
                  target_structure="tumour 1")
    results = {}
    for modality in ("microwave", "rf"):
        results[modality] = run_simulation(
            sim, liver, AblationInput(**inputs),
            parameters={"score_paths": False, "custom_modality": modality},
            uncertainty=UncertaintyModel(samples=0))
    heat = results["rf"].metric("heat_sink_diameter_mm", "portal veins").value
    assert 3.0 < heat < 12.0
    assert results["rf"].details["heat_sink"][0]["risk"] == "high"
    assert results["microwave"].details["heat_sink"][0]["risk"] == "moderate"
    assert results["rf"].metric("volume_in_zone_ml", "portal veins").value > 0
    assert results["rf"].level("portal veins").level == "breach"


def test_result_carries_zone_mesh_on_the_zone_and_path_metrics(liver):
    sim = load_simulator("ablation")
    inputs = AblationInput(device_id="generic-microwave",
                           tip_lps=tuple(CENTRE + np.array([6, 0, 0])),
                           shaft_lps=tuple(CENTRE + np.array([-45, 0, 0])),
                           settings={"power_w": 100, "time_min": 10})
    res = run_simulation(sim, liver, inputs, uncertainty=UncertaintyModel(samples=100))
    assert res.ok, res.error
    assert res.details["target"] == "tumour 1"  # the nearest target structure
    mesh = res.geometry.meshes[0]
    zone = _ellipsoid(np.asarray(res.details["probes"][0]["zone_centre_lps"]),
                      np.asarray(res.details["probes"][0]["zone_centre_lps"])
                      - np.asarray(res.details["probes"][0]["zone_axis_lps"]), 48.0, 36.0)
    assert np.abs(zone.signed_distance(mesh.vertices_lps)).max() < 1e-6
    assert any(m.key == "path_min_distance_mm" for m in res.metrics)
    assert any("illustrative" in w for w in res.warnings)
    for key in ("coverage_pct", "min_margin_mm", "p_margin_ge_5mm"):
        assert res.metric(key).ci95 is not None
    assert {m.structure for m in res.metrics if m.key == "volume_in_zone_ml"} == \
        {s.name for s in liver.by_role("critical")}


def test_live_rescore_is_fast_after_the_first_call(liver):
    import time

    scorer = load_simulator("ablation").live_scorer(liver)
    inputs = AblationInput(device_id="generic-microwave", tip_lps=tuple(CENTRE),
                           shaft_lps=tuple(CENTRE + np.array([-45, 0, 0])),
                           settings={"power_w": 60, "time_min": 10})
    scorer.score(inputs)
    started = time.perf_counter()
    for dx in range(10):
        tip = tuple(CENTRE + np.array([dx * 0.3, 0, 0]))
        scorer.score(inputs.model_copy(update={"tip_lps": tip}))
    assert (time.perf_counter() - started) / 10 < 0.05


def test_optimiser_improves_p_margin(liver):
    sim = load_simulator("ablation")
    inputs = AblationInput(device_id="generic-microwave",
                           tip_lps=tuple(CENTRE + np.array([3, 6, 0])),
                           shaft_lps=tuple(CENTRE + np.array([-45, 6, 0])),
                           settings={"power_w": 60, "time_min": 5},
                           target_structure="tumour 1")
    model = UncertaintyModel(samples=200)
    start = run_simulation(sim, liver, inputs, uncertainty=model,
                           parameters={"score_paths": False})
    best = sim.optimise(liver, inputs, {"score_paths": False}, uncertainty=model,
                        n_candidates=300, top_k=2)
    assert best.n_evaluated == 300 and len(best.candidates) == 2
    top = best.candidates[0]
    assert top.p_margin_ge_5mm > start.metric("p_margin_ge_5mm").value
    assert top.min_margin_mm > start.metric("min_margin_mm").value
