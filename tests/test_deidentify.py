"""Pseudonymous patient references and the PS3.15 Basic Profile DICOM export."""

from __future__ import annotations

import re
import stat

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.deidentify import (
    deidentify_series,
    installation_secret_path,
    patient_pseudonym,
)
from tests.conftest import real_scan

IDENTITY = {"PatientName": "DOE^JANE^Q", "PatientID": "MRN-5550172",
            "PatientBirthDate": "19620315", "OtherPatientIDs": "ALT-99887766",
            "InstitutionName": "Saint Example Hospital"}


@pytest.fixture(autouse=True)
def private_data_home(tmp_path, monkeypatch):
    """Keep the pseudonym secret of these tests out of the real user-data folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


def test_pseudonym_is_stable_per_installation_and_reveals_nothing(tmp_path):
    ref = patient_pseudonym("MRN-5550172")
    assert re.fullmatch(r"P-[A-Z2-7]{10}", ref)
    assert patient_pseudonym("MRN-5550172") == ref  # same patient, same installation
    assert patient_pseudonym(" MRN-5550172 ") == ref
    assert patient_pseudonym("MRN-5550173") != ref
    assert "5550172" not in ref
    key_file = installation_secret_path()
    assert key_file.is_relative_to(tmp_path / "data-home")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    assert patient_pseudonym("MRN-5550172", secret=b"k" * 32) != ref  # other installation
    assert patient_pseudonym("") == "" and patient_pseudonym("   ") == ""


def test_damaged_secret_is_reported():
    key_file = installation_secret_path()
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(b"short")
    with pytest.raises(BadInputError, match="pseudonym secret has 5 bytes"):
        patient_pseudonym("X1")


@pytest.fixture
def identified_series(tmp_path):
    """The real 3-slice CT with identifiers and a private tag added (copies in tmp_path)."""
    source = real_scan("liver-ct-3slice-seg") / "dicom"
    folder = tmp_path / "identified"
    folder.mkdir()
    paths = []
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for key, value in IDENTITY.items():
            setattr(ds, key, value)
        ds.private_block(0x0011, "ACME HOSPITAL", create=True).add_new(0x01, "LO", "MRN-5550172")
        ds.save_as(folder / path.name)
        paths.append(folder / path.name)
    return paths


def test_export_follows_the_basic_profile(identified_series, tmp_path):
    out = deidentify_series(identified_series, tmp_path / "out", seed="test")
    assert [p.name for p in out] == ["IM00001.dcm", "IM00002.dcm", "IM00003.dcm"]
    for path in out:
        raw = path.read_bytes()
        for value in IDENTITY.values():
            assert value.encode() not in raw, value
        assert b"5550172" not in raw
    before = [pydicom.dcmread(p) for p in identified_series]
    after = [pydicom.dcmread(p) for p in out]
    for ds in after:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
        assert not any(elem.tag.is_private for elem in ds)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # UIDs are remapped, consistently: still one study, one series, one frame of reference.
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({ds[key].value for ds in after}) == 1
        assert after[0][key].value != before[0][key].value
    assert len({ds.SOPInstanceUID for ds in after}) == 3
    assert not {ds.SOPInstanceUID for ds in after} & {ds.SOPInstanceUID for ds in before}


def test_exported_series_loads_as_one_volume_with_the_same_geometry(identified_series, tmp_path):
    from surgiplan.io.dicom_load import load_dicom

    out_dir = tmp_path / "out"
    deidentify_series(identified_series, out_dir)
    original = load_dicom(identified_series[0].parent)
    exported = load_dicom(out_dir)
    assert exported.geometry == original.geometry
    assert np.array_equal(exported.array, original.array)
    assert exported.series_uid != original.series_uid
    assert exported.metadata["patient"]["id"] != IDENTITY["PatientID"]


def test_refuses_burned_in_annotation_and_a_used_folder(identified_series, tmp_path):
    ds = pydicom.dcmread(identified_series[0])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(identified_series[0])
    with pytest.raises(BadInputError, match="burned-in annotation"):
        deidentify_series(identified_series, tmp_path / "out1")
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.dcm").write_bytes(b"x")
    with pytest.raises(BadInputError, match="output folder is not empty"):
        deidentify_series(identified_series[1:], used)
    (tmp_path / "notdicom.txt").write_text("hello")
    with pytest.raises(BadInputError, match="not a readable DICOM file"):
        deidentify_series([tmp_path / "notdicom.txt"], tmp_path / "out2")
