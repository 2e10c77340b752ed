"""The Plans dock: listing, editing with undo, approval, hooks, export, re-score, save."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.plans import PlanStatus, plan_set_of_twin
from surgiplan.simulation import TrajectoryInput
from tests.ui.conftest import TUMOUR_LPS
from tests.ui.plans_fixtures import twin_with_plans


@pytest.fixture
def loaded(window):
    twin, plans = twin_with_plans()
    window.set_twin(twin)
    window.dirty = False
    return window, twin, plans


def column(panel, col: int) -> list[str]:
    return [panel.table.item(r, col).text() for r in range(panel.table.rowCount())]


def test_lists_the_case_plans_with_status_author_and_level(loaded):
    window, _twin, _plans = loaded
    panel = window.plans_panel
    assert column(panel, 0) == ["Lateral", "Anterior", "Posterior"]
    assert column(panel, 1) == ["draft"] * 3
    assert column(panel, 2) == ["tester"] * 3
    # the level is the verdict: Anterior enters 30.1 deg to the skin normal (over the 30 deg
    # limit) and Posterior's entry angle is not assessable on this small twin
    assert column(panel, 5) == ["breach", "caution", "caution"]


def test_duplicate_rename_delete_with_undo_mark_dirty_and_store(loaded):
    window, twin, _plans = loaded
    panel = window.plans_panel
    panel.select("Anterior")
    panel.duplicate_selected()
    assert column(panel, 0) == ["Lateral", "Anterior", "Anterior (copy)", "Posterior"]
    assert window.dirty
    panel.select("Anterior (copy)")
    panel.rename_selected("Anterior 2")
    panel.select("Lateral")
    panel.delete_selected()
    assert column(panel, 0) == ["Anterior", "Anterior 2", "Posterior"]
    assert plan_set_of_twin(twin).names() == ["Anterior", "Anterior 2", "Posterior"]
    assert panel.buttons["undo"].isEnabled()
    assert panel.undo() == "delete Lateral"
    assert column(panel, 0) == ["Lateral", "Anterior", "Anterior 2", "Posterior"]
    assert plan_set_of_twin(twin).names() == column(panel, 0)  # undo is stored too
    panel.redo()
    assert "Lateral" not in column(panel, 0)
    actions = [e.action for e in plan_set_of_twin(twin).audit.entries]
    assert actions[-4:] == ["rename", "delete", "undo", "redo"]


def test_status_approval_asks_who_and_shows_it(loaded, monkeypatch):
    window, twin, _plans = loaded
    panel = window.plans_panel
    asked = []
    monkeypatch.setattr("surgiplan.ui.plan.plans_panel.ask_text",
                        lambda *a, **k: asked.append(a[1]) or "Dr Vale (neurosurgeon)")
    panel.select("Anterior")
    panel.buttons["propose"].click()
    assert column(panel, 1)[1] == "proposed"
    panel.buttons["approve"].click()
    assert asked == ["Approve plan"]
    assert column(panel, 1)[1].startswith("approved by Dr Vale (neurosurgeon) (")
    assert "APPROVED" in panel.detail_label.text()
    assert not panel.buttons["approve"].isEnabled()
    stored = plan_set_of_twin(twin).get("Anterior")
    assert stored.status is PlanStatus.APPROVED and stored.approved_by.startswith("Dr Vale")


def test_notes_and_bad_input_go_to_a_dialog(loaded):
    window, twin, _plans = loaded
    panel = window.plans_panel
    panel.select("Posterior")
    panel.notes_edit.setPlainText("Avoids the vessel; longer path.")
    panel.save_notes_button.click()
    assert plan_set_of_twin(twin).get("Posterior").notes == "Avoids the vessel; longer path."
    panel.select("Posterior")
    panel._guard(lambda: panel.rename_selected("Anterior"))  # name taken
    assert window.error_dialogs and "exists already" in window.error_dialogs[-1].text()


def test_new_plan_from_the_planning_trajectory_and_the_rehearsal_hook(loaded):
    window, twin, _plans = loaded
    panel = window.plans_panel
    window.planning_panel.plan.set_points((-15.0, -34.0, 5.0), tuple(TUMOUR_LPS))
    plan = panel.new_from_trajectory("From planning")
    item = plan.interventions[0]
    assert item.kind == "trajectory"
    assert np.allclose(item.inputs["entry_lps"], (-15.0, -34.0, 5.0))
    assert np.allclose(item.inputs["target_lps"], TUMOUR_LPS)
    panel.select("From planning")
    inputs = TrajectoryInput(entry_lps=(0.0, -34.0, 0.0), target_lps=tuple(TUMOUR_LPS))
    updated = panel.add_intervention("trajectory", inputs, None, label="Trajectory")
    assert [i.label for i in updated.interventions] == ["Trajectory", "Trajectory 2"]
    assert plan_set_of_twin(twin).get("From planning").interventions[1].label == "Trajectory 2"
    panel.table.clearSelection()
    fresh = panel.add_intervention("trajectory", inputs)
    assert fresh.name in column(panel, 0) and len(fresh.interventions) == 1


def test_export_markups_is_lps_slicer_json(loaded, tmp_path):
    window, _twin, _plans = loaded
    panel = window.plans_panel
    panel.select("Anterior", "Posterior")
    path = panel.export_markups(tmp_path / "plans.mrk.json")
    data = json.loads(path.read_text())
    lines = [m for m in data["markups"] if m["type"] == "Line"]
    assert [m["name"] for m in lines] == ["Anterior: Needle", "Posterior: Needle"]
    assert all(m["coordinateSystem"] == "LPS" for m in data["markups"])
    assert np.allclose(lines[0]["controlPoints"][1]["position"], TUMOUR_LPS)


def test_rescore_runs_in_a_worker_and_stores_results(loaded, qtbot):
    window, twin, _plans = loaded
    panel = window.plans_panel
    panel.select("Lateral")
    before = plan_set_of_twin(twin).get("Lateral").interventions[0].scored_utc
    panel.plan_set.update("Lateral", interventions=[
        i.model_copy(update={"result": None, "scored_utc": None})
        for i in panel.plan_set.get("Lateral").interventions])
    assert column(panel, 5)[0] == "not scored"
    panel.select("Lateral")
    panel.buttons["rescore"].click()
    qtbot.waitUntil(lambda: column(panel, 5)[0] == "breach", timeout=20_000)
    after = plan_set_of_twin(twin).get("Lateral").interventions[0]
    assert after.result is not None and after.scored_utc >= before


def test_plans_survive_save_and_reload(loaded, tmp_path):
    window, twin, _plans = loaded
    panel = window.plans_panel
    panel.select("Lateral")
    panel.rename_selected("Lateral (rejected)")
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    again = plan_set_of_twin(load_bundle(path))
    assert again.names() == ["Lateral (rejected)", "Anterior", "Posterior"]
