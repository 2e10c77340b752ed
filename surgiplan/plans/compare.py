"""Compare 2-4 candidate plans: a metric table, the safest plan, a Pareto front, and the
plain-language reason why one plan is safer (Qt-free; the comparison view draws this).

* **Rows**: one per metric (per structure, per intervention slot when plans hold several),
  each cell the plan's value and 95 % interval, its difference to the row's best value (same
  unit), whether it is the best, whether it meets the row's threshold, and whether it is
  *distinguishable* from the best: two cells whose 95 % intervals overlap are "not
  distinguishable" (a cell without an interval counts as its single value).
* **Direction**: :data:`RULES` says whether higher or lower is better for each known metric key,
  with the threshold and its source; unknown keys fall back on their name (``p_``/probability/
  risk: lower; clearance/distance: higher; else no "best").
* **Safety** per plan from the structure levels of its results: closest approach to each
  critical structure (mm, negative = inside), its level against the structure's margin, and
  breach probability. Safest = fewest breaches/cautions, then lowest breach probability, then
  largest clearance.
* **Pareto**: plans that no other plan beats on both clearance (higher) and an objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from surgiplan.plans.model import Plan
from surgiplan.simulation.result import Level, Metric, SimulationResult, StructureLevel

NOT_DISTINGUISHABLE = "not distinguishable"
_LEVEL_RANK = {Level.SAFE: 0, Level.CAUTION: 1, Level.BREACH: 2}


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"
    NONE = "none"  # neither direction is better (e.g. a volume that only describes)


@dataclass(frozen=True)
class Rule:
    """How to judge a metric: direction, and a threshold (``kind`` "min": value >= threshold is
    acceptable; "max": value <= threshold) with where it comes from."""

    better: Better
    threshold: float | None = None
    kind: str = "min"
    source: str = ""


_MARGIN = "the structure's safety margin in this case"
_GRB = "Gertzbein SD, Robbins SE. Spine 1990;15(1):11-14 (grade A/B: breach < 2 mm)"
_ABL = "minimal ablative margin of 5 mm (the ablation simulator's minimum)"
_FLR = "minimum future liver remnant for the liver condition (Abdalla EK et al. 2006)"
H, L, N = Better.HIGHER, Better.LOWER, Better.NONE
RULES: dict[str, Rule] = {
    # trajectory
    "path_length_mm": Rule(L), "entry_angle_deg": Rule(L),
    "clearance_mm": Rule(H, 0.0, "min", "no breach (0 mm)"),
    "min_distance_mm": Rule(H, None, "min", _MARGIN), "risk": Rule(L),
    "breach_probability": Rule(L),
    # implant
    "breach_mm": Rule(L, 2.0, "max", _GRB), "gertzbein_grade": Rule(L, 1.0, "max", _GRB),
    "p_grade_c_or_worse": Rule(L), "cortical_share_pct": Rule(N),
    "cancellous_share_pct": Rule(N), "soft_tissue_share_pct": Rule(L),
    "implant_clearance_mm": Rule(H, 0.0, "min", "no collision (0 mm)"), "collisions": Rule(L),
    # ablation
    "coverage_pct": Rule(H, 100.0, "min", "complete tumour coverage"),
    "min_margin_mm": Rule(H, 5.0, "min", _ABL), "p_margin_ge_5mm": Rule(H),
    "p_margin_ge_10mm": Rule(H), "zone_volume_ml": Rule(N), "target_volume_ml": Rule(N),
    "volume_in_zone_ml": Rule(L), "zone_clearance_mm": Rule(H, None, "min", _MARGIN),
    "heat_sink_diameter_mm": Rule(L), "path_min_distance_mm": Rule(H, None, "min", _MARGIN),
    # resection
    "resected_volume_ml": Rule(N), "remnant_volume_ml": Rule(H),
    "remnant_pct": Rule(H, None, "min", _FLR), "margin_mm": Rule(H),
    "organ_volume_ml": Rule(N), "remnant_threshold_pct": Rule(N),
    "p_remnant_below_threshold": Rule(L), "p_margin_below_required": Rule(L),
    "crossing_diameter_mm": Rule(L),
}
_MARGIN_KEYS = {"min_distance_mm", "zone_clearance_mm", "path_min_distance_mm"}


def rule_for(key: str) -> Rule:
    """The rule of a metric key (known keys from :data:`RULES`, others by their name)."""
    if key in RULES:
        return RULES[key]
    if key.startswith("p_") or "probability" in key or "risk" in key:
        return Rule(Better.LOWER)
    if "clearance" in key or "distance" in key:
        return Rule(Better.HIGHER)
    return Rule(Better.NONE)


# ---------------------------------------------------------------------------- table
@dataclass(frozen=True)
class Threshold:
    value: float
    kind: str  # "min" or "max"
    source: str

    def met_by(self, value: float) -> bool:
        return value >= self.value if self.kind == "min" else value <= self.value

    def text(self, unit: str) -> str:
        sign = ">=" if self.kind == "min" else "<="
        return f"{sign} {self.value:g}{' ' + unit if unit else ''}"


@dataclass(frozen=True)
class Cell:
    """One plan's value in a row. ``difference`` = value - best value (row unit)."""

    plan: str
    value: float | None
    ci95: tuple[float, float] | None = None
    difference: float | None = None
    best: bool = False
    distinguishable: bool | None = None  # from the best cell; None for the best or no value
    meets_threshold: bool | None = None

    @property
    def note(self) -> str:
        return NOT_DISTINGUISHABLE if self.distinguishable is False else ""


