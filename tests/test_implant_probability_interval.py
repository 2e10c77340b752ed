"""P(grade C or worse) and P(breach) of the implant are the predictive share k/n of the same
draws the grade and distance intervals come from, with a Clopper-Pearson interval: never 0 when
the grade interval reaches D (the abdomen-CT defect: P = 0.0, 95 % 0.0-1.0, grade A to D)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from surgiplan_implant.montecarlo import N_QUANTILES, probability_interval


def test_point_is_the_predictive_share_with_a_binomial_interval() -> None:
    n = 400
    rng = np.random.default_rng(3)
    predictive = np.zeros(n, bool)
    predictive[rng.choice(n, 24, replace=False)] = True  # 6 % of draws: grade >= C
    quantiles = [np.zeros(n, bool) for _ in range(N_QUANTILES)]  # systematic spread small
    failed = np.zeros(n, bool)
    p, (low, high) = probability_interval(predictive, quantiles, failed)
    assert p == 24 / n
    ci = binomtest(24, n).proportion_ci(0.95, method="exact")
    assert low <= ci.low + 1e-12 and high >= ci.high - 1e-12
    assert low <= p <= high


def test_no_event_gives_a_binomial_upper_bound_not_one() -> None:
    n = 200
    none = np.zeros(n, bool)
    p, (low, high) = probability_interval(none, [none] * N_QUANTILES, np.zeros(n, bool))
    assert p == 0.0 and low == 0.0
    assert binomtest(0, n).proportion_ci(0.95, method="exact").high <= high < 0.02


@pytest.mark.slow  # ~20 s (phantom + Monte Carlo); the two tests above are its CI variant
def test_grade_reaching_d_implies_a_positive_probability_on_the_spine_phantom() -> None:
    """A screw centred in a pedicle with a 3 mm boundary SD (3 mm CT slices): the boundary
    error, not placement, drives the breach. Was P(>= C) = 0.0, 95 % [0, 1], grade A-D."""
    from surgiplan_implant.simulator import ImplantSimulator

    from surgiplan.simulation import UncertaintyModel, validate_result
    from surgiplan.simulation.runner import run_simulation
    from tests.verification._implant_truth import pedicles, spine_case

    context, truth = spine_case()
    _, _, centre, axis = pedicles(truth.truth)[0]
    sim = ImplantSimulator()
    head = centre + 12.0 * axis
    inputs = sim.screw_input((6.0, 40.0), head, head - 40.0 * axis)
    result = run_simulation(sim, context, inputs,
                            uncertainty=UncertaintyModel(boundary_sd_mm=3.0, samples=120))
    assert result.ok and validate_result(result) == []
    grade, p = result.metric("gertzbein_grade"), result.metric("p_grade_c_or_worse")
    assert grade.ci95[1] >= 2.0  # the grade interval reaches C or worse ...
    assert p.value >= 0.025  # ... so at least 2.5 % of the same draws do
    k = round(p.value * 120)
    ci = binomtest(k, 120).proportion_ci(0.95, method="exact")
    assert p.ci95[0] <= ci.low + 1e-9 and p.ci95[1] >= ci.high - 1e-9
    for lv in result.levels:  # the levels follow their breach probabilities (shared rule)
        assert lv.breach_probability is not None
        assert lv.breach_probability < 0.05 or lv.level != "safe"
