"""PACS connectivity against a real Orthanc on 127.0.0.1 (tests/net/conftest.py): echo, find,
retrieve by C-GET / C-MOVE / WADO-RS into the local database, and results sent back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from surgiplan.cli.main import main
from tests.net.conftest import SMALL_CT, needs_dicomweb


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _series(tree: list[dict], patient_id: str) -> tuple[str, str, int]:
    patient = next(p for p in tree if p["patient_id"] == patient_id)
    study = patient["studies"][0]
    series = study["series"][0]
    return study["study_uid"], series["series_uid"], series["instances"]


def _find(capsys, *extra) -> list[dict]:
    code, out, err = _run(capsys, "pacs", "find", "--json", *extra)
    assert code == 0, err
    return json.loads(out)["patients"]


def test_echo_by_dimse_and_dicomweb(pacs, orthanc, capsys):
    code, out, err = _run(capsys, "pacs", "echo", "--json")
    assert code == 0, err
    assert json.loads(out)["service"] == "C-ECHO"
    needs_dicomweb(orthanc)
    code, out, err = _run(capsys, "pacs", "echo", "--protocol", "dicomweb", "--json")
    assert code == 0, err
    assert json.loads(out)["service"] == "QIDO-RS"


def test_find_gives_the_same_tree_by_dimse_and_dicomweb(pacs, orthanc, capsys):
    tree = _find(capsys)
    assert {p["patient_id"] for p in tree} >= {"99000"}
    study_uid, _, count = _series(tree, "99000")
    assert count == 3
    assert _find(capsys, "--patient-id", "99000", "--modality", "CT")[0]["patient_id"] == "99000"
    assert _find(capsys, "--accession", "03086212")[0]["studies"][0]["study_uid"] == study_uid
    assert _find(capsys, "--date-from", "20030101", "--date-to", "20031231", "--patient-id",
                 "99000")[0]["patient_id"] == "99000"
    assert _find(capsys, "--date-from", "20100101", "--patient-id", "99000") == []
    assert _find(capsys, "--patient-id", "99000", "--modality", "MR") == []
    needs_dicomweb(orthanc)
    assert _find(capsys, "--protocol", "dicomweb") == tree


def test_retrieve_by_get_move_and_wado_is_checked_and_idempotent(pacs, orthanc, capsys,
                                                                 tmp_path):
    db = tmp_path / "db"
    tree = _find(capsys)
    small = _series(tree, "99000")
    code, out, err = _run(capsys, "pacs", "get", small[0], small[1], "--db", str(db), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["added"] == 3 and first["method"] == "get"
    code, out, err = _run(capsys, "pacs", "get", small[0], small[1], "--method", "move",
                          "--db", str(db), "--json")
    assert code == 0, err
    assert (json.loads(out)["added"], json.loads(out)["already_in_database"]) == (0, 3)
    tilt = next(_series(tree, p["patient_id"]) for p in tree if p["patient_id"] != "99000")
    method = "wado" if orthanc.dicomweb else "move"
    code, out, err = _run(capsys, "pacs", "get", tilt[0], tilt[1], "--method", method,
                          "--db", str(db), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["added"] == 28
    assert any("tilt" in w.lower() for w in got["warnings"][tilt[1]])  # importer's checks
    code, out, _ = _run(capsys, "db", "list", "--db", str(db), "--json")
    listed = {s["series_uid"]: s for p in json.loads(out)["patients"] for st in p["studies"]
              for s in st["series"]}
    assert listed[small[1]]["instances"] == 3 and listed[tilt[1]]["instances"] == 28
    assert not [p for p in db.iterdir() if p.name.startswith("incoming-")]


def _study_series(orthanc, study_uid: str) -> dict[str, list[dict]]:
    """Modality -> instances' main tags of the Orthanc study with ``study_uid``."""
    found = orthanc.rest("/tools/lookup", data=study_uid.encode(), method="POST")
    study = next(f["ID"] for f in found if f["Type"] == "Study")
    out: dict[str, list[dict]] = {}
    for series in orthanc.rest(f"/studies/{study}/series"):
        modality = series["MainDicomTags"].get("Modality", "")
        out.setdefault(modality, []).extend(orthanc.rest(f"/series/{series['ID']}/instances"))
    return out