@dataclass(frozen=True)
class Row:
    """One metric across the plans; ``slot`` names the intervention when plans hold several."""

    key: str
    title: str
    unit: str
    structure: str | None
    slot: str
    better: Better
    threshold: Threshold | None
    cells: tuple[Cell, ...]

    @property
    def id(self) -> str:
        parts = [self.slot, self.key] if self.slot else [self.key]
        return "/".join(parts) + (f"@{self.structure}" if self.structure else "")

    @property
    def label(self) -> str:
        named = self.structure and self.structure.casefold() not in self.title.casefold()
        text = self.title + (f" ({self.structure})" if named else "")
        return f"{self.slot}: {text}" if self.slot else text

    @property
    def best_plan(self) -> str | None:
        return next((c.plan for c in self.cells if c.best), None)

    def cell(self, plan: str) -> Cell:
        return next(c for c in self.cells if c.plan == plan)


@dataclass(frozen=True)
class StructureSafety:
    """A plan's closest approach to one critical structure (over all its interventions)."""

    structure: str
    min_distance_mm: float
    ci95: tuple[float, float] | None
    margin_mm: float
    level: Level
    breach_probability: float | None


@dataclass(frozen=True)
class PlanSafety:
    """A plan's safety: per-structure closest approaches and the simulators' other verdicts.

    ``concerns`` are (level, message) pairs: the simulators' concerns (a grade C breach,
    incomplete coverage, a short margin), metrics that could not be assessed, failed runs.
    """

    plan: str
    structures: tuple[StructureSafety, ...]
    concerns: tuple[tuple[Level, str], ...] = ()

    @property
    def worst_level(self) -> Level:
        """The verdict: worst of structure levels and concerns (never safer than the numbers)."""
        levels = [s.level for s in self.structures] + [lv for lv, _ in self.concerns]
        return max(levels, key=_LEVEL_RANK.__getitem__, default=Level.SAFE)

    def reasons(self) -> list[str]:
        """Why the verdict is not safe, most severe first (empty when safe)."""
        lines = [(s.level, f"{s.structure}: {s.level} (closest {_mm(s)}, margin "
                           f"{s.margin_mm:g} mm)")
                 for s in self.structures if s.level is not Level.SAFE]
        lines += [(lv, text) for lv, text in self.concerns if lv is not Level.SAFE]
        return [text for _, text in sorted(lines, key=lambda x: -_LEVEL_RANK[x[0]])]

    @property
    def clearance_mm(self) -> float:
        """Smallest clearance to any critical structure (mm; +inf without structures)."""
        return min((s.min_distance_mm for s in self.structures), default=math.inf)

    @property
    def closest(self) -> StructureSafety | None:
        return min(self.structures, key=lambda s: s.min_distance_mm, default=None)

    @property
    def max_breach_probability(self) -> float:
        return max((s.breach_probability or 0.0 for s in self.structures), default=0.0)

    def sort_key(self) -> tuple[int, float, int, float]:
        n_bad = sum(_LEVEL_RANK[s.level] for s in self.structures)
        return (_LEVEL_RANK[self.worst_level], self.max_breach_probability, n_bad,
                -self.clearance_mm)

    def get(self, structure: str) -> StructureSafety | None:
        return next((s for s in self.structures if s.structure == structure), None)


