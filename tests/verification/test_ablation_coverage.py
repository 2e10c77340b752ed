"""Do the ablation intervals hold the truth 95 % of the time? (with a negative control)

World: the liver phantom's tumour 1 (an exact 12 mm sphere), on a cropped grid holding only it.
The stated error model (the simulator's cited profile, evidence.py) is redrawn here
independently: per realisation the SD factors ``exp(N(0, log_sd))`` (placement 0.14, zone
size 0.09, boundary 0.35), then the tip / shaft errors (4.9 / 2.0 mm per axis), the zone's
size factors (19 % / 17 %) and the tumour boundary offset (one voxel, 1.5 mm, truncated at 2.5
nominal SDs; half the 12 mm depth, the other bound, is never reached). The truth of a
realisation is analytic: the tumour is the sphere of radius ``12 + e``, the zone the exact
spheroid (vectorised point-to-spheroid distance, checked against the phantom library).

* prediction intervals (margin, coverage, zone and tumour volume): the share of 50 true
  realisations per plan inside the simulator's interval, over 40 plans;
* confidence intervals (P(margin >= 5 / 10 mm)): the true probability of a world (SD factors
  drawn as above, 6000 draws with them) inside the simulator's interval, 60 worlds per plan.

Every kind must cover 93-97 %. The negative control runs the same plans with intervals that
leave out the boundary error and the SDs' uncertainty (and the grid's discretisation): its
probability and tumour-volume intervals must fail the check.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.simulation import (
    AblationInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
    validate_result,
)
from surgiplan.twin import Twin
from tests.conftest import shared_phantom
from tests.verification import _ablation_truth as T

CENTRE = np.array([-65.0, -25.0, 20.0])
RADIUS = 12.0
N_PLANS, N_REAL, N_WORLDS, N_DRAWS = 40, 50, 60, 6000
STATED = {"target_sd": 4.9, "entry_sd": 2.0, "long": 0.19, "short": 0.17, "boundary": 1.5,
          "log_sd": (0.14, 0.09, 0.35)}
PREDICTED = ("min_margin_mm", "coverage_pct", "zone_volume_ml", "target_volume_ml")
PROBABILITIES = {"p_margin_ge_5mm": 5.0, "p_margin_ge_10mm": 10.0}
CONTROL = {"placement_sd_log_sd": 0.0, "zone_sd_log_sd": 0.0, "boundary_sd_log_sd": 0.0,
           "discretisation": False}


@pytest.fixture(scope="module")
def tumour_only() -> SimulationContext:
    volume, segmentation, _ = shared_phantom("liver")
    g = volume.geometry
    ijk = np.rint(g.lps_to_index(CENTRE[None])[0]).astype(int)
    lo = np.maximum(ijk - [60, 60, 60], 0)
    hi = np.minimum(ijk + [60, 60, 60], np.asarray(g.size) - 1)
    box = tuple(slice(a, b + 1) for a, b in zip(lo[::-1], hi[::-1], strict=True))
    geometry = ImageGeometry(tuple(int(v) for v in hi - lo + 1), g.spacing_mm,
                             tuple(g.index_to_lps(lo[None].astype(float))[0]), g.direction)
    labels = (segmentation.mask("tumour 1")[box] != 0).astype(np.uint8)
    seg = Segmentation.from_labelmap(labels, geometry, {1: {"name": "tumour 1",
                                                            "role": "target"}})
    image = ImageVolume(array=np.ascontiguousarray(volume.array[box]), geometry=geometry,
                        modality="CT")
    return SimulationContext(Twin(image, seg))


def _plans() -> list[dict]:
    rng = np.random.default_rng(77)
    plans = []
    for _ in range(N_PLANS):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        tip = CENTRE + rng.uniform(-3, 3, 3)
        long_mm = rng.uniform(38, 52)
        plans.append({"tip": tip, "shaft": tip - 60 * d, "long": long_mm,
                      "short": rng.uniform(32, min(long_mm, 46))})
    return plans


SIMULATOR = load_simulator("ablation")


def _run(context, plan, seed, parameters=None, model=None):
    """The simulator's result (called directly: no runner thread to poll, 80 runs)."""
    inputs = AblationInput(device_id="custom", tip_lps=tuple(plan["tip"]),
                           shaft_lps=tuple(plan["shaft"]), target_structure="tumour 1",
                           settings={"long_mm": plan["long"], "short_mm": plan["short"]})
    result = SIMULATOR.run(context, inputs, {"score_paths": False, **(parameters or {})},
                           uncertainty=model or UncertaintyModel(samples=1000, seed=seed))
    assert result.ok, result.error
    return result


