"""A small CT series whose every identifying attribute holds a canary string, plus its labels.

``canary_case(folder)`` writes ``folder/dicom`` (a 40x40x16 CT of a body with a "liver" ball and
a "tumour" ball inside it, generated with ``write_series``), with the PS3.15 identifying
attributes in ``CANARIES`` set to distinctive values and a private tag holding the patient ID,
and ``folder/labels.nii.gz`` + ``labels.json`` (liver organ, tumour target). Any output byte
holding ``canary_hits`` is a leak.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from surgiplan.io.dicom_write import write_series
from surgiplan.io.labelmaps import LABELS_SCHEMA, write_label_map
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume

GEOMETRY = ImageGeometry((40, 40, 16), (1.5, 1.5, 2.5), (-30.0, -30.0, -20.0))
# 29 identifying attributes (PS3.15 Table E.1-1 actions D/Z/X) -> canary values
CANARIES = {
    "PatientName": "CNRYSMITH^CNRYJOHN",
    "PatientID": "CNRY-MRN-4471",
    "PatientBirthDate": "19230405",
    "OtherPatientIDs": "CNRY-OTHERID-82",
    "OtherPatientNames": "CNRYALIAS^ONE",
    "PatientBirthName": "CNRYBIRTH^NAME",
    "PatientMotherBirthName": "CNRYMOTHER^NAME",
    "PatientAddress": "CNRY 12 Canary Street",
    "PatientTelephoneNumbers": "CNRY-555-0199",
    "PatientComments": "CNRY patient comment",
    "AdditionalPatientHistory": "CNRY history of falls",
    "Occupation": "CNRY-OCCUPATION",
    "MedicalRecordLocator": "CNRY-LOCATOR",
    "InstitutionName": "CNRY General Hospital",
    "InstitutionAddress": "CNRY 1 Hospital Road",
    "InstitutionalDepartmentName": "CNRY Radiology",
    "ReferringPhysicianName": "CNRYREFERRER^DOC",
    "PerformingPhysicianName": "CNRYPERFORMER^DOC",
    "OperatorsName": "CNRYOPERATOR^TECH",
    "NameOfPhysiciansReadingStudy": "CNRYREADER^DOC",
    "RequestingPhysician": "CNRYREQUESTER^DOC",
    "AccessionNumber": "CNRYACC7781",
    "StudyID": "CNRYSTUDY9",
    "StudyDescription": "CNRY study description",
    "SeriesDescription": "CNRY series description",
    "ProtocolName": "CNRY protocol",
    "DeviceSerialNumber": "CNRYSERIAL-0042",
    "StationName": "CNRYSTATION",
    "ImageComments": "CNRY image comment",
}
CANARY_UIDS = {  # the original UIDs must not leave either (they can re-link the patient)
    "StudyInstanceUID": "1.2.826.0.1.3680043.9.7777.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.9.7777.2",
    "FrameOfReferenceUID": "1.2.826.0.1.3680043.9.7777.3",
}
SOP_UID_PREFIX = "1.2.826.0.1.3680043.9.7777.4."


def _volume() -> tuple[ImageVolume, np.ndarray]:
    k, j, i = np.indices(GEOMETRY.shape_zyx)
    lps = GEOMETRY.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(
        (*GEOMETRY.shape_zyx, 3))
    r_liver = np.linalg.norm(lps - (0.0, 0.0, 0.0), axis=-1)
    r_tumour = np.linalg.norm(lps - (4.0, 2.0, 0.0), axis=-1)
    hu = np.full(GEOMETRY.shape_zyx, -1000.0)
    hu[np.linalg.norm(lps[..., :2], axis=-1) < 28] = 20.0
    hu[r_liver < 16] = 60.0
    hu[r_tumour < 5] = 30.0
    labels = np.zeros(GEOMETRY.shape_zyx, np.uint8)
    labels[r_liver < 16] = 1
    labels[r_tumour < 5] = 2
    return ImageVolume(hu.astype(np.int16), GEOMETRY, modality="CT"), labels


def canary_case(folder: Path) -> dict[str, Path]:
    """Write the canary series and its label map; returns their paths."""
    volume, labels = _volume()
    dicom = folder / "dicom"
    files = write_series(volume, dicom, series_uid=CANARY_UIDS["SeriesInstanceUID"],
                         study_uid=CANARY_UIDS["StudyInstanceUID"],
                         frame_of_reference_uid=CANARY_UIDS["FrameOfReferenceUID"],
                         sop_instance_uids=[f"{SOP_UID_PREFIX}{k + 1}"
                                            for k in range(GEOMETRY.size[2])])
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in CANARIES.items():
            setattr(ds, keyword, value)
        ds.private_block(0x0011, "CNRY HOSPITAL", create=True).add_new(0x01, "LO",
                                                                       CANARIES["PatientID"])
        ds.save_as(path)
    label_map = write_label_map(labels, GEOMETRY, folder / "labels.nii.gz")
    names = {"schema": LABELS_SCHEMA, "labels": [
        {"value": 1, "name": "liver", "role": "organ"},
        {"value": 2, "name": "tumour", "role": "target", "margin_mm": 5.0}]}
    (folder / "labels.json").write_text(json.dumps(names))
    return {"dicom": dicom, "labels": label_map, "names": folder / "labels.json"}


def canary_values() -> list[bytes]:
    """Every canary as bytes (text values and original UIDs) plus the common marker."""
    values = [v.encode() for v in CANARIES.values()] + [u.encode() for u in CANARY_UIDS.values()]
    return [*values, SOP_UID_PREFIX.encode(), b"CNRY"]


def readable_bytes(path: Path) -> bytes:
    """The file's bytes plus, for ZIP / gzip / NIfTI containers, their inflated content."""
    raw = path.read_bytes()
    out = [raw]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            out += [archive.read(n) for n in archive.namelist()]
    if raw[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(raw))
    if path.name.endswith((".nii", ".nii.gz")):
        out.append(nib.load(str(path)).header.binaryblock)
    return b"".join(out)


def canary_hits(path: Path) -> list[str]:
    """The canaries found in ``path`` (any case), as text."""
    data = readable_bytes(path).lower()
    return [v.decode() for v in canary_values() if v.lower() in data]
