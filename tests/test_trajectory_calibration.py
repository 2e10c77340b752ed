"""The Monte Carlo 95 % intervals are calibrated: with a known error model, the interval from
the plan contains the value of the actually placed tool in 93-97 % of repeated trials."""

from __future__ import annotations

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.simulation import (
    SimulationContext,
    TrajectoryInput,
    UncertaintyModel,
    load_simulator,
)
from surgiplan.twin import Twin

N_PLANS = 20
TRIALS_PER_PLAN = 200
RADIUS_MM = 0.5
CENTRE = np.array([24.0, 24.0, 24.0])


def _context() -> SimulationContext:
    geometry = ImageGeometry((48, 48, 48), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    zz, yy, xx = np.indices(geometry.shape_zyx)
    r2 = (xx - 24) ** 2 + (yy - 24) ** 2 + (zz - 24) ** 2
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    twin.add_structure("skin", (r2 <= 22**2) & (r2 > 6**2), role="skin")
    twin.add_structure("vessel", r2 <= 6**2, role="critical", margin_mm=2.0)
    return SimulationContext(twin)


def _plans(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    plans = []
    for _ in range(N_PLANS):
        d = rng.normal(size=3)
        entry = CENTRE + 20.0 * d / np.linalg.norm(d)
        side = np.cross(d, rng.normal(size=3))
        target = CENTRE + 9.0 * side / np.linalg.norm(side) - 4.0 * d / np.linalg.norm(d)
        plans.append((entry, target))
    return plans


def _true_values(context, entry, target, model, rng, n_axis):
    """Min clearance and length of tools placed with the model's errors (numpy, not the kernel)."""
    n = TRIALS_PER_PLAN
    entries = entry + rng.normal(0, model.entry_sd_mm, (n, 3))
    targets = target + rng.normal(0, model.target_sd_mm, (n, 3))
    offsets = rng.normal(0, model.boundary_sd_mm, n)
    t = np.linspace(0, 1, n_axis)[None, :, None]
    axis = entries[:, None, :] + t * (targets - entries)[:, None, :]
    clearance = context.signed_distance_mm("vessel", axis).min(axis=1) + offsets - RADIUS_MM
    return clearance, np.linalg.norm(targets - entries, axis=1)


def _coverage(model_for_intervals: UncertaintyModel, true_model: UncertaintyModel) -> dict:
    context = _context()
    sim = load_simulator("trajectory")
    params = sim.spec.defaults()
    rng = np.random.default_rng(7)
    hits = {"min_distance_mm": [], "path_length_mm": []}
    for entry, target in _plans(rng):
        inputs = TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                 diameter_mm=2 * RADIUS_MM)
        result = sim.run(context, inputs, params, uncertainty=model_for_intervals)
        clearance, length = _true_values(context, entry, target, true_model, rng,
                                         params["path_samples"])
        for key, true, structure in (("min_distance_mm", clearance, "vessel"),
                                     ("path_length_mm", length, None)):
            low, high = result.metric(key, structure).ci95
            hits[key].append((true >= low) & (true <= high))
    return {k: float(np.concatenate(v).mean()) for k, v in hits.items()}


TRUE_MODEL = UncertaintyModel(entry_sd_mm=0.8, target_sd_mm=1.5, boundary_sd_mm=0.7,
                              samples=4000, seed=11)


def test_intervals_contain_the_true_value_95_percent_of_the_time():
    coverage = _coverage(TRUE_MODEL, TRUE_MODEL)
    for key, value in coverage.items():
        assert 0.93 <= value <= 0.97, f"{key}: 95 % interval coverage {value:.3f}"


def test_a_wrong_error_model_is_caught():
    """The check can fail: intervals from half the true SDs cover far less than 95 %."""
    too_sure = UncertaintyModel(entry_sd_mm=0.4, target_sd_mm=0.75, boundary_sd_mm=0.35,
                                samples=4000, seed=11)
    coverage = _coverage(too_sure, TRUE_MODEL)
    assert all(value < 0.85 for value in coverage.values()), coverage
