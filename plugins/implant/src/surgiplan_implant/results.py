"""Metrics, structure levels and concerns of a scored implant (see simulator.py for the keys).

Every numeric metric has a 95 % interval with its kind (montecarlo.py) or, when there is no
Monte Carlo (``samples`` 0), ``interval`` none with the reason; a value that cannot be given
(the implant leaves the image, it is not in a bone) is not assessable with the reason and the
share of failed draws. Concerns make the verdict follow the numbers: a modified
Gertzbein-Robbins grade C is at least caution, D/E a breach, an implant outside the vertebra a
breach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.simulation import Concern, IntervalKind, Level, Metric, StructureLevel, level_for
from surgiplan_implant.montecarlo import MonteCarlo, probability_interval, value_interval
from surgiplan_implant.scoring import DIRECTIONS, GRADES, HU_BANDS, ImplantScore, LiveScorer

NO_MC = "no Monte Carlo (samples 0): nominal value only"
MIN_BONE_SHARE_PCT = 50.0  # less of the shank axis in bone: the implant is not in a vertebra
P_GRADE_C_CONCERN = 0.05


@dataclass
class Verdict:
    """What the metrics say beyond numbers: in a vertebra, the grade and their concerns."""

    in_vertebra: bool
    assessable: str  # "" or why the bone metrics cannot be given
    concerns: list[Concern]


def _metric(key: str, title: str, unit: str, value: float, draws: np.ndarray | None,
            mc: MonteCarlo | None, *, structure: str | None = None, kind=IntervalKind.PREDICTION,
            interval: tuple[float, float] | None = None, reason: str = "") -> Metric:
    """A metric with its interval from ``draws`` (or ``interval``), not assessable when its
    nominal ``value`` or too many draws are not numbers."""
    share = None if mc is None else mc.failed_share
    if reason or not math.isfinite(float(value)):
        return Metric.unassessable(key, title, unit, reason or "part of the implant lies off "
                                   "the image grid: the anatomy there is unknown",
                                   structure=structure, failed_draw_share=share)
    if mc is None:
        return Metric(key, title, unit, float(value), None, structure, IntervalKind.NONE,
                      NO_MC)
    ci = interval if interval is not None else value_interval(draws)
    if ci is None:
        return Metric.unassessable(
            key, title, unit, f"{100 * share:.1f} % of the Monte Carlo draws leave the image "
            "grid (anatomy unknown there): no interval can be given", structure=structure,
            failed_draw_share=share)
    low, high = min(ci[0], float(value)), max(ci[1], float(value))
    return Metric(key, title, unit, float(value), (low, high), structure, kind,
                  failed_draw_share=share)


def verdict(score: ImplantScore, vertebra: str | None) -> Verdict:
    """Whether the implant is in a vertebra, and the grade's concerns."""
    share = score.bone_share_pct
    if not math.isfinite(share):
        return Verdict(False, "part of the implant lies off the image grid: the anatomy there "
                       "is unknown", [])
    where = f" ({vertebra})" if vertebra else ""
    if share <= 0.0:
        message = ("the implant is not in a vertebra: none of its shank axis lies in bone; "
                   "place it in a vertebra (breach and grade are not assessable)")
        return Verdict(False, "the implant is not in a vertebra (no part of its shank axis "
                       "is in bone)", [Concern(Level.BREACH, message, "bone_share_pct")])
    concerns = []
    if share < MIN_BONE_SHARE_PCT:
        concerns.append(Concern(Level.BREACH, f"the implant is mostly outside the vertebra"
                                f"{where}: only {share:.0f} % of its shank axis lies in bone",
                                "bone_share_pct"))
    grade = score.grade
    if grade in GRADES[2:]:
        direction = max(DIRECTIONS[:5], key=score.breach_by_direction_mm.__getitem__)
        level = Level.CAUTION if grade == "C" else Level.BREACH
        concerns.append(Concern(level, f"modified Gertzbein-Robbins grade {grade}: "
                                f"{score.graded_breach_mm:.1f} mm {direction} breach",
                                "gertzbein_grade"))
    return Verdict(share >= MIN_BONE_SHARE_PCT, "", concerns)


def bone_metrics(score: ImplantScore, mc: MonteCarlo | None, why: str) -> list[Metric]:
    """Breach, per-direction breach, grade, P(grade >= C) and the shank's share in bone."""
    v = None if mc is None else mc.values
    metrics = [_metric("breach_mm", "Largest breach outside bone", "mm", score.breach_mm,
                       None if v is None else v.breach, mc, reason=why)]
    for j, d in enumerate(DIRECTIONS):
        metrics.append(_metric(f"breach_{d}_mm", f"{d.capitalize()} breach", "mm",
                               score.breach_by_direction_mm[d],
                               None if v is None else v.by_direction[:, j], mc, reason=why))
    grade = float(GRADES.index(score.grade)) if score.grade in GRADES else math.nan
    metrics.append(_metric("gertzbein_grade", f"Gertzbein-Robbins grade {score.grade or '-'} "
                           "(modified; 0=A ... 4=E)", "", grade,
                           None if v is None else v.grade_index, mc, reason=why))
    if mc is not None:
        p = probability_interval(mc.values.grade_index >= 2,
                                 [b.grade_index >= 2 for b in mc.quantiles], mc.failed)
        title = "Probability of grade C or worse"
        metrics.append(_metric("p_grade_c_or_worse", title, "", math.nan if p is None else p[0],
                               None, mc, kind=IntervalKind.CONFIDENCE,
                               interval=None if p is None else p[1], reason=why if why else
                               "" if p is not None else _failed_reason(mc)))
    metrics.append(_metric("bone_share_pct", "Share of the shank axis in bone", "%",
                           score.bone_share_pct, None if v is None else v.bone_share, mc))
    return metrics


