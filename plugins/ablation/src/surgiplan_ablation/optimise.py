"""Probe optimisation: position, orientation (and power/time) maximising P(margin >= 5 mm) while
sparing critical structures.

Candidates (seeded, ``n_candidates`` of them): every setting of the probe's device (or its one
custom zone) x directions within ``max_tilt_deg`` of the current insertion direction (rings of
6 at tilt/2 and tilt, plus the current one) x zone centres at the tumour's centroid (every
setting and direction once exactly centred, so the centred largest zone is always tried) or
moved by uniform offsets within ``max_shift_mm``; the tip follows from the device's tip offset
and the shaft point keeps the current path length. All candidates are scored nominally by the kernel
in one call (the benchmarked step: 1,000 zones). The screening probability is Gaussian:
``P = Phi((margin - 5) / sigma)`` with ``sigma^2 = tip_sd^2 + boundary_sd^2 +
(short_sd * short semi-axis)^2``. Candidates with more than ``max_critical_ml`` of any critical
structure in the zone rank after those without; ties (P to 3 decimals) go to the larger
nominal margin, then the smaller zone. The best
``top_k`` are then re-scored by the full simulator (Monte Carlo, insertion path), whose
P(margin >= 5 mm) (then the margin) gives the final order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr

from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import AblationInput, SimulationContext, UncertaintyModel
from surgiplan_ablation.kernel import score_zones
from surgiplan_ablation.probes import resolve_probes, target_name
from surgiplan_ablation.scene import build_scene
from surgiplan_ablation.zone import ZoneBatch


@dataclass
class Candidate:
    """One ranked placement: the input to run it, its nominal and Monte Carlo scores."""

    rank: int
    inputs: AblationInput
    coverage_pct: float
    min_margin_mm: float
    p_screen: float
    critical_ml: float
    p_margin_ge_5mm: float | None = None
    p_ci95: tuple[float, float] | None = None
    path_breach: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "tip_lps": list(self.inputs.tip_lps),
                "shaft_lps": list(self.inputs.shaft_lps), "device": self.inputs.device_id,
                "settings": dict(self.inputs.settings), "coverage_pct": self.coverage_pct,
                "min_margin_mm": self.min_margin_mm, "p_screen": self.p_screen,
                "critical_ml": self.critical_ml, "p_margin_ge_5mm": self.p_margin_ge_5mm,
                "p_ci95": None if self.p_ci95 is None else list(self.p_ci95),
                "path_breach": self.path_breach}


@dataclass
class OptimisationResult:
    candidates: list[Candidate]
    n_evaluated: int
    scoring_time_s: float
    total_time_s: float
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"n_evaluated": self.n_evaluated, "scoring_time_s": self.scoring_time_s,
                "total_time_s": self.total_time_s, "warnings": list(self.warnings),
                "candidates": [c.to_json() for c in self.candidates]}


def directions(axis: np.ndarray, max_tilt_deg: float) -> np.ndarray:
    """Unit directions: ``axis`` and rings of 6 at half and full ``max_tilt_deg``."""
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    out = [axis]
    for tilt in (max_tilt_deg / 2, max_tilt_deg):
        for phi in np.arange(6) * np.pi / 3:
            t = math.radians(tilt)
            out.append(math.cos(t) * axis + math.sin(t) * (math.cos(phi) * e1
                                                           + math.sin(phi) * e2))
    return np.array(out) if max_tilt_deg > 0 else axis[None]


def optimise_probe(
    context: SimulationContext,
    inputs: AblationInput,
    parameters: dict[str, Any],
    *,
    uncertainty: UncertaintyModel,
    n_candidates: int = 1000,
    max_shift_mm: float = 6.0,
    max_tilt_deg: float = 20.0,
    max_critical_ml: float = 0.0,
    top_k: int = 5,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> OptimisationResult:
    """Rank ``n_candidates`` placements of the first probe (see the module docstring)."""
    started = time.perf_counter()
    probe = resolve_probes(inputs, custom_modality=parameters["custom_modality"])[0]
    target = target_name(context, inputs)
    rows = _settings(probe, inputs)
    axis = probe.tip_lps - probe.shaft_lps
    length = float(np.linalg.norm(axis))
    dirs = directions(axis / length, max_tilt_deg)
    rng = np.random.default_rng(uncertainty.seed)
    centroid = context.centroid_lps(target)
    combos = np.array([(r, d) for r in range(len(rows)) for d in range(len(dirs))])
    n = max(n_candidates, len(combos))
    idx = combos[np.arange(n) % len(combos)]
    shifts = _ball(rng, n, max_shift_mm)
    shifts[: len(combos)] = 0.0  # every setting and direction is tried centred, too
    sizes = np.array([rows[i][1] for i in idx[:, 0]])  # long, short, offset
    d = dirs[idx[:, 1]]
    tips = centroid + shifts + sizes[:, 2:3] * d
    shafts = tips - length * d
    batch = ZoneBatch.from_probes(tips[:, None], shafts[:, None], sizes[:, None, 0],
                                  sizes[:, None, 1], sizes[:, None, 2])
    from surgiplan_ablation.simulator import _nearest_first, scene_roi

    scene = _nearest_first(build_scene(
        context, target, scene_roi(context, target, [batch]),
        vessel_min_diameter_mm=parameters["heat_sink_min_diameter_mm"]),
        ZoneBatch.from_probes(tips[:1, None], shafts[:1, None], sizes[:1, None, 0],
                              sizes[:1, None, 1], sizes[:1, None, 2]))
    check(cancel)
    report(progress, 0.3, f"scoring {len(batch)} candidate zones")
    t0 = time.perf_counter()
    raw = score_zones(batch, np.zeros(len(batch)), scene)
    scoring = time.perf_counter() - t0
    sigma = np.sqrt(uncertainty.target_sd ** 2
                    + uncertainty.boundary_sd_for(context.geometry.spacing_mm) ** 2
                    + (parameters["zone_short_sd_pct"] / 100 * sizes[:, 1] / 2) ** 2)
    p_screen = ndtr((raw["margin_mm"] - 5.0) / sigma)
    critical = raw["critical_voxels"].max(axis=1) * scene.voxel_ml if \
        raw["critical_voxels"].size else np.zeros(len(batch))
    zone_ml = 4 / 3 * np.pi * sizes[:, 0] / 2 * (sizes[:, 1] / 2) ** 2
    order = np.lexsort((zone_ml, -raw["margin_mm"], -np.round(p_screen, 3),
                        critical > max_critical_ml))
    warnings = [] if np.any(critical <= max_critical_ml) else [
        f"no candidate keeps every critical structure under {max_critical_ml:g} ml"]
    ranked = _recheck(context, inputs, parameters, uncertainty, order, idx, rows, tips, shafts,
                      raw, p_screen, critical, top_k, progress, cancel)
    return OptimisationResult(ranked, len(batch), scoring, time.perf_counter() - started,
                              warnings)


def _settings(probe, inputs: AblationInput) -> list[tuple[dict[str, float], tuple]]:
    """(settings, (long, short, tip offset)) for every setting the probe may use."""
    if probe.device is None:
        s = probe.size
        return [(dict(inputs.settings), (s.long_mm, s.short_mm, s.tip_offset_mm))]
    return [({"power_w": r.power_w, "time_min": r.time_min},
             (r.zone.long_mm, r.zone.short_mm, r.zone.tip_offset_mm))
            for r in probe.device.settings]


def _ball(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    out = v * radius * rng.uniform(0, 1, (n, 1)) ** (1 / 3)
    return out


def _recheck(context, inputs, parameters, uncertainty, order, idx, rows, tips, shafts, raw,
             p_screen, critical, top_k, progress, cancel) -> list[Candidate]:
    from surgiplan_ablation.simulator import AblationSimulator

    simulator = AblationSimulator()
    out: list[Candidate] = []
    for i in order[: max(top_k, 0)]:
        check(cancel)
        cand_in = inputs.model_copy(update={"tip_lps": tuple(map(float, tips[i])),
                                            "shaft_lps": tuple(map(float, shafts[i])),
                                            "settings": rows[idx[i, 0]][0]})
        cand = Candidate(0, cand_in, float(raw["coverage_pct"][i]), float(raw["margin_mm"][i]),
                         float(p_screen[i]), float(critical[i]))
        result = simulator.run(context, cand_in, parameters, uncertainty=uncertainty)
        p = result.metric("p_margin_ge_5mm")
        cand.p_margin_ge_5mm, cand.p_ci95 = p.value, p.ci95
        cand.path_breach = any(m.key == "path_min_distance_mm" and m.value < 0
                               for m in result.metrics)
        out.append(cand)
        report(progress, 0.4 + 0.6 * len(out) / top_k, f"re-scored {len(out)} of {top_k}")
    out.sort(key=lambda c: (c.path_breach, c.critical_ml > 0,
                            -(c.p_margin_ge_5mm if c.p_margin_ge_5mm == c.p_margin_ge_5mm
                              else c.p_screen), -c.min_margin_mm))
    for rank, c in enumerate(out, start=1):
        c.rank = rank
    return out
