"""PHI canaries: a CT whose 29 identifying attributes (and UIDs) hold canary strings is built into
a case and exported in every format with the defaults; no output byte may hold a canary, and
every file written is owner-only (0600). The same check fails with --include-identifiers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from surgiplan.cli.main import main
from tests.dicom_canary import CANARIES, canary_case, canary_hits


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, object]:
    """The canary case built and exported in every format by default (CLI, as a user would)."""
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.store import read_plans, write_plans
    from surgiplan.simulation.inputs import ResectionInput

    root = tmp_path_factory.mktemp("canary")
    inputs = canary_case(root / "in")
    out = root / "out"
    case = out / "case.surgiplan"
    (out / "n").mkdir(parents=True)
    assert main(["twin", "build", str(inputs["dicom"]), "--out", str(case), "--labels",
                 str(inputs["labels"]), "--label-names", str(inputs["names"])]) == 0
    plan_set = read_plans(case)
    plan_set.add(Plan(name="R", interventions=[Intervention.from_input(
        "Resection", ResectionInput(organ_structure="liver", target_structure="tumour",
                                    margin_mm=3.0))]))
    write_plans(case, plan_set)
    targets = {"seg.nrrd": out / "s.seg.nrrd", "nifti": out / "l.nii.gz",
               "nrrd": out / "n" / "l.nrrd", "dicom-seg": out / "seg.dcm",
               "dicom": out / "image", "stl": out / "stl", "obj": out / "obj",
               "ply": out / "ply", "vtp": out / "vtp"}
    for fmt, target in targets.items():
        assert main(["twin", "export", str(case), "--format", fmt, "--out", str(target)]) == 0
    assert main(["twin", "export", str(case), "--format", "dicom", "--out",
                 str(out / "deidentified"), "--source-dicom", str(inputs["dicom"])]) == 0
    assert main(["plans", str(case), "--export-seg", str(out / "plan-seg.dcm"),
                 "--plan", "R"]) == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {"root": root, "inputs": inputs, "case": case, "files": files}


def test_the_canaries_are_in_the_input(exported):
    """The check can fail: every canary is in the source files."""
    source = b"".join(p.read_bytes() for p in exported["inputs"]["dicom"].iterdir()).lower()
    assert len(CANARIES) == 29
    for value in CANARIES.values():
        assert value.lower().encode() in source, value


def test_no_canary_in_any_default_export(exported):
    files = exported["files"]
    kinds = {p.suffix for p in files}
    assert {".surgiplan", ".dcm", ".nrrd", ".gz", ".json", ".stl", ".obj", ".ply",
            ".vtp"} <= kinds, kinds
    assert len([p for p in files if p.parent.name == "image"]) == 16  # the DICOM image series
    assert len([p for p in files if p.parent.name == "deidentified"]) == 16
    leaks = {str(p.relative_to(exported["root"])): hits for p in files if (hits := canary_hits(p))}
    assert leaks == {}


def test_every_export_is_owner_only(exported):
    modes = {str(p.relative_to(exported["root"])): oct(stat.S_IMODE(p.stat().st_mode))
             for p in exported["files"]}
    assert set(modes.values()) == {"0o600"}, modes


def test_the_report_content_holds_no_canary(exported):
    """The PDF report's text (built without Qt from the saved case) is canary-free too."""
    from surgiplan.io.bundle import load_bundle
    from surgiplan.plans.store import read_plans
    from surgiplan.ui.report.content import build_content

    case = exported["case"]
    content = build_content(load_bundle(case), read_plans(case), "R", case_path=case)
    text = repr(content).lower()
    assert "cnry" not in text and "19230405" not in text


def test_with_identifiers_the_same_check_finds_them(exported, capsys):
    """Opt-in (logged): the identified SEG carries the patient's identity and original UIDs."""
    root, inputs = exported["root"], exported["inputs"]
    case = root / "named.surgiplan"
    assert main(["twin", "build", str(inputs["dicom"]), "--out", str(case), "--labels",
                 str(inputs["labels"]), "--include-identifiers"]) == 0
    seg = root / "named-seg.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(seg),
                 "--include-identifiers"]) == 0
    assert "identifiers.log" in capsys.readouterr().err
    hits = canary_hits(seg)
    assert CANARIES["PatientName"] in hits and CANARIES["AccessionNumber"] in hits
    assert "1.2.826.0.1.3680043.9.7777.1" in hits  # the original StudyInstanceUID
    assert CANARIES["InstitutionName"] not in hits  # never copied: not needed in a SEG
    log = Path(os.environ["XDG_STATE_HOME"]) / "surgiplan" / "log" / "identifiers.log"
    assert f"DICOM SEG WITH patient identifiers -> {seg.resolve()}" in log.read_text()
    assert f"case bundle WITH patient identifiers -> {case.resolve()}" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
