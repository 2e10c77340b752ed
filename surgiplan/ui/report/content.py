"""What a plan report says (no drawing here): the case summary, the chosen plan and its
alternatives, metric rows with 95 % intervals and thresholds with their sources, the
uncertainty model in words, and provenance in the spirit of ASME V&V 40 (software and plug-in
versions, parameters, input hashes, date).

De-identified by default: the case is named by its pseudonymous ``patient_ref`` only; patient
name, ID and birth date appear only with ``include_identifiers=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from surgiplan import __version__
from surgiplan.errors import BadInputError
from surgiplan.model.provenance import REVIEWED
from surgiplan.plans.compare import (
    Comparison,
    Threshold,
    compare_stored,
    plan_safety,
    rule_for,
)
from surgiplan.plans.model import Plan, PlanStatus, utc_now
from surgiplan.plans.planset import PlanSet
from surgiplan.simulation.result import Metric, SimulationResult
from surgiplan.twin import Twin
from surgiplan.ui.plan.trajectory_tools import grade_letter

LIBRARIES = ("numpy", "scipy", "SimpleITK", "pydicom", "vtk", "pyvista", "PySide6", "pydantic",
             "trimesh")
MAX_COMPARED = 4


@dataclass(frozen=True)
class MetricLine:
    """One metric of one intervention, formatted for the report."""

    intervention: str
    title: str
    value: str
    interval: str
    threshold: str
    source: str
    meets: bool | None


@dataclass
class ReportContent:
    title: str
    case: list[tuple[str, str]]
    plan: Plan
    alternatives: list[str]
    comparison: Comparison | None
    metrics: list[MetricLine]
    uncertainty: list[str]
    provenance: list[tuple[str, str]]
    plugins: list[tuple[str, str]]
    parameters: list[tuple[str, str]]
    hashes: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)
    verdict: str = ""  # the plan's overall level (worst of levels, concerns, unassessable)
    verdict_reasons: list[str] = field(default_factory=list)
    created_utc: str = field(default_factory=utc_now)
    # (structure, method, quality flag) of each automatic structure of the twin, from provenance
    automatic: list[tuple[str, str, str]] = field(default_factory=list)
    # structure changes between time points kept with the twin's follow-up series (issue 18)
    longitudinal: list[dict[str, Any]] = field(default_factory=list)


def choose_plan(plan_set: PlanSet, name: str | None) -> Plan:
    """The named plan; else the approved one; else the safest scored one; else the first."""
    if name:
        return plan_set.get(name)
    plans = plan_set.plans
    if not plans:
        raise BadInputError("the case has no plans to report",
                            action="add a plan first (or open a phantom with demo plans)")
    approved = [p for p in plans if p.status is PlanStatus.APPROVED]
    if approved:
        return approved[0]
    scored = [p for p in plans if p.scored]
    if len(scored) > 1:
        safest = compare_stored(scored[:MAX_COMPARED]).safest
        if safest:
            return plan_set.get(safest)
    return (scored or plans)[0]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:.3g}" if unit == "" and abs(value) < 1 else f"{value:.1f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return f"{text} {unit}".strip()


GRADE_KEY = "gertzbein_grade"  # 0..4 stored, shown as the Gertzbein-Robbins letter A..E


def _value(m: Metric) -> str:
    """The value cell; the Gertzbein-Robbins grade as its letter (A..E)."""
    if m.key == GRADE_KEY:
        return f"grade {grade_letter(m.value)}"
    return fmt(m.value, m.unit)


def _threshold_text(m: Metric, threshold: Threshold) -> str:
    if m.key == GRADE_KEY:
        return f"<= {grade_letter(threshold.value)} (A or B: breach < 2 mm)"
    return threshold.text(m.unit)


def _interval(m: Metric) -> str:
    """The interval cell: "lo to hi unit (prediction)", "none (reason)", or not assessable."""
    if m.not_assessable:
        share = ("" if m.failed_draw_share is None
                 else f"; {100 * m.failed_draw_share:.0f} % of draws failed")
        return f"not assessable: {m.not_assessable}{share}"
    ci = m.ci95
    if ci is None or not all(v is not None and math.isfinite(v) for v in ci):
        return f"none ({m.no_interval_reason})" if m.no_interval_reason else "—"
    if m.key == GRADE_KEY:
        return f"{grade_letter(ci[0])} to {grade_letter(ci[1])} ({m.interval_kind})"
    return f"{fmt(ci[0])} to {fmt(ci[1], m.unit)} ({m.interval_kind})"


def _metric_lines(plan: Plan, comparison: Comparison | None) -> list[MetricLine]:
    rows = {} if comparison is None else {(r.key, r.structure): r for r in comparison.rows}
    lines = []
    for item in plan.interventions:
        if not item.result:
            continue
        for m in SimulationResult.from_json(item.result).metrics:
            row = rows.get((m.key, m.structure)) if len(plan.interventions) == 1 else None
            threshold = row.threshold if row is not None else None
            rule = rule_for(m.key)
            if threshold is None and rule.threshold is not None:
                threshold = Threshold(rule.threshold, rule.kind, rule.source)
            title = m.title + (f" ({m.structure})" if m.structure and m.structure.casefold()
                               not in m.title.casefold() else "")
            lines.append(MetricLine(
                item.label, title,
                "not assessable" if m.not_assessable else _value(m), _interval(m),
                "" if threshold is None else _threshold_text(m, threshold),
                "" if threshold is None else threshold.source,
                None if threshold is None or not math.isfinite(m.value)
                else threshold.met_by(m.value)))
    return lines


def _uncertainty_words(plan: Plan) -> list[str]:
    out = []
    for item in plan.interventions:
        prov = (item.result or {}).get("provenance") or {}
        u = prov.get("uncertainty") or {}
        if not u:
            out.append(f"{item.label}: no uncertainty model recorded (not scored).")
            continue
        sources = u.get("sources", {})
        samples = prov.get("samples", u.get("samples", 0))
        profile = u.get("profile") or "not stated"
        text = (f"{item.label} ({item.simulator_id}): error profile {profile}; "
                f"{u.get('model', 'Monte Carlo')}. "
                f"Entry placement error SD {fmt(u.get('entry_sd_mm'), 'mm')} per axis "
                f"(source: {sources.get('entry_sd_mm', 'not stated')}); target placement "
                f"error SD {fmt(u.get('target_sd_mm'), 'mm')} per axis (source: "
                f"{sources.get('target_sd_mm', 'not stated')}); structure-boundary SD "
                f"{fmt(u.get('boundary_sd_mm'), 'mm')} ({sources.get('boundary_sd_mm', '')}). "
                f"{samples} Monte Carlo samples, random seed {prov.get('seed', u.get('seed'))}; "
                f"intervals: {u.get('interval', '95 % percentile interval')}.")
        out.append(text)
    return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundle_hashes(case_path: Path | None) -> list[tuple[str, str]]:
    if case_path is None or not Path(case_path).is_file():
        return [("case file", "not saved (no file to hash)")]
    out = [(f"case file {Path(case_path).name}", _sha256_file(Path(case_path)))]
    try:
        with zipfile.ZipFile(case_path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        out += [(name, digest) for name, digest in manifest.get("files", {}).items()
                if not name.startswith("meshes/")]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass
    return out


def _versions() -> list[tuple[str, str]]:
    out = [("SurgiPlan", __version__), ("Python", platform.python_version()),
           ("Platform", platform.platform(terse=True))]
    for name in LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            module = sys.modules.get(name)
            out.append((name, getattr(module, "__version__", "not installed")))
    return out


def _plugins() -> list[tuple[str, str]]:
    from surgiplan.simulation import discover

    rows = []
    for entry in discover():
        version = entry.spec.version if entry.spec is not None else "?"
        state = "" if entry.enabled else f" (disabled: {entry.reason})"
        rows.append((entry.name, f"{version}, {entry.distribution}{state}"))
    return rows


def _case_rows(twin: Twin, case_path: Path | None, include_identifiers: bool
               ) -> list[tuple[str, str]]:
    image = twin.image
    geo = twin.geometry
    rows = [("Case reference (pseudonymous)", twin.patient_ref or "none")]
    if include_identifiers:
        patient = image.metadata.get("patient") or {}
        for key in ("name", "id", "birth_date"):
            if patient.get(key):
                rows.append((f"Patient {key.replace('_', ' ')}", str(patient[key])))
    else:
        rows.append(("Identifiers", "withheld (de-identified report)"))
    rows += [
        ("Case file", Path(case_path).name if case_path else "unsaved"),
        ("Image", f"{image.modality} {image.description if include_identifiers else ''}".strip()),
        ("Grid", f"{geo.size[0]} x {geo.size[1]} x {geo.size[2]} voxels, "
                 f"{' x '.join(f'{s:g}' for s in geo.spacing_mm)} mm (LPS)"),
        ("Structures", ", ".join(f"{s.name} ({s.role})" for s in twin.structures) or "none"),
    ]
    return rows


def build_content(twin: Twin, plan_set: PlanSet, plan_name: str | None = None, *,
                  case_path: Path | None = None, include_identifiers: bool = False,
                  ) -> ReportContent:
    """Everything the report says about ``plan_name`` (see :func:`choose_plan`)."""
    plan = choose_plan(plan_set, plan_name)
    others = [p for p in plan_set.plans if p.name != plan.name and p.scored]
    compared = [plan, *others][:MAX_COMPARED] if plan.scored else []
    comparison = compare_stored(compared) if compared else None
    parameters = [(f"{i.label}: {k}", json.dumps(v)) for i in plan.interventions
                  for k, v in {**i.parameters, **_inputs_summary(i.inputs)}.items()]
    hashes = _bundle_hashes(case_path)
    for item in plan.interventions:
        prov = (item.result or {}).get("provenance") or {}
        hashes += [(f"{item.label}: {k}", v) for k, v in prov.get("input_hashes", {}).items()]
    imported = [*twin.image.warnings, *getattr(twin.provenance, "import_warnings", [])]
    warnings = [f"Import: {w}" for w in dict.fromkeys(imported)]  # gantry tilt, gaps...
    warnings += [f"{i.label}: {w}" for i in plan.interventions
                 for w in (i.result or {}).get("warnings", [])]
    if not plan.scored:
        warnings.append("The plan is not scored: metrics are missing.")
    automatic = _automatic_rows(twin)
    unreviewed = [n for n, _, flag in automatic if not flag.startswith(REVIEWED)]
    if unreviewed:
        warnings.append(f"{len(unreviewed)} automatic structure(s) not reviewed: "
                        f"{', '.join(unreviewed)} (see Automatic structures).")
    safety = plan_safety(plan.name, [SimulationResult.from_json(i.result)
                                     for i in plan.interventions if i.result])
    return ReportContent(
        title=f"Plan report: {plan.name}",
        case=_case_rows(twin, case_path, include_identifiers), plan=plan,
        alternatives=[p.name for p in compared[1:]], comparison=comparison,
        metrics=_metric_lines(plan, comparison), uncertainty=_uncertainty_words(plan),
        provenance=_versions(), plugins=_plugins(), parameters=parameters, hashes=hashes,
        warnings=warnings,
        verdict=str(safety.worst_level) if plan.scored else "not scored",
        verdict_reasons=safety.reasons(), automatic=automatic,
        longitudinal=[c for e in twin.series for c in e.transform.quality.get(
            "structure_changes", [])])


def _automatic_rows(twin: Twin) -> list[tuple[str, str, str]]:
    """(name, method, quality flag) of the twin's structures an automatic method made."""
    names = twin.segmentation.names()
    return [(n, a.method, a.quality + (f" by {a.reviewed_by}" if a.reviewed_by else ""))
            for n, a in twin.provenance.automatic.items() if n in names]


def _inputs_summary(inputs: dict[str, Any]) -> dict[str, Any]:
    """The small, readable part of a simulator input (points, sizes, device; not meshes)."""
    keep = ("entry_lps", "target_lps", "diameter_mm", "implant_id", "device_id", "tip_lps",
            "shaft_lps", "settings", "target_structure", "organ_structure", "margin_mm")
    out = {}
    for key in keep:
        if key in inputs and inputs[key] not in (None, {}, []):
            value = inputs[key]
            if isinstance(value, list | tuple):
                value = [round(float(v), 1) for v in value]
            out[key] = value
    return out
