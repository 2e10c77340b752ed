"""Header facts from a fully parsed pydicom Dataset: enhanced multi-frame CT/MR and the rare
transfer syntaxes (big endian, deflated) the fast header walker leaves to pydicom.

Enhanced objects keep their geometry in functional groups: PlaneOrientationSequence and
PixelMeasuresSequence (shared or per frame) and PlanePositionSequence per frame (LPS mm).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from surgiplan.io.dicom_header import UNDEFINED, FileHeader


def _first(seq_owner: Dataset | None, seq_name: str) -> Dataset | None:
    if seq_owner is None:
        return None
    seq = seq_owner.get(seq_name)
    return seq[0] if seq else None


def _functional(ds: Dataset, frame: Dataset | None, seq_name: str) -> Dataset | None:
    """The item of a functional group macro for a frame: per-frame first, else shared."""
    item = _first(frame, seq_name)
    if item is None:
        item = _first(_first(ds, "SharedFunctionalGroupsSequence"), seq_name)
    return item


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _number(value: Any, cast=float) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
        if value is None:
            return None
    try:
        out = cast(value)
    except (TypeError, ValueError):
        return None
    return out if not isinstance(out, float) or math.isfinite(out) else None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _enhanced_geometry(ds: Dataset, fields: dict[str, Any], invalid: list[str]) -> None:
    """Fill orientation, spacing, per-frame positions and rescale from functional groups."""
    frames = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    positions, orientations, rescales = [], set(), set()
    for frame in frames:
        pos = _floats(getattr(_functional(ds, frame, "PlanePositionSequence"),
                              "ImagePositionPatient", None), 3)
        positions.append(pos)
        ori = _floats(getattr(_functional(ds, frame, "PlaneOrientationSequence"),
                              "ImageOrientationPatient", None), 6)
        orientations.add(ori)
        pvt = _functional(ds, frame, "PixelValueTransformationSequence")
        if pvt is not None:
            rescales.add((_number(pvt.get("RescaleSlope")), _number(pvt.get("RescaleIntercept"))))
    if not frames or any(p is None for p in positions):
        invalid.append("enhanced multi-frame without a PlanePositionSequence for every frame")
        return
    if len(orientations) != 1 or None in orientations:
        invalid.append("enhanced multi-frame whose frames differ in (or lack) orientation")
        return
    measures = _functional(ds, frames[0], "PixelMeasuresSequence")
    spacing = _floats(getattr(measures, "PixelSpacing", None), 2)
    if spacing is not None:
        fields["pixel_spacing_mm"] = spacing
    if measures is not None and _number(measures.get("SliceThickness")) is not None:
        fields["slice_thickness_mm"] = _number(measures.get("SliceThickness"))
    if len(rescales) > 1:
        invalid.append("enhanced multi-frame with a different rescale slope/intercept per frame")
    elif rescales:
        slope, intercept = rescales.pop()
        fields["rescale_slope"] = 1.0 if slope is None else slope
        fields["rescale_intercept"] = 0.0 if intercept is None else intercept
    fields["orientation"] = orientations.pop()
    fields["frame_positions"] = tuple(positions)
    fields["position_lps"] = positions[0]


def header_from_dataset(ds: Dataset, *, path: Path, file_size: int, syntax: str) -> FileHeader:
    """FileHeader from a parsed Dataset (pixels, if loaded, are left alone)."""
    invalid: list[str] = []
    fields: dict[str, Any] = {
        "sop_class_uid": _text(ds, "SOPClassUID"),
        "sop_instance_uid": _text(ds, "SOPInstanceUID"),
        "modality": _text(ds, "Modality"),
        "series_uid": _text(ds, "SeriesInstanceUID"),
        "study_uid": _text(ds, "StudyInstanceUID"),
        "series_description": _text(ds, "SeriesDescription"),
        "study_description": _text(ds, "StudyDescription"),
        "study_date": _text(ds, "StudyDate"),
        "patient_name": _text(ds, "PatientName"),
        "patient_id": _text(ds, "PatientID"),
        "patient_birth_date": _text(ds, "PatientBirthDate"),
        "patient_sex": _text(ds, "PatientSex"),
        "photometric": _text(ds, "PhotometricInterpretation"),
        "position_lps": _floats(ds.get("ImagePositionPatient"), 3),
        "orientation": _floats(ds.get("ImageOrientationPatient"), 6),
        "pixel_spacing_mm": _floats(ds.get("PixelSpacing"), 2),
    }
    charset = ds.get("SpecificCharacterSet") or ""
    fields["specific_charset"] = charset if isinstance(charset, str) else "\\".join(charset)
    for key, keyword, cast in (
        ("series_number", "SeriesNumber", int), ("instance_number", "InstanceNumber", int),
        ("acquisition_number", "AcquisitionNumber", int), ("echo_number", "EchoNumbers", int),
        ("temporal_position", "TemporalPositionIdentifier", int),
        ("slice_thickness_mm", "SliceThickness", float),
        ("gantry_tilt_deg", "GantryDetectorTilt", float),
        ("window_center", "WindowCenter", float), ("window_width", "WindowWidth", float),
        ("rows", "Rows", int), ("columns", "Columns", int), ("frames", "NumberOfFrames", int),
        ("samples_per_pixel", "SamplesPerPixel", int), ("bits_allocated", "BitsAllocated", int),
        ("bits_stored", "BitsStored", int), ("pixel_representation", "PixelRepresentation", int),
        ("rescale_slope", "RescaleSlope", float), ("rescale_intercept", "RescaleIntercept", float),
    ):
        value = _number(ds.get(keyword), cast)
        if value is not None:
            fields[key] = value
    if "PerFrameFunctionalGroupsSequence" in ds:
        _enhanced_geometry(ds, fields, invalid)
    fields = {k: v for k, v in fields.items() if v is not None}
    pixel = ds.get("PixelData")
    has_pixels = pixel is not None
    length = None
    if has_pixels:
        length = UNDEFINED if getattr(ds["PixelData"], "is_undefined_length", False) else len(
            pixel)
    return FileHeader(path=path, file_size=file_size, transfer_syntax=syntax,
                      pixel_offset=-1 if has_pixels else None, pixel_length=length,
                      invalid=tuple(invalid), **fields)