def _pdf(path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.text(0.1, 0.5, "SurgiPlan plan report")
    fig.savefig(path, format="pdf")
    return path


def _build_case(capsys, tmp_path, db, small) -> Path:
    from tests.conftest import real_scan

    code, out, err = _run(capsys, "pacs", "get", small[0], small[1], "--db", str(db), "--json")
    assert code == 0, err
    folder = json.loads(out)["folder"]
    case = tmp_path / "liver.surgiplan"
    labels = real_scan(SMALL_CT) / "labels" / "liver_seg.nrrd"
    code, _, err = _run(capsys, "twin", "build", folder, "--labels", str(labels), "--out",
                        str(case), "--include-identifiers")
    assert code == 0, err
    return case


def test_seg_and_pdf_are_filed_in_the_source_study(pacs, orthanc, capsys, tmp_path):
    small = _series(_find(capsys), "99000")
    case = _build_case(capsys, tmp_path, tmp_path / "db", small)
    code, _, err = _run(capsys, "pacs", "send", str(case), "--seg")
    assert code == 2 and "--include-identifiers" in err  # opt-in required, one line
    code, out, err = _run(capsys, "pacs", "send", str(case), "--seg", "--pdf",
                          str(_pdf(tmp_path / "r.pdf")), "--include-identifiers", "--json")
    assert code == 0, err
    sent = {s["kind"]: s for s in json.loads(out)["sent"]}
    assert {s["study_uid"] for s in sent.values()} == {small[0]}
    landed = _study_series(orthanc, small[0])
    assert sent["seg"]["sop_instance_uid"] in {i["MainDicomTags"]["SOPInstanceUID"]
                                               for i in landed["SEG"]}
    assert sent["pdf"]["sop_instance_uid"] in {i["MainDicomTags"]["SOPInstanceUID"]
                                               for i in landed["DOC"]}
    seg_id = next(i["ID"] for i in landed["SEG"]
                  if i["MainDicomTags"]["SOPInstanceUID"] == sent["seg"]["sop_instance_uid"])
    tags = orthanc.rest(f"/instances/{seg_id}/simplified-tags")
    assert tags["PatientID"] == "99000"
    assert tags["ReferencedSeriesSequence"][0]["SeriesInstanceUID"] == small[1]
    import platformdirs

    log = Path(platformdirs.user_log_dir("surgiplan", appauthor=False)) / "identifiers.log"
    assert "sent to PACS 'orthanc'" in log.read_text()


def test_stow_rs_files_the_pdf_in_the_source_study(pacs, orthanc, capsys, tmp_path):
    needs_dicomweb(orthanc)
    small = _series(_find(capsys), "99000")
    case = _build_case(capsys, tmp_path, tmp_path / "db", small)
    code, out, err = _run(capsys, "pacs", "send", str(case), "--pdf",
                          str(_pdf(tmp_path / "r.pdf")), "--include-identifiers",
                          "--protocol", "dicomweb", "--json")
    assert code == 0, err
    uid = json.loads(out)["sent"][0]["sop_instance_uid"]
    doc = next(i for i in _study_series(orthanc, small[0])["DOC"]
               if i["MainDicomTags"]["SOPInstanceUID"] == uid)
    assert orthanc.raw(f"/instances/{doc['ID']}/pdf") == (tmp_path / "r.pdf").read_bytes()


def _add_trajectory_plan(case: Path) -> None:
    """A trajectory plan into the liver (the report needs a plan): from 80 mm anterior-right
    of the liver's centre to that centre, LPS mm."""
    import numpy as np

    from surgiplan.io.bundle import load_bundle
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.store import read_plans, write_plans
    from surgiplan.simulation import TrajectoryInput

    twin = load_bundle(case)
    zyx = np.argwhere(twin.segmentation.mask("liver_seg")).mean(0)
    target = twin.geometry.index_to_lps(zyx[::-1][None])[0]
    entry = target + np.array([-80.0, -20.0, 0.0])
    plans = read_plans(case)
    plans.add(Plan(name="liver biopsy", interventions=[Intervention.from_input(
        "needle", TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                  diameter_mm=2.0))]))
    write_plans(case, plans)


def test_the_plan_report_pdf_goes_back(pacs, orthanc, capsys, tmp_path):
    if not os.environ.get("DISPLAY"):
        pytest.skip("no display: run under xvfb-run to render the report's views")
    small = _series(_find(capsys), "99000")
    case = _build_case(capsys, tmp_path, tmp_path / "db", small)
    _add_trajectory_plan(case)
    pdf = tmp_path / "report.pdf"
    run = subprocess.run([sys.executable, "-m", "surgiplan", "report", str(case),
                          "--include-identifiers", "--out", str(pdf)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    code, out, err = _run(capsys, "pacs", "send", str(case), "--pdf", str(pdf),
                          "--include-identifiers", "--json")
    assert code == 0, err
    uid = json.loads(out)["sent"][0]["sop_instance_uid"]
    doc = next(i for i in _study_series(orthanc, small[0])["DOC"]
               if i["MainDicomTags"]["SOPInstanceUID"] == uid)
    assert orthanc.raw(f"/instances/{doc['ID']}/pdf") == pdf.read_bytes()
