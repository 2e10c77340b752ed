"""A case remembers its source DICOM series: every SEG of it (twin or plan) references that
series without being given the folder again - with the de-identified UIDs by default (the same
ones the de-identified copy of the source gets), with the original UIDs on explicit request."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pydicom
import pytest

from surgiplan.cli.main import main
from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.io.source_series import deidentified_uid
from tests.conftest import real_scan
from tests.dicom_canary import CANARY_UIDS, SOP_UID_PREFIX, canary_case


def _refs(path: Path) -> dict:
    ds = pydicom.dcmread(path)
    series = ds.ReferencedSeriesSequence[0]
    return {"study": ds.StudyInstanceUID, "frame": ds.FrameOfReferenceUID,
            "series": series.SeriesInstanceUID,
            "sops": sorted(i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence),
            "patient": str(ds.PatientID)}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    """The canary CT built twice: default (de-identified) and with identifiers; with a plan."""
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.store import read_plans, write_plans
    from surgiplan.simulation.inputs import ResectionInput

    root = tmp_path_factory.mktemp("refs")
    inputs = canary_case(root / "in")
    out = {"root": root, **inputs}
    for name, extra in (("plain", []), ("named", ["--include-identifiers"])):
        case = root / f"{name}.surgiplan"
        assert main(["twin", "build", str(inputs["dicom"]), "--out", str(case), "--labels",
                     str(inputs["labels"]), "--label-names", str(inputs["names"]), *extra]) == 0
        plans = read_plans(case)
        plans.add(Plan(name="R", interventions=[Intervention.from_input(
            "Resection", ResectionInput(organ_structure="liver", target_structure="tumour",
                                        margin_mm=3.0))]))
        write_plans(case, plans)
        out[name] = case
    return out


def test_default_segs_reference_the_deidentified_source(cases):
    root, case = cases["root"], cases["plain"]
    twin_seg, plan_a, plan_b = root / "twin.dcm", root / "plan-a.dcm", root / "plan-b.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out",
                 str(twin_seg)]) == 0
    for path in (plan_a, plan_b):
        assert main(["plans", str(case), "--export-seg", str(path), "--plan", "R"]) == 0
    assert not any(p.name.endswith("_image") for p in root.iterdir())  # no image copies
    copy = root / "copy"
    assert main(["twin", "export", str(case), "--format", "dicom", "--out", str(copy),
                 "--source-dicom", str(cases["dicom"])]) == 0
    source = [pydicom.dcmread(p) for p in sorted(copy.iterdir())]
    expected = {"study": source[0].StudyInstanceUID, "frame": source[0].FrameOfReferenceUID,
                "series": source[0].SeriesInstanceUID,
                "sops": sorted(ds.SOPInstanceUID for ds in source),
                "patient": str(source[0].PatientID)}
    assert expected["series"] == deidentified_uid(CANARY_UIDS["SeriesInstanceUID"])
    twin_refs = _refs(twin_seg)
    assert twin_refs == expected
    # plan SEGs reference the same series (a resection zone covers only some slices)
    for path in (plan_a, plan_b):
        refs = _refs(path)
        assert {k: refs[k] for k in ("study", "frame", "series", "patient")} == {
            k: expected[k] for k in ("study", "frame", "series", "patient")}
        assert set(refs["sops"]) <= set(expected["sops"])
    assert pydicom.dcmread(plan_a).SeriesInstanceUID != pydicom.dcmread(plan_b).SeriesInstanceUID
    # the de-identified copy given as the source folder is not mapped a second time
    from_copy = root / "from-copy.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(from_copy),
                 "--source-dicom", str(copy)]) == 0
    assert _refs(from_copy) == expected
    assert main(["twin", "export", str(case), "--format", "dicom", "--out", str(root / "twice"),
                 "--source-dicom", str(copy)]) == 2


def test_with_identifiers_segs_reference_the_original_source(cases):
    root = cases["root"]
    seg, plan = root / "named-twin.dcm", root / "named-plan.dcm"
    assert main(["twin", "export", str(cases["named"]), "--format", "dicom-seg", "--out",
                 str(seg), "--include-identifiers"]) == 0
    assert main(["plans", str(cases["named"]), "--export-seg", str(plan), "--plan", "R",
                 "--include-identifiers"]) == 0
    originals = [pydicom.dcmread(p) for p in sorted(cases["dicom"].iterdir())]
    for path in (seg, plan):
        refs = _refs(path)
        assert refs["study"] == CANARY_UIDS["StudyInstanceUID"]
        assert refs["frame"] == CANARY_UIDS["FrameOfReferenceUID"]
        assert refs["series"] == CANARY_UIDS["SeriesInstanceUID"]
        assert refs["patient"] == originals[0].PatientID
        assert all(uid.startswith(SOP_UID_PREFIX) for uid in refs["sops"])
    assert _refs(seg)["sops"] == sorted(ds.SOPInstanceUID for ds in originals)
    # the same case exported by default is de-identified all the same
    plain = root / "named-default.dcm"
    assert main(["twin", "export", str(cases["named"]), "--format", "dicom-seg", "--out",
                 str(plain)]) == 0
    assert _refs(plain)["series"] == deidentified_uid(CANARY_UIDS["SeriesInstanceUID"])


def test_identifiers_cannot_come_back_from_a_deidentified_case(cases, capsys):
    capsys.readouterr()
    out = cases["root"] / "never.dcm"
    assert main(["twin", "export", str(cases["plain"]), "--format", "dicom-seg", "--out",
                 str(out), "--include-identifiers"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "saved de-identified" in err, err
    assert not out.exists()


def test_bundle_keeps_the_reference_without_original_uids(cases, tmp_path):
    with zipfile.ZipFile(cases["plain"]) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    source = manifest["source"]
    assert source["deidentified"] is True and len(source["instances"]) == 16
    assert source["series_uid"] == manifest["image"]["series_uid"]
    assert "7777" not in json.dumps(manifest)
    # re-saving a de-identified case does not map its UIDs a second time
    twin = load_bundle(cases["plain"])
    again = load_bundle(save_bundle(twin, tmp_path / "again.surgiplan"))
    assert again.image.series_uid == twin.image.series_uid
    with zipfile.ZipFile(tmp_path / "again.surgiplan") as archive:
        assert json.loads(archive.read("manifest.json"))["source"] == source
    # with identifiers the bundle keeps the originals
    with zipfile.ZipFile(cases["named"]) as archive:
        named = json.loads(archive.read("manifest.json"))
    assert named["source"]["series_uid"] == CANARY_UIDS["SeriesInstanceUID"]
    assert named["source"]["deidentified"] is False


def test_a_nifti_case_keeps_one_study_across_exports(cases, tmp_path):
    import numpy as np

    from surgiplan.io.labelmaps import nifti_bytes
    from tests.dicom_canary import GEOMETRY

    image = tmp_path / "image.nii.gz"
    image.write_bytes(nifti_bytes(np.zeros(GEOMETRY.shape_zyx, np.int16), GEOMETRY,
                                  gzipped=True))
    case = tmp_path / "nifti.surgiplan"
    assert main(["twin", "build", str(image), "--out", str(case), "--labels",
                 str(cases["labels"])]) == 0
    first, second = tmp_path / "a" / "seg.dcm", tmp_path / "b" / "seg.dcm"
    for path in (first, second):
        assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out",
                     str(path)]) == 0
    assert _refs(first) == _refs(second)
    written = pydicom.dcmread(sorted((tmp_path / "a" / "seg_image").iterdir())[0])
    assert written.SeriesInstanceUID == _refs(first)["series"]


def test_gantry_tilt_ct_without_birth_date_or_sex_exports(tmp_path):
    """Issue 12: the tilted real CT lacks PatientBirthDate/PatientSex; the export crashed."""
    scan = real_scan("head-ct-gantry-tilt")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(scan.iterdir())]
    assert "PatientBirthDate" not in headers[0] or "PatientSex" not in headers[0]
    case = tmp_path / "tilt.surgiplan"
    assert main(["twin", "build", str(scan), "--out", str(case), "--preset",
                 "ct-bone-skin-vessels"]) == 0
    with_folder, without = tmp_path / "with.dcm", tmp_path / "without.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out",
                 str(with_folder), "--source-dicom", str(scan)]) == 0
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out",
                 str(without)]) == 0
    refs = _refs(without)
    assert refs == _refs(with_folder)
    assert refs["series"] == deidentified_uid(str(headers[0].SeriesInstanceUID))
    assert refs["frame"] == deidentified_uid(str(headers[0].FrameOfReferenceUID))
    assert refs["sops"] == sorted(deidentified_uid(str(h.SOPInstanceUID)) for h in headers)
