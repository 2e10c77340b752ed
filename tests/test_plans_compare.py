"""Comparison logic on hand-made results: best per row, overlap -> not distinguishable,
thresholds, Pareto front, and the why-sentence naming the structure and distances."""

from __future__ import annotations

import pytest

from surgiplan.plans.compare import NOT_DISTINGUISHABLE, Better, compare_plans, compare_stored
from surgiplan.plans.model import Intervention, Plan
from surgiplan.simulation import Level, Metric, SimulationResult, Status, StructureLevel
from surgiplan.simulation.inputs import TrajectoryInput


def _result(artery_mm, artery_ci, p_breach, length_mm, length_ci, vein_mm=12.0,
            vein_ci=(10.0, 14.0)) -> SimulationResult:
    level = Level.BREACH if artery_mm < 0 else Level.CAUTION if artery_mm < 2 else Level.SAFE
    return SimulationResult(
        status=Status.OK,
        metrics=[
            Metric("min_distance_mm", "Minimum distance to arteries", "mm", artery_mm, artery_ci,
                   "arteries"),
            Metric("min_distance_mm", "Minimum distance to veins", "mm", vein_mm, vein_ci,
                   "veins"),
            Metric("breach_probability", "Probability of breaching arteries", "", p_breach,
                   (max(0.0, p_breach - 0.03), min(1.0, p_breach + 0.03)), "arteries"),
            Metric("path_length_mm", "Path length", "mm", length_mm, length_ci),
        ],
        levels=[StructureLevel("arteries", level, artery_mm, 2.0, p_breach),
                StructureLevel("veins", Level.SAFE, vein_mm, 2.0, 0.0)])


@pytest.fixture
def two_plans():
    return {"Lateral": _result(0.4, (-1.6, 2.5), 0.31, 44.0, (42.0, 46.0)),
            "Frontal": _result(6.2, (4.9, 7.6), 0.0, 71.0, (69.0, 73.0))}


def test_best_per_row_difference_and_threshold(two_plans):
    cmp = compare_plans(two_plans)
    artery = cmp.row("min_distance_mm@arteries")
    assert artery.better is Better.HIGHER and artery.best_plan == "Frontal"
    assert artery.threshold.value == 2.0 and artery.threshold.text("mm") == ">= 2 mm"
    lateral = artery.cell("Lateral")
    assert lateral.difference == pytest.approx(0.4 - 6.2)
    assert lateral.meets_threshold is False and artery.cell("Frontal").meets_threshold
    assert lateral.distinguishable is True and lateral.note == ""
    length = cmp.row("path_length_mm")
    assert length.better is Better.LOWER and length.best_plan == "Lateral"
    assert cmp.row("breach_probability@arteries").best_plan == "Frontal"


def test_overlapping_intervals_are_not_distinguishable():
    cmp = compare_plans({"A": _result(6.0, (4.0, 8.0), 0.0, 60.0, (58.0, 62.0)),
                         "B": _result(7.0, (5.5, 8.5), 0.0, 61.0, (60.5, 61.5))})
    row = cmp.row("min_distance_mm@arteries")
    assert row.best_plan == "B"
    assert row.cell("A").distinguishable is False and row.cell("A").note == NOT_DISTINGUISHABLE
    assert "not distinguishable" in cmp.why and "arteries" in cmp.why


def test_why_sentence_names_the_structure_and_distances(two_plans):
    cmp = compare_plans(two_plans)
    assert cmp.safest == "Frontal"
    assert cmp.why.startswith("Frontal is safer than Lateral")
    assert "arteries" in cmp.why and "0.4 mm" in cmp.why and "6.2 mm" in cmp.why
    assert "31 %" in cmp.why and "veins" not in cmp.why


def test_pareto_front_of_clearance_against_length(two_plans):
    worse = _result(3.0, (2.0, 4.0), 0.0, 80.0, (78.0, 82.0))  # shorter clearance AND longer
    cmp = compare_plans({**two_plans, "Dominated": worse})
    assert "path_length_mm" in cmp.pareto_objectives()
    front = {p.plan: p.on_front for p in cmp.pareto("path_length_mm")}
    assert front == {"Lateral": True, "Frontal": True, "Dominated": False}


def test_stored_results_compare_like_live_ones(two_plans):
    plans = []
    for name, result in two_plans.items():
        item = Intervention.from_input("Electrode", TrajectoryInput(
            entry_lps=(0.0, 0.0, 0.0), target_lps=(0.0, 0.0, 50.0)))
        plans.append(Plan(name=name, interventions=[item.with_result(result)]))
    stored = compare_stored(plans)
    assert stored.to_json() == compare_plans(two_plans).to_json()
    back = SimulationResult.from_json(two_plans["Lateral"].to_json())
    assert back.metric("min_distance_mm", "arteries").ci95 == (-1.6, 2.5)
    assert back.level("arteries").level is Level.CAUTION


def test_plans_without_clearances_are_not_ranked():
    bare = SimulationResult(status=Status.OK, metrics=[Metric("remnant_pct", "Remnant", "%",
                                                              60.0, (55.0, 65.0))])
    cmp = compare_plans({"Resection": bare,
                         "Ablation": _result(6.0, (4.0, 8.0), 0.0, 60.0, (58.0, 62.0))})
    assert cmp.safest is None and "cannot be compared for Resection" in cmp.why
