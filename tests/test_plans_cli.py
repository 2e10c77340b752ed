"""``surgiplan sample head`` ships scored demo plans; ``surgiplan plans`` and ``surgiplan score``
on that bundle, with exit codes 0 and 2 (bad input: one line on stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surgiplan.cli.main import main
from surgiplan.plans.compare import compare_stored
from surgiplan.plans.store import read_plans


@pytest.fixture(scope="module")
def head_bundle(head_sample: Path) -> Path:
    """``surgiplan sample head``'s bundle (tests/conftest.py, once per session; read-only)."""
    return head_sample / "head.surgiplan"


def test_head_sample_ships_a_comparison(head_bundle):
    plans = read_plans(head_bundle).plans
    assert len(plans) == 3 and all(p.scored for p in plans)
    cmp = compare_stored(plans)
    lateral = "B lateral temporal trajectory"
    assert cmp.safest != lateral
    assert cmp.safety[lateral].worst_level == "breach"
    assert f"than {lateral}: {lateral} enters arteries" in cmp.why_by_plan[lateral]


def test_plans_lists_text_and_json(head_bundle, capsys):
    assert main(["plans", str(head_bundle)]) == 0
    text = capsys.readouterr().out
    assert "3 plan(s)" in text and "closest arteries" in text
    assert main(["plans", str(head_bundle.parent), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["name"][0] for p in data["plans"]] == ["A", "B", "C"]
    assert data["plans"][1]["worst_level"] == "breach"


def test_score_reruns_a_plan_with_intervals(head_bundle, capsys):
    name = "C posterior-superior trajectory"
    assert main(["score", str(head_bundle), "--plan", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (plan,) = data["plans"]
    result = plan["interventions"][0]["result"]
    stored = read_plans(head_bundle).get(name).interventions[0].result
    assert result["status"] == "ok" and all(m["ci95"] is not None for m in result["metrics"])
    assert [m["value"] for m in result["metrics"]] == [m["value"] for m in stored["metrics"]]
    assert main(["score", str(head_bundle), "--plan", name]) == 0
    text = capsys.readouterr().out
    assert "Minimum distance to arteries" in text and "95% [" in text


def test_bad_input_exits_2_with_one_line(head_bundle, tmp_path, capsys):
    assert main(["score", str(head_bundle), "--plan", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no plan named 'nope'" in err and "\n" not in err
    assert main(["plans", str(tmp_path / "missing.surgiplan")]) == 2
    assert "no such case file" in capsys.readouterr().err


def test_markups_export_then_import_as_a_new_plan(head_bundle, tmp_path, capsys):
    mrk = tmp_path / "head.mrk.json"
    assert main(["plans", str(head_bundle), "--export-mrk", str(mrk)]) == 0
    copy = tmp_path / "copy.surgiplan"
    copy.write_bytes(head_bundle.read_bytes())
    assert main(["plans", str(copy), "--import-mrk", str(mrk), "--as", "From Slicer",
                 "--actor", "Dr Who"]) == 0
    capsys.readouterr()
    plan_set = read_plans(copy)
    imported = plan_set.get("From Slicer")
    assert len(imported.interventions) == 3
    first = read_plans(head_bundle).plans[0].interventions[0].inputs
    assert imported.interventions[0].inputs["entry_lps"] == pytest.approx(first["entry_lps"])
    assert plan_set.audit.entries[-1].action == "create"
    assert plan_set.audit.entries[-1].actor == "Dr Who"
