"""Trajectory metrics against the head phantom's analytic truth (truth.json) and its label map,
over 40 random plans, and the safest-path search's angle limit against the analytic normal.

Reference values come from tests/verification/_trajectory_truth.py (numpy/scipy and the
analytic shapes read back from truth.json), never from the plug-in's code.
"""

from __future__ import annotations

import numpy as np
import pytest

import surgiplan.twin as twin_module
from surgiplan.phantoms import load_truth
from surgiplan.simulation import (
    IntervalKind,
    PathSearchRequest,
    SimulationContext,
    TrajectoryInput,
    UncertaintyModel,
    load_simulator,
    validate_result,
)
from surgiplan.simulation.uncertainty import SEEG_ROBOT_PROFILE
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

from . import _trajectory_truth as ref

N_PLANS = 40
RADIUS_MM = 0.4
TUMOUR_LPS = np.array([-28.0, 20.0, 42.0])
ANGLE_TOLERANCE_DEG = 3.0


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """The head phantom as a simulation context, and its analytic truth read from truth.json.

    The twin keeps every distance map (its LRU budget would recompute the three critical maps
    on each of the 80 runs: this module checks accuracy, not the cache policy)."""
    volume, segmentation, truth = shared_phantom("head")
    path = truth.save(tmp_path_factory.mktemp("head") / "truth.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(twin_module, "DISTANCE_CACHE_MAPS", 16)
        yield SimulationContext(Twin(volume, segmentation)), load_truth(path)


@pytest.fixture(scope="module")
def runs(head):
    """(entry, target, nominal result, Monte Carlo result) for each random plan."""
    context, _ = head
    sim = load_simulator("trajectory")
    params = sim.spec.defaults()
    model = UncertaintyModel.for_profile(sim.error_profile, samples=300)
    out = []
    for entry, target in ref.head_plans(N_PLANS, seed=101):
        inputs = TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                 diameter_mm=2 * RADIUS_MM)
        out.append((entry, target, sim.run(context, inputs, params,
                                           uncertainty=UncertaintyModel(samples=0)),
                    sim.run(context, inputs, params, uncertainty=model)))
    return out


def test_clearance_and_risk_match_the_analytic_truth_and_the_label_map(head, runs):
    context, truth = head
    params = load_simulator("trajectory").spec.defaults()
    n, band = params["path_samples"], params["risk_band_mm"]
    geometry = context.geometry
    critical = [s.name for s in context.by_role("critical")]
    assert all(truth.structure(name).exact for name in critical)
    edt = {name: ref.outside_edt_mm(context.mask(name), geometry.spacing_mm) for name in critical}
    worst = {"near": 0.0, "all": 0.0, "labels": 0.0, "risk": 0.0}
    for entry, target, nominal, _ in runs:
        for name in critical:
            def exact(p, name=name):
                return truth.signed_distance_mm(name, p)
            got = nominal.metric("min_distance_mm", name).value
            want = ref.clearance_mm(exact, entry, target, RADIUS_MM, 4 * n)[0]
            worst["all"] = max(worst["all"], abs(got - want))
            if 0 <= want + RADIUS_MM <= band:
                worst["near"] = max(worst["near"], abs(got - want))
            want_risk = ref.risk(exact, entry, target, RADIUS_MM, band, n)[0]
            worst["risk"] = max(worst["risk"],
                                abs(nominal.metric("risk", name).value - want_risk))
            axis = ref.axis_points(entry, target, n)[0]
            outside = ref.sample_zyx(edt[name], geometry.lps_to_index(axis))
            if outside.min() >= 1.0:  # label-map EDT, half a voxel moved to the boundary
                from_labels = outside.min() - 0.5 - RADIUS_MM
                worst["labels"] = max(worst["labels"], abs(got - from_labels))
    half_voxel = 0.5 * max(geometry.spacing_mm)
    half_diagonal = 0.5 * float(np.linalg.norm(geometry.spacing_mm))
    assert worst["near"] <= half_voxel, worst
    # Far from a surface or deep inside, the voxel map errs by up to half a voxel diagonal
    # (surgiplan/processing/distance.py): the honest far-field tolerance.
    assert worst["all"] <= half_diagonal, worst
    assert worst["labels"] <= half_voxel, worst
    assert worst["risk"] <= half_diagonal / band, worst  # w is 1/B-Lipschitz


