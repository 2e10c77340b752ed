"""`surgiplan score --json` on every phantom: every numeric metric carries a 95 % interval with
its kind, or says why it has none, or why it cannot be assessed; every result validates; and the
plan's verdict is never "safe" over a simulator concern (issue 10, items 4, 5 and 11)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest

from surgiplan.plans.compare import plan_safety
from surgiplan.simulation.result import Level, SimulationResult, validate_result

PHANTOMS = ("head", "spine", "liver")
DEMO_PLANS = {"head": 3, "spine": 3, "liver": 2}  # surgiplan.plans.demo


def _score_json(bundle: Path) -> str:
    """``surgiplan score BUNDLE --json`` run in-process (the CLI's ``main``; a subprocess
    cost another interpreter start and numba cache load per phantom); its stdout."""
    from surgiplan.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["score", str(bundle), "--json"])
    assert code == 0, err.getvalue()
    return out.getvalue()


def _demo_bundle(name: str, folder: Path) -> Path:
    """The phantom's demo plans (``surgiplan.plans.demo``), unscored, in a bundle of the
    session's rendered phantom: ``score`` re-runs every simulator anyway, so the scoring and
    the DICOM round trip ``surgiplan sample`` adds (~40 s for the spine) are not repeated."""
    from surgiplan.io.bundle import save_bundle
    from surgiplan.plans.demo import DEMO_AUTHOR, DEMOS
    from surgiplan.plans.planset import PlanSet
    from surgiplan.plans.store import store_in_twin
    from surgiplan.simulation import SimulationContext
    from surgiplan.twin import Twin
    from tests.conftest import shared_phantom

    volume, segmentation, _ = shared_phantom(name)
    twin = Twin(volume, segmentation)
    plan_set = PlanSet(actor=DEMO_AUTHOR)
    for plan in DEMOS[name](SimulationContext(twin)):
        plan_set.add(plan)
    store_in_twin(twin, plan_set)
    return save_bundle(twin, folder / f"{name}.surgiplan")


@pytest.fixture(scope="module", params=PHANTOMS)
def scored(request, tmp_path_factory) -> tuple[str, dict]:
    """``surgiplan score --json`` of the phantom's demo plans: the head as ``surgiplan sample``
    writes it (the session's ``head_sample``, shared with the training, report and UI tests),
    the spine and the liver as :func:`_demo_bundle`."""
    name = request.param
    if name == "head":
        bundle = request.getfixturevalue("head_sample") / "head.surgiplan"
    else:
        bundle = _demo_bundle(name, tmp_path_factory.mktemp(name))
    report = json.loads(_score_json(bundle))
    assert len(report["plans"]) == DEMO_PLANS[name], report["plans"]
    return name, report


def _results(report: dict) -> list[tuple[str, dict]]:
    return [(f"{p['name']} / {i['label']}", i["result"]) for p in report["plans"]
            for i in p["interventions"] if i.get("result")]


def test_every_numeric_metric_has_an_interval_or_a_reason(scored):
    name, report = scored
    results = _results(report)
    assert results, f"the {name} phantom's demo plans were not scored"
    missing = []
    for where, result in results:
        for m in result["metrics"]:
            if m["not_assessable"]:
                continue
            has_interval = m["ci95"] is not None and m["interval"] in ("prediction", "confidence")
            has_reason = m["ci95"] is None and m["interval"] == "none" and m["no_interval_reason"]
            if not (has_interval or has_reason):
                missing.append(f"{where}: {m['key']} ({m['structure']})")
    assert not missing, f"{name}: metrics without an interval or a reason: {missing}"


def test_every_stored_result_validates(scored):
    _, report = scored
    problems = {where: validate_result(SimulationResult.from_json(r))
                for where, r in _results(report)}
    assert not {k: v for k, v in problems.items() if v}, problems


def test_each_value_lies_in_its_own_interval(scored):
    _, report = scored
    for where, result in _results(report):
        for m in result["metrics"]:
            if m["ci95"] is None or m["value"] is None:
                continue
            low, high = m["ci95"]
            assert low - 1e-9 <= m["value"] <= high + 1e-9, (where, m)


def test_plan_verdict_is_never_safe_over_a_concern(scored):
    _, report = scored
    for plan in report["plans"]:
        results = [SimulationResult.from_json(i["result"]) for i in plan["interventions"]
                   if i.get("result")]
        safety = plan_safety(plan["name"], results)
        if any(c.level is not Level.SAFE for r in results for c in r.concerns):
            assert safety.worst_level is not Level.SAFE, plan["name"]
            assert safety.reasons()
        if any(math.isnan(m.value) for r in results for m in r.metrics if m.not_assessable):
            assert safety.worst_level is not Level.SAFE, plan["name"]


def test_verdict_follows_a_grade_c_concern_in_the_report(tmp_path: Path):
    """A result whose structures are all safe but whose simulator raises a concern is reported
    with that concern as its headline (report content, not only the table)."""
    from surgiplan.simulation.result import Concern, Metric, Status, StructureLevel

    result = SimulationResult(
        status=Status.OK,
        metrics=[Metric("breach_mm", "Largest breach", "mm", 2.4, (1.6, 3.1),
                        interval="prediction")],
        levels=[StructureLevel("canal", Level.SAFE, 6.0, 2.0)],
        concerns=[Concern(Level.CAUTION, "Gertzbein-Robbins grade C (2.4 mm medial breach)",
                          "gertzbein_grade")])
    assert result.overall_level is Level.CAUTION
    safety = plan_safety("screw", [SimulationResult.from_json(result.to_json())])
    assert safety.worst_level is Level.CAUTION
    assert safety.reasons() == ["Gertzbein-Robbins grade C (2.4 mm medial breach)"]
