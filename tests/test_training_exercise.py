"""The exercise file format, attempts and the scoring arithmetic (no case needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.simulation.result import DisplayMesh
from surgiplan.training.attempt import read_attempt
from surgiplan.training.exercise import (
    EXERCISES_DIR,
    find_exercise,
    list_exercises,
    load_exercise,
    save_exercise,
)
from surgiplan.training.scoring import axis_angle_deg, credit, zone_overlap_pct


def test_shipped_exercises_cover_every_phantom():
    found = {ex.case.phantom: ex for _, ex in list_exercises()}
    assert set(found) == {"head", "spine", "liver"}
    assert str(found["head"].kind) == "trajectory" and found["head"].target_hint_lps
    assert str(found["spine"].kind) == "implant" and found["spine"].tool.length_mm
    assert str(found["liver"].kind) == "ablation" and found["liver"].tool.device_id
    assert any(c.key == "min_margin_mm" and c.pass_at == 5.0
               for c in found["liver"].rubric.metrics)
    assert (EXERCISES_DIR / "README.md").is_file()


def test_round_trip_and_lookup_by_id(tmp_path):
    _, exercise = find_exercise("head-seeg-tumour")
    copy = save_exercise(exercise, tmp_path / "copy.exercise.json")
    assert load_exercise(copy) == exercise
    assert find_exercise(str(copy))[1] == exercise
    with pytest.raises(BadInputError, match="training list"):
        find_exercise("no-such-exercise")


@pytest.mark.parametrize(("change", "message"), [
    ({"schema_version": 99}, "newer than this SurgiPlan"),
    ({"format": "something"}, "does not describe a SurgiPlan exercise"),
    ({"rubric": {"metrics": []}}, "rubric"),
    ({"kind": "ablation"}, "device_id"),
])
def test_bad_exercises_are_refused_in_one_line(tmp_path, change, message):
    raw = json.loads(next(EXERCISES_DIR.glob("head-*.exercise.json")).read_text())
    raw.update(change)
    path = tmp_path / "bad.exercise.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(BadInputError, match=message) as info:
        load_exercise(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_credit_is_linear_between_fail_and_pass():
    assert credit(2.0, 2.0, 0.0) == 1.0 and credit(5.0, 2.0, 0.0) == 1.0
    assert credit(1.0, 2.0, 0.0) == pytest.approx(0.5)
    assert credit(-1.0, 2.0, 0.0) == 0.0
    assert credit(0.01, 0.0, 0.05) == pytest.approx(0.8)  # lower is better
    assert credit(float("nan"), 1.0, 0.0) == 0.0 and credit(None, 1.0, 0.0) == 0.0


def test_axis_angle():
    from surgiplan.training.exercise import Placement

    a = Placement(entry_lps=(0, 0, 0), target_lps=(0, 0, 10))
    b = Placement(entry_lps=(5, 5, 0), target_lps=(15, 5, 0))
    assert axis_angle_deg(a, a) == pytest.approx(0.0, abs=1e-6)
    assert axis_angle_deg(a, b) == pytest.approx(90.0)


def _sphere(centre, radius=10.0) -> DisplayMesh:
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return DisplayMesh("ablation zone 1", np.asarray(mesh.vertices) + centre,
                       np.asarray(mesh.faces))


def test_zone_overlap_is_a_dice_coefficient():
    a = _sphere(np.zeros(3))
    assert zone_overlap_pct([a], [a]) == pytest.approx(100.0)
    assert zone_overlap_pct([a], [_sphere(np.array([30.0, 0, 0]))]) == 0.0
    # two r=10 balls 10 mm apart: lens volume / ball volume = 5/16 -> Dice 31 %
    assert zone_overlap_pct([a], [_sphere(np.array([10.0, 0, 0]))]) == pytest.approx(31.25,
                                                                                    abs=2.5)
    assert np.isnan(zone_overlap_pct([], [a]))


def test_attempt_files_and_plans(tmp_path):
    _, exercise = find_exercise("head-seeg-tumour")
    attempt = tmp_path / "attempt.json"
    attempt.write_text(json.dumps({"format": "surgiplan.attempt", "schema_version": 1,
                                   "exercise_id": exercise.id, "entry_lps": [1, 2, 3],
                                   "target_lps": [4, 5, 6], "time_taken_s": 100}))
    got = read_attempt(attempt, exercise)
    assert got.entry_lps == (1, 2, 3) and got.time_taken_s == 100
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"name": "mine", "author": "resident", "interventions": [
        {"label": "e", "kind": "trajectory", "simulator_id": "trajectory",
         "inputs": {"entry_lps": [0, 0, 0], "target_lps": [0, 0, 9]}}]}))
    got = read_attempt(plan, exercise)
    assert got.target_lps == (0, 0, 9) and got.resident == "resident"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(attempt.read_text()), "exercise_id": "x"}))
    with pytest.raises(BadInputError, match="for exercise 'x'"):
        read_attempt(other, exercise)
    with pytest.raises(BadInputError, match="neither an attempt"):
        (tmp_path / "junk.json").write_text("{}")
        read_attempt(tmp_path / "junk.json", exercise)
