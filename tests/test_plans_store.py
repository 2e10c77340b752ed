"""Plans as documents: schema round trip, v0 migration, undo of edits, audit without patient
identifiers, and storage in a real case bundle (hash-checked, other entries untouched)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.plans.audit import AuditLog
from surgiplan.plans.model import Intervention, Plan, PlanStatus
from surgiplan.plans.planset import PlanSet
from surgiplan.plans.store import (
    AUDIT_ENTRY,
    PLANS_ENTRY,
    SCHEMA_VERSION,
    plan_set_of_twin,
    plans_from_bytes,
    plans_to_bytes,
    read_plans,
    store_in_twin,
    write_plans,
)
from surgiplan.simulation import AblationInput, TrajectoryInput
from surgiplan.twin import Twin

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "MRN-884213", "PatientBirthDate": "19610203"}


def _trajectory(label: str = "Electrode", entry=(-60.0, 10.0, 70.0)) -> Intervention:
    return Intervention.from_input(label, TrajectoryInput(entry_lps=entry,
                                                          target_lps=(-28.0, 20.0, 42.0)))


def _plans() -> list[Plan]:
    ablation = Intervention.from_input("Probe", AblationInput(
        device_id="generic-microwave", tip_lps=(1.0, 2.0, 3.0), shaft_lps=(1.0, -60.0, 3.0),
        settings={"power_w": 100.0, "time_min": 5.0}))
    return [Plan(name="A", interventions=[_trajectory()], author="Dr Who", notes="first"),
            Plan(name="B", interventions=[_trajectory("E1"), ablation])]


def test_schema_round_trip_keeps_every_field():
    plans = _plans()
    data = plans_to_bytes(plans)
    doc = json.loads(data)
    assert doc["format"] == "surgiplan.plans" and doc["schema_version"] == SCHEMA_VERSION
    back = plans_from_bytes(data)
    assert [p.model_dump() for p in back] == [p.model_dump() for p in plans]
    assert back[1].interventions[1].input_model().tip_lps == (1.0, 2.0, 3.0)


def test_version_0_document_migrates():
    v0 = {"plans": [{"name": "Old", "status": "proposed", "notes": "legacy",
                     "trajectories": [{"entry": [-70, 20, 40], "target": [-28, 20, 42]},
                                      {"entry": [-50, -30, 70], "target": [-28, 20, 42],
                                       "diameter_mm": 1.2}]}]}
    (plan,) = plans_from_bytes(json.dumps(v0).encode())
    assert plan.name == "Old" and plan.status is PlanStatus.PROPOSED and plan.notes == "legacy"
    second = plan.interventions[1].input_model()
    assert second.entry_lps == (-50.0, -30.0, 70.0) and second.diameter_mm == 1.2
    assert plan.interventions[0].label == "Trajectory 1"


def test_newer_or_broken_documents_are_refused_in_one_line():
    newer = json.dumps({"format": "surgiplan.plans", "schema_version": 99, "plans": []})
    with pytest.raises(BadInputError, match="newer SurgiPlan") as err:
        plans_from_bytes(newer.encode(), path="case.surgiplan!plans/plans.json")
    assert "\n" not in str(err.value) and "case.surgiplan" in str(err.value)
    with pytest.raises(BadInputError, match="not valid JSON"):
        plans_from_bytes(b"{nope")
    bad = {"format": "surgiplan.plans", "schema_version": 1,
           "plans": [{"name": "X", "interventions": [
               {"label": "t", "kind": "trajectory", "simulator_id": "trajectory",
                "inputs": {"entry_lps": [0, 0, 0], "target_lps": [0, 0, 0]}}]}]}
    with pytest.raises(BadInputError, match="same point"):
        plans_from_bytes(json.dumps(bad).encode())


def test_duplicate_rename_delete_undo_redo_and_events():
    events: list[str] = []
    ps = PlanSet(_plans(), actor="planner")
    ps.events.connect(lambda event, **kw: events.append(event))
    copy = ps.duplicate("A")
    assert copy.name == "A (copy)" and ps.names() == ["A", "A (copy)", "B"]
    assert copy.id != ps.get("A").id and copy.interventions[0].inputs == \
        ps.get("A").interventions[0].inputs
    ps.rename("A (copy)", "A2")
    ps.delete("B")
    assert ps.names() == ["A", "A2"]
    assert ps.undo() == "delete B" and ps.names() == ["A", "A2", "B"]
    assert ps.undo() == "rename A (copy)" and ps.names() == ["A", "A (copy)", "B"]
    assert ps.undo() == "duplicate A" and ps.names() == ["A", "B"]
    assert not ps.can_undo and ps.can_redo
    assert ps.redo() == "duplicate A" and ps.names() == ["A", "A (copy)", "B"]
    assert {"plan_added", "plan_renamed", "plan_removed", "plans_reset",
            "history_changed"} <= set(events)
    with pytest.raises(BadInputError, match="exists already"):
        ps.rename("A", "B")
    with pytest.raises(BadInputError, match="no plan named 'Z'"):
        ps.get("Z")


def test_approval_needs_approver_and_editing_reverts_to_draft():
    ps = PlanSet(_plans())
    with pytest.raises(BadInputError, match="approver"):
        ps.set_status("A", "approved")
    approved = ps.set_status("A", PlanStatus.APPROVED, by="Dr Chief")
    assert approved.approved_by == "Dr Chief" and approved.approved_utc
    edited = ps.update("A", interventions=[_trajectory(entry=(-70.0, 20.0, 42.0))])
    assert edited.status is PlanStatus.DRAFT and edited.approved_by is None
    ps.undo()
    assert ps.get("A").status is PlanStatus.APPROVED


def _twin_with_identifiers() -> Twin:
    geometry = ImageGeometry((8, 8, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    image = ImageVolume(array=np.zeros(geometry.shape_zyx, np.int16), geometry=geometry)
    image.metadata["patient"] = dict(PATIENT)
    return Twin(image, patient_ref="case-7")


def test_audit_lines_hold_no_patient_identifiers(tmp_path):
    twin = _twin_with_identifiers()
    ps = plan_set_of_twin(twin, actor="Dr Who")
    ps.add(Plan(name="Jane Doe plan", interventions=[_trajectory()],
                notes="DOE^JANE, MRN-884213, born 19610203"))
    ps.update("Jane Doe plan", notes="patient DOE^JANE prefers the left side")
    ps.rename("Jane Doe plan", "Plan for MRN-884213")
    ps.set_status("Plan for MRN-884213", "approved", by="Dr Chief")
    ps.undo()
    store_in_twin(twin, ps)
    path = save_bundle(twin, tmp_path / "case.surgiplan")  # no identifiers in the bundle
    audit = zipfile.ZipFile(path).read(AUDIT_ENTRY).decode()
    lines = audit.splitlines()
    assert len(lines) == 5 and all(json.loads(line)["time_utc"] for line in lines)
    assert [json.loads(line)["action"] for line in lines] == \
        ["create", "edit", "rename", "status", "undo"]
    for forbidden in ("DOE", "JANE", "Jane", "MRN-884213", "19610203", "1961"):
        assert forbidden.casefold() not in audit.casefold(), forbidden
    assert "Dr Who" in audit and "[redacted]" in audit


def test_audit_appends_and_keeps_old_lines_byte_for_byte():
    old = b'{"action":"create","time_utc":"2024-01-01T00:00:00+00:00","extra":1}\n'
    log = AuditLog(old)
    log.append("rename", actor="x", details={"old_name": "a"})
    data = log.to_bytes()
    assert data.startswith(old) and len(data.splitlines()) == 2
    with pytest.raises(BadInputError, match="audit line 1"):
        AuditLog(b'{"no": "action"}\n')


def test_plans_live_in_the_bundle_and_update_in_place(tmp_path):
    twin = _twin_with_identifiers()
    twin.bundle_extras["plans/other-feature.json"] = b'{"kept": true}'
    path = save_bundle(twin, tmp_path / "case.surgiplan")
    image_before = zipfile.ZipFile(path).read("image.nrrd")
    ps = read_plans(path, actor="Dr Who")
    assert len(ps) == 0
    for plan in _plans():
        ps.add(plan)
    write_plans(path, ps)
    again = read_plans(path)
    assert again.names() == ["A", "B"]
    twin2 = load_bundle(path)  # every hash still checks
    assert zipfile.ZipFile(path).read("image.nrrd") == image_before
    assert twin2.bundle_extras["plans/other-feature.json"] == b'{"kept": true}'
    assert {PLANS_ENTRY, AUDIT_ENTRY} <= set(twin2.bundle_extras)
    assert plan_set_of_twin(twin2).names() == ["A", "B"]
