"""Coverage of the implant simulator's 95 % intervals under its stated error model (issue 10,
item 4), on the spine phantom with screws near the medial pedicle wall and the canal.

Stated model: placement error at head and tip (the implant's default profile SDs), and one
systematic offset of each structure's boundary per twin, N(0, boundary SD = one voxel). The
truth is computed independently (tests/verification/_implant_truth.py, analytic shapes):

* values: each trial draws a placement and the boundary offsets and recomputes the true value;
  the simulator's prediction interval must hold it;
* probabilities: each trial draws the twin's systematic offset e and computes the true
  probability over placement error given e (150 independent placement draws); the
  simulator's confidence interval must hold it.

Coverage must be 93-97 % for the informative intervals (pooled over plans) and at least 93 %
for every interval; the negative control (intervals from a model without the boundary error)
must fail it.
"""

from __future__ import annotations

import numpy as np
import pytest
from surgiplan_implant.simulator import ImplantSimulator

from surgiplan.simulation import UncertaintyModel, validate_result
from surgiplan.simulation.runner import run_simulation

from ._implant_truth import (
    CRITICALS,
    Screw,
    bone_scores,
    grade_indices,
    pedicles,
    placement_draws,
    sample_poses,
    spine_case,
)

N_PLANS = 8
SAMPLES = 400  # simulator draws per plan
TRUTH_DRAWS = 150  # independent placement draws per plan
OFFSETS_PER_PLAN = 200  # systematic offsets per plan for the probability coverage
BOUNDARY_SD_MM = 1.0  # one voxel of the 0.8 x 0.8 x 1 mm grid (the default)
# The negative control runs on the first 4 plans (600 value / 800 probability trials): its
# coverages there are 0.42 (grade C), 0.48 (cauda equina breach) and 0.81 (breach) against
# 0.39, 0.48 and 0.86 on all 8: the closest, 0.81, is 11 binomial SDs below 93 % (SD 0.010
# at n = 600, counting trials as independent; they share a plan's interval, so fewer in truth).
CONTROL_PLANS = 4
VALUE_KEYS = ("breach_mm", "breach_medial_mm", "breach_lateral_mm", "breach_superior_mm",
              "breach_inferior_mm", "breach_anterior_mm", "breach_posterior_mm",
              "gertzbein_grade", "bone_share_pct")
INFORMATIVE = ("breach_mm", "breach_medial_mm", "min_distance_mm:cauda equina",
               "p_grade_c_or_worse", "breach_probability:cauda equina")


@pytest.fixture(scope="module")
def spine():
    return spine_case()


def _plans(truth, rng):
    """Screws 6 mm wide shifted 2.5-4.5 mm medially in each pedicle: breaches of 0-3 mm."""
    out = []
    peds = pedicles(truth)
    for i in range(N_PLANS):
        _, side, centre, axis = peds[i % len(peds)]
        medial = np.cross(axis, [0.0, 0.0, 1.0])
        medial /= np.linalg.norm(medial)
        if medial[0] * side > 0:  # towards the midline
            medial = -medial
        head = centre + 12.0 * axis + rng.uniform(2.5, 4.5) * medial
        out.append((head, head - 40.0 * axis))
    return out


@pytest.fixture(scope="module")
def truth_draws(spine):
    """Per plan: the screw input and independent truth samples of its placement draws."""
    _, truth = spine
    sim = ImplantSimulator()
    profile = sim.error_profile
    rng = np.random.default_rng(5)
    out = []
    for head, target in _plans(truth.truth, rng):
        inputs = sim.screw_input((6.0, 40.0), head, target)
        screw = Screw.from_input(inputs)
        poses = placement_draws(np.asarray(inputs.pose), screw.length, profile.entry_sd_mm,
                                profile.target_sd_mm, TRUTH_DRAWS, rng)
        out.append((inputs, sample_poses(truth, screw, poses, stride=8)))
    return out


def _coverage(spine, truth_draws, model: UncertaintyModel, seed: int = 5) -> dict[str, float]:
    """Share of trials whose true value lies in the simulator's interval, per metric."""
    context, _ = spine
    sim = ImplantSimulator()
    rng = np.random.default_rng(seed)
    hits: dict[str, list[bool]] = {}

    def record(key: str, value: float, ci) -> None:
        hits.setdefault(key, []).append(bool(ci[0] - 1e-9 <= value <= ci[1] + 1e-9))

    for n, (inputs, samples) in enumerate(truth_draws):
        result = run_simulation(sim, context, inputs, uncertainty=UncertaintyModel(
            boundary_sd_mm=model.boundary_sd_mm, samples=SAMPLES, seed=1000 + n))
        assert result.ok and validate_result(result) == []
        offsets = rng.normal(0.0, BOUNDARY_SD_MM, (len(samples), 1 + len(CRITICALS)))
        for s, e in zip(samples, offsets, strict=True):
            values = bone_scores(s, e[0])
            for key in VALUE_KEYS:
                record(key, values[key], result.metric(key).ci95)
            for k, name in enumerate(CRITICALS):
                record(f"min_distance_mm:{name}", s.critical[name] + e[1 + k],
                       result.metric("min_distance_mm", name).ci95)
            for band, value in s.hu_shares.items():
                record(f"{band}_share_pct", value, result.metric(f"{band}_share_pct").ci95)
        crit = np.array([[s.critical[c] for c in CRITICALS] for s in samples])
        for e in rng.normal(0.0, BOUNDARY_SD_MM, (OFFSETS_PER_PLAN, 1 + len(CRITICALS))):
            p_c = float(np.mean(grade_indices(samples, e[0]) >= 2))
            record("p_grade_c_or_worse", p_c, result.metric("p_grade_c_or_worse").ci95)
            for k, name in enumerate(CRITICALS):
                record(f"breach_probability:{name}", float(np.mean(crit[:, k] + e[1 + k] < 0)),
                       result.metric("breach_probability", name).ci95)
    return {key: float(np.mean(v)) for key, v in hits.items()}


@pytest.fixture(scope="module")
def coverage(spine, truth_draws):
    return _coverage(spine, truth_draws, UncertaintyModel())


def test_every_interval_covers_the_truth_93_to_97_percent(coverage):
    print("coverage:", {k: round(v, 3) for k, v in coverage.items()})
    for key in INFORMATIVE:
        assert 0.93 <= coverage[key] <= 0.97, (key, coverage[key])
    for key, value in coverage.items():
        assert value >= 0.93, (key, value)


def test_negative_control_without_boundary_error_fails_coverage(spine, truth_draws):
    """On the first CONTROL_PLANS plans (their trials are those of the full run: the same
    seeded draws, in order)."""
    control = _coverage(spine, truth_draws[:CONTROL_PLANS], UncertaintyModel(boundary_sd_mm=0.0),
                        seed=6)
    print("control:", {k: round(v, 3) for k, v in control.items()})
    for key in ("p_grade_c_or_worse", "breach_probability:cauda equina", "breach_mm"):
        assert control[key] < 0.93, (key, control[key])
