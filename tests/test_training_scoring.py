"""Scoring attempts on the generated head phantom, and the headless `surgiplan training` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.cli.main import main
from surgiplan.training.attempt import placement_of
from surgiplan.training.exercise import Placement, find_exercise
from surgiplan.training.scoring import score_attempt


@pytest.fixture(scope="module")
def head():
    """The head phantom bundle (generated once into the session's user cache) and its twin."""
    from surgiplan.io.bundle import load_bundle
    from surgiplan.simulation import SimulationContext
    from surgiplan.training.cases import phantom_bundle

    bundle = phantom_bundle("head")
    return bundle, SimulationContext(load_bundle(bundle))


def test_the_reference_scores_full_marks_on_reference_criteria(head):
    _, context = head
    _, exercise = find_exercise("head-seeg-tumour")
    ref = exercise.reference
    score = score_attempt(context, exercise, Placement(entry_lps=ref.entry_lps,
                                                       target_lps=ref.target_lps),
                          time_taken_s=120.0)
    assert score.passed and score.score > 90
    assert all(c.credit == 1.0 for c in score.criteria if c.group in ("reference", "time"))
    clearance = next(c for c in score.criteria if c.id == "clearance_mm")
    assert clearance.ci95 is not None and clearance.value > 2.0
    assert all(f.severity != "problem" for f in score.feedback)


def test_a_path_through_an_artery_fails_with_located_feedback(head):
    bundle, context = head
    from surgiplan.plans.store import read_plans

    _, exercise = find_exercise("head-seeg-tumour")
    lateral = next(p for p in read_plans(bundle).plans if p.name.startswith("B "))
    placement = placement_of(lateral.interventions[0])
    score = score_attempt(context, exercise, placement, time_taken_s=1500.0)
    assert not score.passed and score.score < 50
    breach = next(f for f in score.feedback if f.criterion == "level@arteries")
    assert breach.severity == "problem" and "enters arteries" in breach.text
    # the marker sits on the artery's surface near the path, not somewhere arbitrary
    arteries = context.signed_distance_mm("arteries", np.asarray([breach.location_lps]))
    assert abs(float(arteries[0])) < 2.0
    time_item = next(c for c in score.criteria if c.id == "time_taken_s")
    assert time_item.credit == 0.0  # 25 min on a 10 min exercise
    angle = next(c for c in score.criteria if c.id == "axis_angle_deg")
    assert angle.value > 45


def test_cli_list_and_score(head, tmp_path, capsys):
    bundle, _ = head
    assert main(["training", "list", "--json"]) == 0
    ids = {e["id"] for e in json.loads(capsys.readouterr().out)["exercises"]}
    assert ids == {"head-seeg-tumour", "spine-left-l4-pedicle-screw", "liver-ablate-tumour-5mm"}
    _, exercise = find_exercise("head-seeg-tumour")
    attempt = tmp_path / "attempt.json"
    attempt.write_text(json.dumps({"format": "surgiplan.attempt", "schema_version": 1,
                                   "exercise_id": exercise.id,
                                   "entry_lps": list(exercise.reference.entry_lps),
                                   "target_lps": [-28.0, 20.0, 44.0], "time_taken_s": 60}))
    assert main(["training", "score", exercise.id, str(attempt), "--case", str(bundle),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    target = next(c for c in out["criteria"] if c["id"] == "target_distance_mm")
    assert target["value"] == pytest.approx(2.0, abs=1e-6) and out["passed"]
    assert all("location_lps" in f for f in out["feedback"])
    assert main(["training", "score", exercise.id, str(attempt), "--case", str(bundle)]) == 0
    text = capsys.readouterr().out
    assert "score" in text and "Reference" in text


def test_cli_bad_input_exits_2(tmp_path, capsys):
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    assert main(["training", "score", "head-seeg-tumour", str(junk)]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and len(err.strip().splitlines()) == 1