def _failed_reason(mc: MonteCarlo) -> str:
    return (f"{100 * mc.failed_share:.1f} % of the Monte Carlo draws leave the image grid "
            "(anatomy unknown there)")


def hu_metrics(live: LiveScorer, score: ImplantScore, mc: MonteCarlo | None) -> list[Metric]:
    """HU-band shares of the scored surface (placement error only: the CT is measured)."""
    metrics = []
    for j, band in enumerate(HU_BANDS):
        key, title = f"{band}_share_pct", f"Share in {band.replace('_', ' ')}"
        if not live.maps.is_ct:
            metrics.append(Metric.unassessable(key, title, "%", "the image is not CT (no HU)"))
            continue
        metrics.append(_metric(key, title, "%", score.hu_share_pct[band],
                               None if mc is None else mc.values.hu[:, j], mc))
    return metrics


def critical_metrics(live: LiveScorer, score: ImplantScore, mc: MonteCarlo | None,
                     default_margin_mm: float) -> tuple[list[Metric], list[StructureLevel]]:
    """Minimum distance and breach probability per critical structure, and its level."""
    metrics, levels = [], []
    for k, s in enumerate(live.maps.critical):
        value = score.min_distance_mm[s.name]
        metrics.append(_metric("min_distance_mm", f"Minimum distance to {s.name}", "mm", value,
                               None if mc is None else mc.values.min_distance[:, k], mc,
                               structure=s.name))
        p_breach = None
        if mc is not None:
            p = probability_interval(mc.values.min_distance[:, k] < 0,
                                     [b.min_distance[:, k] < 0 for b in mc.quantiles],
                                     mc.failed)
            reason = "" if p is not None and math.isfinite(value) else _failed_reason(mc)
            metrics.append(_metric("breach_probability", f"Probability of breaching {s.name}",
                                   "", math.nan if p is None else p[0], None, mc,
                                   structure=s.name, kind=IntervalKind.CONFIDENCE,
                                   interval=None if p is None else p[1], reason=reason))
            p_breach = None if p is None or reason else p[0]
        margin = s.margin_mm if s.margin_mm > 0 else float(default_margin_mm)
        levels.append(StructureLevel(s.name, level_for(value, margin, p_breach), value, margin,
                                     p_breach,
                                     score.closest_lps.get(s.name)))
    return metrics, levels


def probability_concerns(metrics: list[Metric]) -> list[Concern]:
    """A caution when grade C or worse is not unlikely under the error model."""
    for m in metrics:
        if m.key == "p_grade_c_or_worse" and m.assessable and m.value >= P_GRADE_C_CONCERN:
            low, high = m.ci95
            return [Concern(Level.CAUTION, f"{100 * m.value:.0f} % chance of grade C or worse "
                            f"(95 % CI {100 * low:.0f}-{100 * high:.0f} %) under the error "
                            "model", m.key)]
    return []


def collision_metrics(names: list[str], nominal: list[float], draws: np.ndarray | None,
                      ) -> list[Metric]:
    """Clearance to each other implant and the number it collides with; ``draws`` (n, m)
    clearances with both implants' placement errors (None without Monte Carlo)."""
    metrics = []
    for j, name in enumerate(names):
        if draws is None:
            metrics.append(Metric("implant_clearance_mm", f"Clearance to {name}", "mm",
                                  nominal[j], None, name, IntervalKind.NONE, NO_MC))
            continue
        low, high = np.percentile(draws[:, j], [2.5, 97.5])
        metrics.append(Metric("implant_clearance_mm", f"Clearance to {name}", "mm", nominal[j],
                              (min(low, nominal[j]), max(high, nominal[j])), name,
                              IntervalKind.PREDICTION))
    hits = float(sum(v < 0 for v in nominal))
    if draws is None:
        metrics.append(Metric("collisions", "Implants it collides with", "", hits, None, None,
                              IntervalKind.NONE, NO_MC))
    else:
        low, high = np.percentile((draws < 0).sum(axis=1), [2.5, 97.5])
        metrics.append(Metric("collisions", "Implants it collides with", "", hits,
                              (min(low, hits), max(high, hits)), None, IntervalKind.PREDICTION))
    return metrics


def interval_details(mc: MonteCarlo | None, model: Any, spacing_mm: Any) -> dict[str, Any]:
    """How the intervals were made (JSON-ready)."""
    from surgiplan_implant.montecarlo import N_QUANTILES, discretisation_sd_mm

    data: dict[str, Any] = {"uncertainty_model": model.to_json(spacing_mm),
                            "discretisation_sd_mm": discretisation_sd_mm(spacing_mm)}
    if mc is None:
        return data
    data.update({
        "systematic_sd_mm": mc.systematic_sd_mm,
        "failed_draw_share": mc.failed_share,
        "intervals": {
            "prediction": "values: 2.5-97.5th percentiles over draws, each with a placement "
                          "error and a boundary offset ~ N(0, systematic_sd_mm) (segmentation "
                          "+ discretisation)",
            "confidence": f"probabilities: over {N_QUANTILES} equal-mass quantiles of the "
                          "systematic offset ~ N(0, systematic_sd_mm) (common placement "
                          "draws), the shortest range holding 95 % of its mass, ends widened "
                          "by the Wilson 95 % half-width in quadrature, and holding the "
                          "Clopper-Pearson 95 % interval of the point value; point value: "
                          "the predictive share k/n of the draws (each with its own offset)",
            "hu_shares": "placement error only (the CT values are measured)",
            "implant_clearance_mm": "placement error of both implants"}})
    return data