def test_entry_angle_within_3_degrees_of_the_analytic_normal(head, runs):
    _, truth = head
    errors = []
    for entry, target, nominal, mc in runs:
        normal = ref.outward_normal(lambda p: truth.signed_distance_mm("scalp", p), entry)
        want = ref.entry_angle_deg(entry, target, normal)[0]
        for result in (nominal, mc):
            errors.append(abs(result.metric("entry_angle_deg").value - want))
        low, high = mc.metric("entry_angle_deg").ci95
        assert low <= mc.metric("entry_angle_deg").value <= high
    assert max(errors) <= ANGLE_TOLERANCE_DEG, f"median {np.median(errors):.2f}, " \
                                               f"max {max(errors):.2f} deg"


def test_results_validate_and_state_interval_kinds_and_error_model(runs):
    sim = load_simulator("trajectory")
    assert sim.error_profile == SEEG_ROBOT_PROFILE  # from the manifest (lazy proxy)
    kinds = {"min_distance_mm": IntervalKind.PREDICTION, "risk": IntervalKind.PREDICTION,
             "clearance_mm": IntervalKind.PREDICTION, "path_length_mm": IntervalKind.PREDICTION,
             "entry_angle_deg": IntervalKind.PREDICTION,
             "breach_probability": IntervalKind.CONFIDENCE}
    for _, _, nominal, mc in runs:
        assert validate_result(nominal) == [] and validate_result(mc) == []
        assert all(m.interval_kind is IntervalKind.NONE and m.no_interval_reason
                   for m in nominal.metrics)
        for m in mc.metrics:
            assert m.assessable, m.not_assessable
            assert m.interval_kind is kinds[m.key], m
            assert m.failed_draw_share == 0.0
        model = mc.details["error_model"]
        assert model["profile"]["name"] == SEEG_ROBOT_PROFILE.name
        assert model["used"]["entry_sd_mm"] == SEEG_ROBOT_PROFILE.entry_sd_mm
        assert model["systematic"]["discretisation_sd_mm"] > 0


def test_search_angle_limit_agrees_with_the_analytic_angle(head):
    """Every skin vertex's accept/reject agrees with the analytic angle, except within
    3 degrees of the limit (length and breach use the search's own figures)."""
    context, truth = head
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=tuple(TUMOUR_LPS), top_k=1)
    result = sim.search(context, request, sim.spec.defaults())
    risk_map = next(h for h in result.heatmaps if h.label == "risk")
    clearance_map = next(h for h in result.heatmaps if h.label == "clearance")
    entries = risk_map.vertices_lps
    normals = ref.outward_normal(lambda p: truth.signed_distance_mm("scalp", p), entries)
    angle = ref.entry_angle_deg(entries, np.broadcast_to(TUMOUR_LPS, entries.shape), normals)
    length = np.linalg.norm(TUMOUR_LPS - entries, axis=1)
    expected = ((angle <= request.max_angle_deg) & (length <= request.max_length_mm)
                & (clearance_map.values >= 0))
    accepted = np.isfinite(risk_map.values)
    clear = np.abs(angle - request.max_angle_deg) > ANGLE_TOLERANCE_DEG
    wrongly_accepted = int((accepted & ~expected & clear).sum())
    wrongly_rejected = int((~accepted & expected & clear).sum())
    assert result.n_candidates > 5000 and expected.sum() > 100
    assert wrongly_accepted == 0 and wrongly_rejected == 0, (wrongly_accepted, wrongly_rejected)
    for c in result.candidates:
        n = ref.outward_normal(lambda p: truth.signed_distance_mm("scalp", p), c.entry_lps)
        want = ref.entry_angle_deg(c.entry_lps, TUMOUR_LPS, n)[0]
        assert abs(c.angle_deg - want) <= ANGLE_TOLERANCE_DEG