@dataclass(frozen=True)
class ParetoPoint:
    plan: str
    clearance_mm: float
    objective: float
    on_front: bool


@dataclass
class Comparison:
    """The comparison of 2-4 plans (see the module docstring)."""

    plans: list[str]
    rows: list[Row]
    safety: dict[str, PlanSafety]
    safest: str | None
    why: str
    why_by_plan: dict[str, str] = field(default_factory=dict)

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise KeyError(f"no row {row_id!r}; rows: {[r.id for r in self.rows]}")

    def pareto_objectives(self) -> list[str]:
        """Row ids usable as the second Pareto axis (a direction, a value for every plan)."""
        return [r.id for r in self.rows if r.better is not Better.NONE
                and r.key not in _MARGIN_KEYS | {"clearance_mm"}
                and all(c.value is not None and math.isfinite(c.value) for c in r.cells)]

    def pareto(self, objective: str) -> list[ParetoPoint]:
        """Clearance (higher better) against row ``objective``: who is on the Pareto front."""
        row = self.row(objective)
        sign = 1.0 if row.better is Better.HIGHER else -1.0
        points: list[tuple[str, float, float]] = []
        for p in self.plans:
            value = row.cell(p).value
            if value is None:
                raise ValueError(f"row {objective!r} has no value for plan {p!r}; use one of "
                                 "pareto_objectives()")
            points.append((p, self.safety[p].clearance_mm, sign * value))
        out = []
        for plan, clear, good in points:
            dominated = any(c2 >= clear and g2 >= good and (c2 > clear or g2 > good)
                            for p2, c2, g2 in points if p2 != plan)
            out.append(ParetoPoint(plan, clear, sign * good, not dominated))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "plans": self.plans, "safest": self.safest, "why": self.why,
            "why_by_plan": self.why_by_plan,
            "rows": [{"id": r.id, "label": r.label, "key": r.key, "unit": r.unit,
                      "structure": r.structure, "slot": r.slot, "better": str(r.better),
                      "threshold": None if r.threshold is None else
                      {"value": r.threshold.value, "kind": r.threshold.kind,
                       "text": r.threshold.text(r.unit), "source": r.threshold.source},
                      "best": r.best_plan,
                      "cells": [{"plan": c.plan, "value": _finite(c.value),
                                 "ci95": None if c.ci95 is None else [_finite(v) for v in c.ci95],
                                 "difference": _finite(c.difference), "best": c.best,
                                 "distinguishable": c.distinguishable,
                                 "meets_threshold": c.meets_threshold, "note": c.note}
                                for c in r.cells]} for r in self.rows],
            "safety": {p: {"clearance_mm": _finite(s.clearance_mm),
                           "worst_level": str(s.worst_level), "reasons": s.reasons(),
                           "max_breach_probability": s.max_breach_probability}
                       for p, s in self.safety.items()},
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------- building
ResultsInput = (SimulationResult | Sequence[SimulationResult]
                | Sequence[tuple[str, SimulationResult]])


def _slots(results: ResultsInput) -> list[tuple[str, SimulationResult]]:
    if isinstance(results, SimulationResult):
        return [("", results)]
    out = []
    for n, item in enumerate(results, start=1):
        out.append(item if isinstance(item, tuple) else (f"#{n}", item))
    return out


def compare_plans(results_by_plan: Mapping[str, ResultsInput]) -> Comparison:
    """Compare plans given their results: one result, a list, or (slot label, result) pairs.

    Slots with the same label (or position) across plans are compared with each other; plans
    holding one intervention each compare it regardless of label.
    """
    if len(results_by_plan) < 1:
        raise ValueError("compare at least one plan")
    slotted = {plan: _slots(r) for plan, r in results_by_plan.items()}
    if all(len(s) == 1 for s in slotted.values()):
        slotted = {plan: [("", s[0][1])] for plan, s in slotted.items()}
    plans = list(slotted)
    rows = _rows(plans, slotted)
    safety = {p: _safety(p, [r for _, r in slotted[p]]) for p in plans}
    ranked = sorted((p for p in plans if safety[p].structures),
                    key=lambda p: safety[p].sort_key())
    safest = ranked[0] if len(ranked) > 1 else None
    why_by_plan = {p: why_safer(safety[safest], safety[p]) for p in ranked[1:]} if safest else {}
    missing = [p for p in plans if not safety[p].structures]
    why = " ".join(why_by_plan[p] for p in ranked[1:]) if safest else ""
    if missing and len(plans) > 1:
        why += (" " if why else "") + (f"Safety cannot be compared for {', '.join(missing)}: "
                                       "no critical-structure clearances were reported.")
    return Comparison(plans, rows, safety, safest, why, why_by_plan)


