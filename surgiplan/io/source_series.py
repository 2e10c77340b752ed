"""The DICOM series a case was built from, kept without pixels so every export can reference it.

A :class:`SourceSeries` holds what a DICOM object derived from the case needs to point at the
original images: SOP class, study / series / frame-of-reference UIDs, each slice's SOP instance
UID and LPS position, the slice grid, and the patient / study attributes that every object of a
study must repeat (``IDENTITY_KEYWORDS``). The case bundle stores it (manifest ``source``), so a
SEG made later references the source series without being given its folder again.

De-identification (the default for bundles and exports): the reference is passed, as minimal
pydicom datasets, through the same dicognito PS3.15 Basic Profile anonymizer, with the same
installation seed (:func:`surgiplan.io.deidentify.installation_dicom_seed`), that
:func:`surgiplan.io.deidentify.deidentify_series` applies to whole files. dicognito derives each
new UID, name, ID and date from (seed, original value) alone, so a de-identified SEG references
exactly the UIDs of the de-identified copy of the source made on the same installation, and two
exports of one case share study, series and frame of reference. ``--include-identifiers``
(explicit, logged) keeps the original values; a case saved de-identified no longer has them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from surgiplan.errors import BadInputError

# Patient / General Study attributes a derived object repeats (type 1 or 2 in its IOD).
IDENTITY_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                     "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")
_METADATA_KEY = "source_series"
_log = logging.getLogger("surgiplan.identifiers")


class SourceInstance(BaseModel):
    """One slice of the source series: its SOP instance UID and ImagePositionPatient (LPS mm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sop_instance_uid: str = Field(min_length=1, max_length=64)
    position_lps: tuple[float, float, float]


class SourceSeries(BaseModel):
    """Reference to the DICOM image series of a case (no pixels; see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    deidentified: bool
    sop_class_uid: str = Field(min_length=1, max_length=64)
    modality: str = ""
    study_uid: str = Field(min_length=1, max_length=64)
    series_uid: str = Field(min_length=1, max_length=64)
    frame_of_reference_uid: str = Field(min_length=1, max_length=64)
    rows: int = Field(ge=1)
    columns: int = Field(ge=1)
    pixel_spacing_mm: tuple[float, float]  # DICOM order: row spacing, column spacing
    orientation: tuple[float, float, float, float, float, float]  # ImageOrientationPatient
    slice_thickness_mm: float | None = None
    instances: list[SourceInstance] = Field(min_length=1)
    identity: dict[str, str] = {}  # IDENTITY_KEYWORDS -> value ("" when the source has none)


# ---------------------------------------------------------------------------- from DICOM headers
def _floats3(values: Sequence[Any]) -> tuple[float, float, float]:
    """A DICOM 3-value DS (e.g. ImagePositionPatient, LPS mm) as floats."""
    return float(values[0]), float(values[1]), float(values[2])


def _floats6(values: Sequence[Any]) -> tuple[float, float, float, float, float, float]:
    """A DICOM 6-value DS (ImageOrientationPatient direction cosines) as floats."""
    return (float(values[0]), float(values[1]), float(values[2]),
            float(values[3]), float(values[4]), float(values[5]))


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value)


def from_headers(headers: Sequence[Any], *, deidentified: bool = False) -> SourceSeries | None:
    """The reference of single-frame image headers of one series, or None when they lack the
    geometry or UIDs a reference needs (no frame of reference, multi-frame, mixed grids)."""
    if not headers:
        return None
    first = headers[0]
    needed = ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
              "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient")
    if any(k not in first for k in needed) or int(first.get("NumberOfFrames", 1) or 1) > 1:
        return None
    same = ("SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns")
    if any(_text(h, k) != _text(first, k) for h in headers for k in same):
        return None
    if any("ImagePositionPatient" not in h or "SOPInstanceUID" not in h for h in headers):
        return None
    instances = {str(h.SOPInstanceUID): _floats3(h.ImagePositionPatient) for h in headers}
    normal = np.cross(*np.asarray(first.ImageOrientationPatient, float).reshape(2, 3))
    order = sorted(instances, key=lambda uid: float(np.dot(instances[uid], normal)))
    thickness = first.get("SliceThickness")
    return SourceSeries(
        deidentified=deidentified, sop_class_uid=str(first.SOPClassUID),
        modality=_text(first, "Modality"), study_uid=str(first.StudyInstanceUID),
        series_uid=str(first.SeriesInstanceUID),
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
        rows=int(first.Rows), columns=int(first.Columns),
        pixel_spacing_mm=(float(first.PixelSpacing[0]), float(first.PixelSpacing[1])),
        orientation=_floats6(first.ImageOrientationPatient),
        slice_thickness_mm=float(thickness) if thickness not in (None, "") else None,
        instances=[SourceInstance(sop_instance_uid=u, position_lps=instances[u]) for u in order],
        identity={k: _text(first, k) for k in IDENTITY_KEYWORDS},
    )


def read_headers(files: Sequence[str | Path]) -> list[Any]:
    """Headers (no pixels) of the readable DICOM files among ``files``; others are skipped."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    out = []
    for f in files:
        with contextlib.suppress(OSError, InvalidDicomError, ValueError, TypeError):
            out.append(pydicom.dcmread(f, stop_before_pixels=True))
    return out


def from_files(files: Sequence[str | Path], series_uid: str, *,
               seed: str | None = None) -> SourceSeries | None:
    """The reference of the files of ``series_uid`` among ``files`` (their original headers).

    ``series_uid`` may be the original UID or its de-identified form (a case saved
    de-identified knows only that one); "" takes all files (which must form one series).
    None when no usable file of that series is there.
    """
    headers = read_headers(files)
    if not series_uid:  # an image without a series UID: the files must be one series
        return from_headers(headers)
    wanted = [h for h in headers if _text(h, "SeriesInstanceUID") == series_uid]
    if not wanted:
        seed = seed if seed is not None else _seed()
        wanted = [h for h in headers
                  if deidentified_uid(_text(h, "SeriesInstanceUID"), seed) == series_uid]
    return from_headers(wanted)


def source_of(image: Any) -> SourceSeries | None:
    """The source reference of an ImageVolume: the stored one (bundle), else read once from its
    source files (``metadata["files"]``) and cached; None for non-DICOM images."""
    if _METADATA_KEY in image.metadata:
        cached = image.metadata[_METADATA_KEY]
        return cached if isinstance(cached, SourceSeries) else None
    files = image.metadata.get("files") or []
    if not files or not image.series_uid:
        return None
    found = from_files(files, image.series_uid)
    image.metadata[_METADATA_KEY] = found  # None too: autosaves do not re-read the headers
    return found


def attach(image: Any, source: SourceSeries | None) -> None:
    """Give an ImageVolume its source reference (as loaded from a bundle)."""
    if source is not None:
        image.metadata[_METADATA_KEY] = source


# ---------------------------------------------------------------------------- as datasets
def datasets(source: SourceSeries) -> list[Any]:
    """Minimal pydicom datasets, one per source slice, carrying the reference's UIDs, geometry
    and identity: what highdicom reads from ``source_images`` (it needs no pixels)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    out = []
    non_ascii = any(not v.isascii() for v in source.identity.values())
    for instance in source.instances:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        if non_ascii:
            ds.SpecificCharacterSet = "ISO_IR 192"
        for keyword in IDENTITY_KEYWORDS:
            setattr(ds, keyword, source.identity.get(keyword, ""))
        ds.SOPClassUID = source.sop_class_uid
        ds.SOPInstanceUID = instance.sop_instance_uid
        ds.StudyInstanceUID = source.study_uid
        ds.SeriesInstanceUID = source.series_uid
        ds.FrameOfReferenceUID = source.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.Modality = source.modality or "OT"
        ds.Rows, ds.Columns = source.rows, source.columns
        ds.PixelSpacing = list(source.pixel_spacing_mm)
        ds.ImageOrientationPatient = list(source.orientation)
        ds.ImagePositionPatient = list(instance.position_lps)
        if source.slice_thickness_mm is not None:
            ds.SliceThickness = source.slice_thickness_mm
        out.append(ds)
    return out


# ---------------------------------------------------------------------------- de-identification
def _seed() -> str:
    from surgiplan.io.deidentify import installation_dicom_seed

    return installation_dicom_seed()


def deidentified_uid(uid: str, seed: str | None = None) -> str:
    """``uid`` as dicognito's Basic Profile remaps it with ``seed`` (default: this
    installation's); "" stays "". The same UID always maps to the same new UID."""
    if not uid:
        return ""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    element = DataElement(0x0020000E, "UI", uid)  # SeriesInstanceUID: an instance UID
    _uid_anonymizer(seed if seed is not None else _seed())(Dataset(), element)
    return str(element.value)


@functools.lru_cache(maxsize=8)
def _uid_anonymizer(seed: str):
    from dicognito.randomizer import Randomizer
    from dicognito.uianonymizer import UIAnonymizer

    return UIAnonymizer(Randomizer(seed))


def deidentify(source: SourceSeries, seed: str | None = None) -> SourceSeries:
    """The reference as the PS3.15 Basic Profile (dicognito, ``seed`` default: installation)
    de-identifies its series; an already de-identified reference is returned as is.

    The common attributes go through dicognito once (on the first slice's dataset); every SOP
    instance UID is mapped with the same UID mapping, which depends on (seed, UID) only.
    """
    if source.deidentified:
        return source
    from dicognito.anonymizer import Anonymizer

    seed = seed if seed is not None else _seed()
    first = datasets(source.model_copy(update={"instances": source.instances[:1]}))
    Anonymizer(seed=seed).anonymize(first[0])
    out = from_headers(first, deidentified=True)
    if out is None:  # cannot happen: the datasets carry every attribute from_headers needs
        raise RuntimeError("de-identifying the source reference lost its geometry")
    instances = [SourceInstance(sop_instance_uid=deidentified_uid(i.sop_instance_uid, seed),
                                position_lps=i.position_lps) for i in source.instances]
    return out.model_copy(update={"instances": instances})


def replace_identifiers(text: str, source: SourceSeries | None,
                        extra: Sequence[str] = (), seed: str | None = None) -> str:
    """``text`` with the source's original UIDs replaced by their de-identified forms and its
    identity values and ``extra`` strings (e.g. a series description) by ``[removed]``."""
    if source is not None and not source.deidentified:
        for uid in (source.study_uid, source.series_uid, source.frame_of_reference_uid):
            text = text.replace(uid, deidentified_uid(uid, seed))
        extra = [*extra, *source.identity.values()]
    for value in sorted({v.strip() for v in extra if len(v.strip()) >= 3}, key=len,
                        reverse=True):
        text = text.replace(value, "[removed]")
    return text


def bundle_fields(twin: Any, *, include_identifiers: bool) -> dict[str, Any]:
    """What the case bundle stores of the source: ``{"image": ..., "provenance": ...}``
    overrides of its manifest sections and ``"source"`` (the reference as JSON, or None).

    Default: an image straight from DICOM (or from a bundle saved with identifiers) gets its
    SeriesInstanceUID mapped as the Basic Profile maps it, its SeriesDescription removed, the
    same done to provenance UIDs and warning texts, and a de-identified reference. An already
    de-identified case is left as it is (mapping twice would change the UIDs at every save).
    """
    image = twin.image
    source = source_of(image)
    if include_identifiers:
        return {"image": {}, "provenance": {},
                "source": None if source is None else source.model_dump(mode="json")}
    original = (not source.deidentified) if source is not None else bool(
        image.metadata.get("patient") or image.metadata.get("study"))
    out: dict[str, Any] = {"image": {}, "provenance": {}, "source": None}
    if source is not None:
        out["source"] = deidentify(source).model_dump(mode="json")
    if not original:
        return out
    seed = _seed()
    patient = image.metadata.get("patient") or {}
    study = image.metadata.get("study") or {}
    extra = [image.description, *(str(v) for v in patient.values() if v),
             str(study.get("description") or "")]
    provenance = twin.provenance.to_json()
    out["image"] = {"series_uid": deidentified_uid(image.series_uid, seed), "description": ""}
    out["provenance"] = {
        "source_series_uids": [deidentified_uid(u, seed) for u in provenance.get(
            "source_series_uids", [])],
        **{key: [replace_identifiers(t, source, extra, seed) for t in provenance.get(key, [])]
           for key in ("import_warnings", "notes")},
    }
    return out


def log_identified_export(what: str, path: str | Path) -> Path | None:
    """Record an export that keeps patient identifiers (the explicit opt-in) in the
    installation's ``identifiers.log`` (owner-only) and the ``surgiplan.identifiers`` logger."""
    import platformdirs

    line = (f"{datetime.now(UTC).isoformat(timespec='seconds')} user={_user()} "
            f"{what} WITH patient identifiers -> {Path(path).resolve()}\n")
    _log.warning(line.strip())
    folder = Path(platformdirs.user_log_dir("surgiplan", appauthor=False))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "identifiers.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
        return log
    except OSError as exc:
        raise BadInputError(f"cannot record the identified export in the log ({exc.strerror})",
                            path=folder, action="Make the SurgiPlan log folder writable, or "
                            "export without --include-identifiers") from exc


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
