"""The tidy results table: one row per twin x slot x metric, with interval and provenance.

Columns (units in the ``unit`` column; ``ci95_low``/``ci95_high`` NaN when the metric has no
interval; ``value`` NaN when ``not_assessable`` gives the reason): see :data:`COLUMNS`.
``threshold``/``threshold_kind``/``threshold_source`` come from
:func:`surgiplan.plans.compare.rule_for` (``min``: value >= threshold meets it), ``meets`` is
1/0, or NaN without a threshold or a value. ``verdict`` is the slot result's overall level.
``run_time_s`` is the whole twin's wall time (load + plan + score), the only column that
differs between two runs of the same cohort.
"""

from __future__ import annotations

import math
import time
from typing import Any

COLUMNS: dict[str, str] = {
    "twin_id": "string", "template": "string", "slot": "string", "metric": "string",
    "structure": "string", "title": "string", "unit": "string", "value": "float64",
    "ci95_low": "float64", "ci95_high": "float64", "interval": "string",
    "not_assessable": "string", "threshold": "float64", "threshold_kind": "string",
    "threshold_source": "string", "meets": "float64", "verdict": "string",
    "simulator_id": "string", "simulator_version": "string", "seed": "int64",
    "samples": "int64", "source": "string", "run_time_s": "float64",
}
NAN = math.nan


def run_twin(template_json: dict[str, Any], ref_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Load one twin, apply the template, return its rows (the unit of work of a cohort run)."""
    from surgiplan.cohort.cohort import TwinRef, load_twin
    from surgiplan.cohort.templates import apply_template, template_from_json

    started = time.perf_counter()
    template = template_from_json(template_json)
    ref = TwinRef(**ref_json)
    try:
        slots = apply_template(template, load_twin(ref), ref.seed)
        rows = [row for s in slots for row in slot_rows(template, ref, s)]
    except Exception as exc:  # one bad twin is a row with its reason, not a lost cohort
        rows = [_row(template, ref, "twin", "twin", title="twin could not be run",
                     not_assessable=f"{type(exc).__name__}: {exc}")]
    elapsed = time.perf_counter() - started
    for row in rows:
        row["run_time_s"] = elapsed
    return rows


def slot_rows(template: Any, ref: Any, slot: Any) -> list[dict[str, Any]]:
    """Rows of one slot: every metric of its result, or one ``plan`` row saying why not."""
    if slot.result is None:
        return [_row(template, ref, slot.slot, "plan", title="plan placed by the template",
                     not_assessable=slot.not_placed)]
    result = slot.result
    if not result.ok:
        return [_row(template, ref, slot.slot, "result", title="simulation",
                     not_assessable=result.error or str(result.status),
                     verdict=str(result.overall_level), provenance=result.provenance)]
    verdict = str(result.overall_level)
    return [_metric_row(template, ref, slot.slot, m, verdict, result.provenance)
            for m in result.metrics]


def _metric_row(template: Any, ref: Any, slot: str, metric: Any, verdict: str,
                provenance: Any) -> dict[str, Any]:
    from surgiplan.plans.compare import rule_for

    rule = rule_for(metric.key)
    low, high = metric.ci95 if metric.ci95 is not None else (NAN, NAN)
    value = float(metric.value)
    row = _row(template, ref, slot, metric.key, title=metric.title, unit=metric.unit,
               value=value, structure=metric.structure or "", ci95=(float(low), float(high)),
               interval=str(metric.interval_kind), not_assessable=metric.not_assessable,
               verdict=verdict, provenance=provenance)
    if rule.threshold is not None:
        row.update(threshold=float(rule.threshold), threshold_kind=rule.kind,
                   threshold_source=rule.source)
        if math.isfinite(value):
            met = value >= rule.threshold if rule.kind == "min" else value <= rule.threshold
            row["meets"] = float(met)
    return row


def _row(template: Any, ref: Any, slot: str, metric: str, *, title: str = "", unit: str = "",
         value: float = NAN, structure: str = "", ci95: tuple[float, float] = (NAN, NAN),
         interval: str = "none", not_assessable: str = "", verdict: str = "",
         provenance: Any = None) -> dict[str, Any]:
    return {
        "twin_id": ref.twin_id, "template": template.name, "slot": slot, "metric": metric,
        "structure": structure, "title": title, "unit": unit, "value": value,
        "ci95_low": ci95[0], "ci95_high": ci95[1], "interval": interval,
        "not_assessable": not_assessable, "threshold": NAN, "threshold_kind": "",
        "threshold_source": "", "meets": NAN, "verdict": verdict,
        "simulator_id": provenance.simulator_id if provenance else "",
        "simulator_version": provenance.simulator_version if provenance else "",
        "seed": int(ref.seed), "samples": int(provenance.samples if provenance else 0),
        "source": ref.source, "run_time_s": NAN,
    }
