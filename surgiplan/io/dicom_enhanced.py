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


def _frame_attrs(ds: Dataset, frame: Dataset) -> tuple[tuple[str, Any], ...]:
    """The attributes that can tell volumes apart in one enhanced frame (image type, echo,
    b-value, time), as (name, value) pairs; absent attributes are left out."""
    out: list[tuple[str, Any]] = []
    frame_type = _functional(ds, frame, "MRImageFrameTypeSequence") or _functional(
        ds, frame, "CTImageFrameTypeSequence")
    if frame_type is not None:
        complex_part = _text(frame_type, "ComplexImageComponent")
        values = list(frame_type.get("FrameType") or [])[2:]
        label = complex_part or "\\".join(str(v) for v in values)
        if label:
            out.append(("image type", label.upper()))
    echo = _functional(ds, frame, "MREchoSequence")
    if echo is not None and _number(echo.get("EffectiveEchoTime")) is not None:
        out.append(("echo time ms", _number(echo.get("EffectiveEchoTime"))))
    diffusion = _functional(ds, frame, "MRDiffusionSequence")
    if diffusion is not None and _number(diffusion.get("DiffusionBValue")) is not None:
        out.append(("b-value", _number(diffusion.get("DiffusionBValue"))))
    if diffusion is not None:
        direction = _first(diffusion, "DiffusionGradientDirectionSequence")
        vector = _floats(getattr(direction, "DiffusionGradientOrientation", None), 3)
        if vector is not None:
            out.append(("direction", ",".join(f"{v:.3f}" for v in vector)))
    content = _first(frame, "FrameContentSequence")
    if content is not None and _number(content.get("TemporalPositionIndex"), int) is not None:
        out.append(("time", _number(content.get("TemporalPositionIndex"), int)))
    index = _volume_index(ds, content)
    if index:
        out.append(("dimension index", index))
    return tuple(out)


POSITION_POINTERS = {0x00209057, 0x00200032}  # In-Stack Position Number, ImagePositionPatient


def _volume_index(ds: Dataset, content: Dataset | None) -> str:
    """The frame's DimensionIndexValues without the in-stack position: a last-resort key
    that tells the volumes of an enhanced object apart."""
    raw = None if content is None else content.get("DimensionIndexValues")
    values = [] if raw is None else [raw] if isinstance(raw, int) else list(raw)
    try:
        pointers = [int(item.get("DimensionIndexPointer") or 0)
                    for item in ds.get("DimensionIndexSequence") or []]
    except (TypeError, ValueError):  # a damaged pointer: no fallback key
        return ""
    if not values or len(pointers) != len(values):
        return ""
    kept = [str(v) for v, p in zip(values, pointers, strict=True) if p not in POSITION_POINTERS]
    return ".".join(kept)


def _frame_rescale(ds: Dataset, frame: Dataset) -> tuple[float, float] | None:
    pvt = _functional(ds, frame, "PixelValueTransformationSequence")
    if pvt is None:
        return None
    slope, intercept = _number(pvt.get("RescaleSlope")), _number(pvt.get("RescaleIntercept"))
    return (1.0 if slope is None else slope, 0.0 if intercept is None else intercept)


def _enhanced_geometry(ds: Dataset, fields: dict[str, Any], invalid: list[str]) -> None:
    """Fill orientation, spacing, per-frame positions, rescales and volume attributes from the
    functional groups. A rescale common to all frames becomes the file's rescale; otherwise
    every frame keeps its own (applied frame by frame when loading)."""
    frames = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    positions, orientations = [], set()
    for frame in frames:
        pos = _floats(getattr(_functional(ds, frame, "PlanePositionSequence"),
                              "ImagePositionPatient", None), 3)
        positions.append(pos)
        ori = _floats(getattr(_functional(ds, frame, "PlaneOrientationSequence"),
                              "ImageOrientationPatient", None), 6)
        orientations.add(ori)
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
    rescales = [_frame_rescale(ds, f) for f in frames]
    if any(r is not None for r in rescales):
        own = (fields.get("rescale_slope", 1.0), fields.get("rescale_intercept", 0.0))
        every = [own if r is None else r for r in rescales]
        if len(set(every)) == 1:
            fields["rescale_slope"], fields["rescale_intercept"] = every[0]
        else:
            fields["frame_rescales"] = tuple(every)
    attrs = tuple(_frame_attrs(ds, f) for f in frames)
    if any(attrs):
        fields["frame_attrs"] = attrs
    fields["orientation"] = orientations.pop()
    fields["frame_positions"] = tuple(positions)
    fields["position_lps"] = positions[0]


def _private(ds: Dataset, group: int, creator: str, element: int) -> Any:
    """A private value under its vendor's creator, or None."""
    try:
        return ds.get_private_item(group, element, creator).value
    except (KeyError, ValueError):
        return None


def _vendor_fields(ds: Dataset, fields: dict[str, Any]) -> None:
    """ImageType, manufacturer, slice spacing, b-value, mosaic and GE polarity facts."""
    image_type = ds.get("ImageType")
    if image_type:
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        fields["image_type"] = "\\".join(str(v) for v in values).upper()
    fields["manufacturer"] = _text(ds, "Manufacturer")
    fields["phase_reordering"] = _text(ds, "RectilinearPhaseEncodeReordering")
    fields["spacing_between_slices_mm"] = _number(ds.get("SpacingBetweenSlices"))
    b_value = _number(ds.get("DiffusionBValue"))
    if b_value is None:
        b_value = _number(_private(ds, 0x0019, "SIEMENS MR HEADER", 0x0C))
    if b_value is None:
        b_value = _number(_private(ds, 0x2001, "Philips Imaging DD 001", 0x03))
    fields["b_value"] = b_value
    fields["mosaic_tiles"] = _number(_private(ds, 0x0019, "SIEMENS MR HEADER", 0x0A), int)
    sequence = _private(ds, 0x0019, "GEMS_ACQU_01", 0x9C)
    fields["ge_sequence"] = "" if sequence is None else str(sequence).strip()
    pointer = ds.get("FrameIncrementPointer")
    if pointer is not None:
        pointer = pointer[0] if isinstance(pointer, list | tuple) else pointer
        fields["frame_increment"] = int(pointer)
    offsets = ds.get("GridFrameOffsetVector")
    if offsets is not None:
        values = [offsets] if isinstance(offsets, float | int | str) else list(offsets)
        fields["grid_frame_offsets"] = _floats(values, len(values))
    fields["phase_direction"] = _text(ds, "InPlanePhaseEncodingDirection")


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
    _vendor_fields(ds, fields)
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