def compare_stored(plans: Sequence[Plan]) -> Comparison:
    """Compare plans by the results they store (unscored interventions are left out)."""
    return compare_plans({p.name: [(i.label, SimulationResult.from_json(i.result))
                                   for i in p.interventions if i.result]
                          for p in plans})


def _rows(plans: list[str], slotted: dict[str, list[tuple[str, SimulationResult]]]) -> list[Row]:
    keys: dict[tuple[str, str, str | None], Metric] = {}
    values: dict[tuple[str, str, str | None], dict[str, Metric]] = {}
    for plan in plans:
        for slot, result in slotted[plan]:
            for m in result.metrics:
                k = (slot, m.key, m.structure)
                keys.setdefault(k, m)
                values.setdefault(k, {})[plan] = m
    margins = _margins(slotted)
    rows = []
    for k, first in keys.items():
        slot, key, structure = k
        rule = rule_for(key)
        threshold = _threshold(rule, key, structure, margins, slotted, slot)
        rows.append(_row(plans, first, slot, rule, threshold, values[k]))
    return rows


def _margins(slotted: dict[str, list[tuple[str, SimulationResult]]]) -> dict[str, float]:
    return {lv.structure: lv.margin_mm for items in slotted.values() for _, r in items
            for lv in r.levels}


def _threshold(rule: Rule, key: str, structure: str | None, margins: dict[str, float],
               slotted: dict[str, list[tuple[str, SimulationResult]]], slot: str
               ) -> Threshold | None:
    if rule.threshold is not None:
        return Threshold(rule.threshold, rule.kind, rule.source)
    if key in _MARGIN_KEYS and structure in margins:
        return Threshold(margins[structure], "min", rule.source)
    if key == "remnant_pct":  # the resection result states its own minimum
        for items in slotted.values():
            for s, r in items:
                floor = next((m.value for m in r.metrics if m.key == "remnant_threshold_pct"
                              and s == slot), None)
                if floor is not None and math.isfinite(floor):
                    return Threshold(float(floor), "min", rule.source)
    return None


def _interval(m: Metric) -> tuple[float, float]:
    if m.ci95 is None or not all(math.isfinite(v) for v in m.ci95):
        return (m.value, m.value)
    return (min(m.ci95), max(m.ci95))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when two closed intervals share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def _row(plans: list[str], first: Metric, slot: str, rule: Rule, threshold: Threshold | None,
         by_plan: dict[str, Metric]) -> Row:
    finite = {p: m for p, m in by_plan.items() if math.isfinite(m.value)}
    best = None
    if rule.better is not Better.NONE and len(finite) > 1:
        pick = max if rule.better is Better.HIGHER else min
        best = pick(finite, key=lambda p: finite[p].value)
        if sum(finite[p].value == finite[best].value for p in finite) == len(finite):
            best = None  # everyone ties: no best to highlight
    cells = []
    for p in plans:
        m = by_plan.get(p)
        if m is None or not math.isfinite(m.value):
            cells.append(Cell(p, None if m is None else m.value, None if m is None else m.ci95))
            continue
        ref = finite.get(best) if best else None
        cells.append(Cell(
            p, m.value, m.ci95,
            difference=None if ref is None else m.value - ref.value,
            best=p == best,
            distinguishable=None if ref is None or p == best
            else not overlap(_interval(m), _interval(ref)),
            meets_threshold=None if threshold is None else threshold.met_by(m.value)))
    return Row(first.key, first.title, first.unit, first.structure, slot, rule.better,
               threshold, tuple(cells))


def plan_safety(plan: str, results: list[SimulationResult]) -> PlanSafety:
    """The safety verdict of one plan from its interventions' results."""
    return _safety(plan, results)


