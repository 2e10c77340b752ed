"""Every ablation metric against an independent computation (tests/verification/
_ablation_truth.py: the liver phantom's analytic shapes, exact ellipsoids, label maps with
numpy) over 30 randomised plans on both tumours, single- and two-probe.

Tolerances: half a voxel (0.75 mm on the 1 x 1 x 1.5 mm grid) for margins and clearances;
the coverage between the analytic coverages of the zone shrunk and grown by half a voxel;
zone and tumour volumes within 2 %; critical volumes equal to the label-map count; heat-sink
diameters within one voxel (two walls, each within half a voxel) of the analytic tube
diameters found with the 10 mm window one voxel narrower / wider. Inside a two-probe union a
negative clearance is, by definition, the depth below the deepest single zone (a bound of the
union's depth); those are left out.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.simulation import (
    AblationInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
    run_simulation,
    validate_result,
)
from surgiplan.twin import Twin
from tests.conftest import shared_phantom
from tests.verification import _ablation_truth as T

N_PLANS = 30
REACH_MM = 10.0


@pytest.fixture(scope="module")
def liver():
    volume, segmentation, truth = shared_phantom("liver")
    return SimulationContext(Twin(volume, segmentation)), truth


def _plans() -> list[dict]:
    rng = np.random.default_rng(20251206)
    centres = {"tumour 1": np.array([-65.0, -25.0, 20.0]),
               "tumour 2": np.array([30.0, -47.0, 10.0])}
    plans = []
    for k in range(N_PLANS):
        target = "tumour 1" if k % 3 else "tumour 2"
        n_probes = 2 if k % 3 == 1 else 1
        long_mm = rng.uniform(30, 50)
        short_mm = rng.uniform(22, long_mm)
        probes = []
        for j in range(n_probes):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            spread = 0.0 if n_probes == 1 else (6.0 if j == 0 else -6.0)
            side = np.cross(d, np.eye(3)[int(np.argmin(np.abs(d)))])
            side /= np.linalg.norm(side)
            tip = centres[target] + rng.uniform(-4, 4, 3) + spread * side
            probes.append((tip, tip - 60 * d))
        plans.append({"target": target, "probes": probes, "long": long_mm, "short": short_mm,
                      "offset": float(rng.uniform(0, 4))})
    return plans


def _inputs(plan) -> AblationInput:
    settings = {"long_mm": plan["long"], "short_mm": plan["short"],
                "tip_offset_mm": plan["offset"]}
    (tip, shaft), *rest = plan["probes"]
    return AblationInput(device_id="custom", tip_lps=tuple(tip), shaft_lps=tuple(shaft),
                         settings=settings, target_structure=plan["target"],
                         extra_probes=tuple({"device_id": "custom", "tip_lps": tuple(t),
                                             "shaft_lps": tuple(s), "settings": settings}
                                            for t, s in rest))


def _zones(plan, grow=0.0):
    return [T.spheroid(t, s, plan["long"], plan["short"], plan["offset"], grow)
            for t, s in plan["probes"]]


@pytest.fixture(scope="module")
def runs(liver):
    context, _ = liver
    sim = load_simulator("ablation")
    out = []
    for plan in _plans():
        res = run_simulation(sim, context, _inputs(plan), parameters={"score_paths": False},
                             uncertainty=UncertaintyModel(samples=0))
        assert res.ok, res.error
        out.append((plan, res))
    return out


def test_tumour_metrics_agree_with_the_analytic_truth(liver, runs):
    context, truth = liver
    h2 = max(context.geometry.spacing_mm) / 2
    assert len(runs) >= 30
    for plan, res in runs:
        tumour = truth.structure(plan["target"]).shape
        zones = _zones(plan)
        margin = T.margin_mm(tumour, zones)
        assert res.metric("min_margin_mm").value == pytest.approx(margin, abs=h2), plan
        low, high = T.coverage_bracket_pct(tumour, zones, h2)
        assert low - 0.5 <= res.metric("coverage_pct").value <= high + 0.5, plan
        assert res.metric("zone_volume_ml").value == pytest.approx(T.union_volume_ml(zones),
                                                                   rel=0.02)
        assert res.metric("target_volume_ml").value == pytest.approx(
            tumour.volume_mm3() / 1000, rel=0.02)
        assert validate_result(res) == []


def test_critical_structure_metrics_agree_with_the_truth(liver, runs):
    context, truth = liver
    h2 = max(context.geometry.spacing_mm) / 2
    checked = 0
    for plan, res in runs:
        zones = _zones(plan)
        single = len(zones) == 1
        for s in context.by_role("critical"):
            mask = context.mask(s.name)
            vol = res.metric("volume_in_zone_ml", s.name)
            assert vol.value == pytest.approx(
                T.volume_in_zone_ml(mask, context.geometry, zones), abs=1e-9), s.name
            clear = res.metric("zone_clearance_mm", s.name).value
            shape = truth.structure(s.name).shape
            true = T.clearance_mm(shape, mask, context.geometry, zones, n=6000)
            if true > 25:  # far structures: the distance-map value of a far surface
                assert clear == pytest.approx(true, abs=h2 + 0.5), (s.name, plan)
                continue
            if single or true > 0:
                assert clear == pytest.approx(true, abs=h2), (s.name, plan)
                checked += 1
    assert checked >= 50


def test_heat_sink_diameters_agree_with_the_analytic_tubes(liver, runs):
    context, truth = liver
    h = max(context.geometry.spacing_mm)
    flagged = 0
    for plan, res in runs:
        zones = _zones(plan)
        for s in context.by_role("critical"):
            shape = truth.structure(s.name).shape
            if not T.is_tubular(shape):
                continue
            value = res.metric("heat_sink_diameter_mm", s.name).value
            low = T.heat_sink_mm(shape, zones, REACH_MM - h)
            high = T.heat_sink_mm(shape, zones, REACH_MM + h)
            assert (low - h if low > 0 else 0.0) <= value <= high + h, (s.name, plan)
            flagged += value > 0
    assert flagged >= 10


@pytest.mark.parametrize(("half_gap", "short_mm"), [(6, 34), (7, 32), (8, 36), (9, 38)])
def test_two_probe_margin_is_the_distance_to_the_unions_boundary(liver, half_gap, short_mm):
    """Two side-by-side zones holding tumour 1 together, neither alone: the margin is the
    distance to the union's boundary, far more than any single zone's (negative) margin."""
    context, truth = liver
    centre = np.array([-65.0, -25.0, 20.0])
    probes = [(centre + [0, s * half_gap, 0], centre + [-50, s * half_gap, 0]) for s in (1, -1)]
    plan = {"target": "tumour 1", "probes": probes, "long": 48.0, "short": float(short_mm),
            "offset": 0.0}
    score = load_simulator("ablation").live_scorer(context).score(_inputs(plan))
    tumour = truth.structure("tumour 1").shape
    true = T.margin_mm(tumour, _zones(plan))
    single = max(T.margin_mm(tumour, [z]) for z in _zones(plan))
    assert true > 0 > single
    assert score["min_margin_mm"] == pytest.approx(true, abs=max(context.geometry.spacing_mm) / 2)