def _realise(plan, rng, n: int, lam: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``n`` realisations of the stated model; ``lam`` (3,) fixes the SD factors (a world)."""
    if lam is None:
        lam = np.exp(rng.normal(size=(3, n)) * np.array(STATED["log_sd"])[:, None])
    else:
        lam = np.repeat(np.asarray(lam, float)[:, None], n, axis=1)
    tip = plan["tip"] + STATED["target_sd"] * lam[0, :, None] * rng.normal(size=(n, 3))
    shaft = plan["shaft"] + STATED["entry_sd"] * lam[0, :, None] * rng.normal(size=(n, 3))
    f_long = np.maximum(1 + STATED["long"] * lam[1] * rng.normal(size=n), 0.2)
    f_short = np.maximum(1 + STATED["short"] * lam[1] * rng.normal(size=n), 0.2)
    e = lam[2] * rng.normal(size=n)
    while np.any(bad := np.abs(e) > 2.5):  # stated: truncated at 2.5 nominal SDs (rejection)
        e[bad] = lam[2][bad] * rng.normal(size=int(bad.sum()))
    radius = np.maximum(RADIUS + STATED["boundary"] * e, 0.5)
    axes = tip - shaft
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    a, b = plan["long"] / 2 * f_long, plan["short"] / 2 * f_short
    depth = -T.spheroid_depth(np.broadcast_to(CENTRE, tip.shape), tip, axes, a, b)
    return {"tip": tip, "shaft": shaft, "a": a, "b": b, "radius": radius,
            "inside_margin": depth - radius}


def _true_values(plan, rng) -> dict[str, np.ndarray]:
    r = _realise(plan, rng, N_REAL)
    ball = T.fibonacci_sphere(2000)
    cloud = np.random.default_rng(5).uniform(-1, 1, (20000, 3))
    cloud = cloud[np.linalg.norm(cloud, axis=1) <= 1][:8000]
    margin, coverage = np.empty(N_REAL), np.empty(N_REAL)
    for i in range(N_REAL):
        zone = [T.spheroid(r["tip"][i], r["shaft"][i], 2 * r["a"][i], 2 * r["b"][i])]
        margin[i] = r["inside_margin"][i] if r["inside_margin"][i] >= 0 else \
            -zone[0].signed_distance(CENTRE + r["radius"][i] * ball).max()
        coverage[i] = 100 * np.mean(T.inside_any(zone, CENTRE + r["radius"][i] * cloud))
    return {"min_margin_mm": margin, "coverage_pct": coverage,
            "zone_volume_ml": 4 / 3 * np.pi * r["a"] * r["b"] ** 2 / 1000,
            "target_volume_ml": 4 / 3 * np.pi * r["radius"] ** 3 / 1000}


def _true_probabilities(plan, rng) -> dict[str, np.ndarray]:
    worlds = np.exp(rng.normal(size=(N_WORLDS, 3)) * np.array(STATED["log_sd"]))
    out = {k: np.empty(N_WORLDS) for k in PROBABILITIES}
    for w, lam in enumerate(worlds):
        margin = _realise(plan, rng, N_DRAWS, lam)["inside_margin"]
        for key, threshold in PROBABILITIES.items():
            out[key][w] = np.mean(margin >= threshold)
    return out


def _share_inside(result, key: str, truth: np.ndarray) -> float:
    low, high = result.metric(key).ci95
    return float(np.mean((truth >= low - 1e-9) & (truth <= high + 1e-9)))


@pytest.fixture(scope="module")
def coverage(tumour_only):
    rng = np.random.default_rng(2025)
    shares: dict[str, list[float]] = {}
    for k, plan in enumerate(_plans()):
        truth = {**_true_values(plan, rng), **_true_probabilities(plan, rng)}
        results = {"stated": _run(tumour_only, plan, 100 + k),
                   "control": _run(tumour_only, plan, 100 + k, CONTROL,
                                   UncertaintyModel(samples=300, seed=100 + k,
                                                    boundary_sd_mm=0.0))}
        for name, result in results.items():
            assert validate_result(result) == []
            for key in (*PREDICTED, *PROBABILITIES):
                shares.setdefault(f"{name} {key}", []).append(
                    _share_inside(result, key, truth[key]))
    return {k: float(np.mean(v)) for k, v in shares.items()}


def test_the_stated_model_is_the_simulators_profile(tumour_only):
    res = _run(tumour_only, _plans()[0], 1)
    model = res.details["error_model"]
    assert model["used"]["target_sd_mm"] == STATED["target_sd"]
    assert model["used"]["entry_sd_mm"] == STATED["entry_sd"]
    assert model["used"]["boundary_sd_mm"] == STATED["boundary"]
    assert (model["zone_long_sd_pct"], model["zone_short_sd_pct"]) == (19.0, 17.0)
    assert tuple(model["sd_log_sds"].values()) == STATED["log_sd"]
    assert "Heerink" in model["source"] and "27425001" in str(model["extra_sources"])
    assert res.metric("p_margin_ge_5mm").interval == "confidence"
    assert res.metric("min_margin_mm").interval == "prediction"


@pytest.mark.parametrize("key", [*PREDICTED, *PROBABILITIES])
def test_every_interval_covers_the_truth_93_to_97_percent(coverage, key):
    assert 0.93 <= coverage[f"stated {key}"] <= 0.97, coverage


def test_negative_control_without_boundary_and_sd_uncertainty_fails(coverage):
    failing = [k for k in ("p_margin_ge_5mm", "p_margin_ge_10mm", "target_volume_ml")
               if coverage[f"control {k}"] < 0.90]
    assert failing == ["p_margin_ge_5mm", "p_margin_ge_10mm", "target_volume_ml"], coverage