def _safety(plan: str, results: list[SimulationResult]) -> PlanSafety:
    """Per structure over all results: the closest approach (with its interval), the worst
    level and the largest breach probability."""
    seen: dict[str, list[tuple[StructureLevel, tuple[float, float] | None]]] = {}
    for r in results:
        cis = {m.structure: m.ci95 for m in r.metrics
               if m.key in ("min_distance_mm", "zone_clearance_mm") and m.structure}
        for lv in r.levels:
            if math.isfinite(lv.min_distance_mm):
                seen.setdefault(lv.structure, []).append((lv, cis.get(lv.structure)))
    out = []
    for name, items in seen.items():
        lv, ci = min(items, key=lambda item: item[0].min_distance_mm)
        probabilities = [x.breach_probability for x, _ in items
                         if x.breach_probability is not None]
        out.append(StructureSafety(
            name, lv.min_distance_mm, ci, lv.margin_mm,
            max((x.level for x, _ in items), key=_LEVEL_RANK.__getitem__),
            max(probabilities) if probabilities else None))
    return PlanSafety(plan, tuple(out), _concerns(results))


def _concerns(results: list[SimulationResult]) -> tuple[tuple[Level, str], ...]:
    """Every non-clearance reason a plan is not safe: concerns, unassessable metrics, failures,
    and clearances that are not numbers."""
    out: list[tuple[Level, str]] = []
    for r in results:
        if not r.ok:
            out.append((Level.CAUTION, f"a simulation {r.status}: {r.error or 'no reason'}"))
            continue
        out += [(Level(c.level), c.message) for c in r.concerns]
        out += [(Level.CAUTION, f"{m.title}: not assessable ({m.not_assessable})")
                for m in r.metrics if m.not_assessable]
        out += [(Level.CAUTION, f"{lv.structure}: clearance not assessable")
                for lv in r.levels if not math.isfinite(lv.min_distance_mm)]
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------------------- the reason
def _f(value: float) -> str:
    return f"{value + 0.0:.1f}".replace("-0.0", "0.0")


def _mm(s: StructureSafety) -> str:
    text = f"{_f(s.min_distance_mm)} mm"
    if s.ci95 is not None and all(math.isfinite(v) for v in s.ci95):
        text += f" (95 % {_f(s.ci95[0])} to {_f(s.ci95[1])} mm)"
    return text


def _p(s: StructureSafety) -> str:
    if not s.breach_probability:
        return ""
    return f", breach probability {100 * s.breach_probability:.0f} %"


def _distinguishable(a: StructureSafety, b: StructureSafety) -> bool:
    ia = a.ci95 or (a.min_distance_mm, a.min_distance_mm)
    ib = b.ci95 or (b.min_distance_mm, b.min_distance_mm)
    return not overlap((min(ia), max(ia)), (min(ib), max(ib)))


def why_safer(a: PlanSafety, b: PlanSafety) -> str:
    """One plain sentence on why plan ``a`` is safer than ``b``, naming the structures and
    distances that drive the difference (or saying that they are not distinguishable)."""
    shared = [(s, m) for s in sorted(b.structures, key=lambda s: (-_LEVEL_RANK[s.level],
                                                                  s.min_distance_mm))
              if (m := a.get(s.structure)) is not None]
    pair = next(((s, m) for s, m in shared if m.min_distance_mm > s.min_distance_mm), None)
    if pair is None:
        return (f"{a.plan} and {b.plan} are not distinguishable in safety: {b.plan} comes no "
                f"closer than {a.plan} to any critical structure.")
    driver, mine = pair
    verdict = {Level.BREACH: "enters", Level.CAUTION: "comes within its "
               f"{driver.margin_mm:g} mm margin of", Level.SAFE: "passes"}[driver.level]
    text = (f"{a.plan} is safer than {b.plan}: {b.plan} {verdict} {driver.structure} "
            f"(closest {_mm(driver)}{_p(driver)}), where {a.plan} keeps {_mm(mine)}{_p(mine)}")
    if not _distinguishable(mine, driver) and driver.level == mine.level:
        return (f"{a.plan} and {b.plan} are not distinguishable in safety: their closest "
                f"approaches to {driver.structure} ({_mm(mine)} vs {_mm(driver)}) overlap "
                "within the 95 % intervals.")
    if not _distinguishable(mine, driver):
        text += "; the distances overlap within their 95 % intervals"
    return text + "."
