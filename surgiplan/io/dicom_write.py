"""Write an ImageVolume as a real single-frame DICOM series (pydicom).

Used by the phantom generator, the bad-input corpus and the import benchmark. Geometry is
written in DICOM patient LPS mm exactly as the volume's grid says: ImageOrientationPatient from
direction columns 0 and 1, ImagePositionPatient of slice k = origin + direction[:, 2] * dz * k.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from surgiplan.io.deidentify import save_dataset, sync_folder
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
CT_INTERCEPT = -1024.0  # CT stored values: HU = stored * 1 - 1024
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def _ds_number(value: float) -> str:
    """A DICOM DS string (<= 16 chars) for a float."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.8g}"


def stored_values(
    array: np.ndarray, modality: str
) -> tuple[np.ndarray, float, float]:
    """Convert real-world values to 16-bit stored values: ``(stored, slope, intercept)``.

    real = stored * slope + intercept. CT is rounded to whole HU with intercept -1024 (int16;
    uint16 only for HU above 31743). Other modalities keep integer values as they are when
    they fit 16 bits, else are scaled linearly onto int16 (float data included).
    """
    lo, hi = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("volume holds NaN or infinite values; cannot write DICOM")
    if modality == "CT":
        shifted = np.rint(array) - CT_INTERCEPT
        if lo >= -32768 + CT_INTERCEPT and hi <= 32767 + CT_INTERCEPT:
            return shifted.astype(np.int16), 1.0, CT_INTERCEPT
        if lo >= CT_INTERCEPT and hi <= 65535 + CT_INTERCEPT:
            return shifted.astype(np.uint16), 1.0, CT_INTERCEPT
    is_integral = array.dtype.kind in "iub" or bool(np.all(np.mod(array, 1) == 0))
    if is_integral and lo >= 0 and hi <= 65535:
        return array.astype(np.uint16), 1.0, 0.0
    if is_integral and lo >= -32768 and hi <= 32767:
        return array.astype(np.int16), 1.0, 0.0
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    intercept = lo + 32768.0 * slope
    stored = np.rint((array - intercept) / slope).clip(-32768, 32767).astype(np.int16)
    return stored, slope, intercept


def bits_needed(stored: np.ndarray) -> int:
    """BitsStored for 16-bit stored values: the fewest bits (at least 12) that hold them.

    A tight BitsStored lets readers choose a lean output type (e.g. int16 HU for CT).
    """
    lo, hi = int(stored.min()), int(stored.max())
    if stored.dtype == np.int16:
        need = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    else:
        need = hi.bit_length()
    return min(16, max(12, need))


def _identity_attributes(ds: Dataset, identity: dict[str, str], now: datetime) -> None:
    """Patient and General Study attributes: ``identity`` values (kept as given, empty too:
    a derived series joins the source's study), else empty / today."""
    ds.PatientName = identity.get("PatientName", "")
    ds.PatientID = identity.get("PatientID", "")
    ds.PatientBirthDate = identity.get("PatientBirthDate", "")
    ds.PatientSex = identity.get("PatientSex", "") or "O"
    ds.StudyDate = identity.get("StudyDate", now.strftime("%Y%m%d"))
    ds.StudyTime = identity.get("StudyTime", now.strftime("%H%M%S"))
    ds.StudyID = identity.get("StudyID", "1")
    ds.AccessionNumber = identity.get("AccessionNumber", "")
    ds.ReferringPhysicianName = identity.get("ReferringPhysicianName", "")


def _modality_attributes(ds: Dataset, modality: str) -> None:
    """The CT / MR Image module attributes we cannot know for a derived volume: type 2 (present,
    empty) and, for MR's type-1 ScanningSequence / SequenceVariant, "RM" (research mode) and
    "NONE"."""
    if modality == "CT":
        ds.KVP = ""
        return
    ds.ScanningSequence = "RM"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = ""
    ds.RepetitionTime = ""
    ds.EchoTime = ""
    ds.EchoTrainLength = ""


def _base_dataset(
    volume: ImageVolume,
    *,
    identity: dict[str, str],
    series_description: str,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    slope: float,
    intercept: float,
    signed: bool,
    bits_stored: int,
) -> Dataset:
    geo = volume.geometry
    modality = volume.modality if volume.modality in ("CT", "MR") else "MR"
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    now = datetime.now(UTC)
    centre, width = volume.default_window()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192" if any(
        not v.isascii() for v in (*identity.values(), series_description)) else "ISO_IR 100"
    # value 3 is required by both IODs; MR's defined terms do not include AXIAL
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if modality == "CT" else "OTHER"]
    ds.SOPClassUID = sop_class
    _identity_attributes(ds, identity, now)
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Modality = modality
    ds.Manufacturer = "SurgiPlan"
    ds.SeriesDescription = series_description
    ds.Laterality = ""  # type 2C: unknown for a whole volume
    ds.SliceThickness = _ds_number(geo.spacing_mm[2])
    ds.SpacingBetweenSlices = _ds_number(geo.spacing_mm[2])
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [_ds_number(v) for v in geo.direction[:, :2].T.reshape(-1)]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    _modality_attributes(ds, modality)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geo.size[1]
    ds.Columns = geo.size[0]
    ds.PixelSpacing = [_ds_number(geo.spacing_mm[1]), _ds_number(geo.spacing_mm[0])]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.WindowCenter = _ds_number(centre)
    ds.WindowWidth = _ds_number(width)
    if width < 1:  # e.g. float MR in 0..1: only the exact linear function allows it
        ds.VOILUTFunction = "LINEAR_EXACT"
    if modality == "CT" or slope != 1.0 or intercept != 0.0:  # MR: only when values are scaled
        ds.RescaleIntercept = _ds_number(intercept)
        ds.RescaleSlope = _ds_number(slope)
        ds.RescaleType = "HU" if modality == "CT" else "US"
    return ds


def _file_meta(sop_class: UID, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SURGIPLAN"
    return meta


def write_series(
    volume: ImageVolume,
    out_dir: Path,
    *,
    patient_name: str = "Phantom^Anon",
    patient_id: str = "PHANTOM",
    identity: dict[str, str] | None = None,
    series_description: str = "",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    sop_instance_uids: Sequence[str] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    durable: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write ``volume`` as ``out_dir/IM_0001.dcm ...`` (one file per slice, k order).

    SOP class is CT Image Storage for modality CT, else MR Image Storage. Values are stored as
    16-bit integers with RescaleSlope/Intercept (see :func:`stored_values`). A compressed
    ``transfer_syntax`` (RLE, JPEG-LS, JPEG 2000 lossless) is encoded through pydicom's
    encoders. ``identity`` (DICOM keyword -> value: PatientName, PatientID, StudyDate, ...)
    overrides ``patient_name`` / ``patient_id``; UIDs not given are new. Each file is written
    atomically (temporary file + rename), owner-only (0600); the files and folder are synced
    once at the end unless ``durable=False`` (test corpora). Returns the written paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ts = UID(transfer_syntax)
    stored, slope, intercept = stored_values(volume.array, volume.modality)
    n = volume.geometry.size[2]
    if sop_instance_uids is not None and len(sop_instance_uids) != n:
        raise ValueError(f"{len(sop_instance_uids)} SOP instance UIDs for {n} slices")
    ds = _base_dataset(
        volume,
        identity=identity or {"PatientName": patient_name, "PatientID": patient_id},
        series_description=series_description or volume.description,
        study_uid=study_uid or generate_uid(),
        series_uid=series_uid or generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid or generate_uid(),
        slope=slope,
        intercept=intercept,
        signed=stored.dtype == np.int16,
        bits_stored=bits_needed(stored),
    )
    geo = volume.geometry
    normal = geo.direction[:, 2]
    step = normal * geo.spacing_mm[2]
    origin = np.asarray(geo.origin_lps)
    paths: list[Path] = []
    for k in range(n):
        check(cancel)
        position = origin + step * k
        ds.file_meta = _file_meta(ds.SOPClassUID, ts)
        ds.SOPInstanceUID = sop_instance_uids[k] if sop_instance_uids else generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds_number(v) for v in position]
        ds.SliceLocation = _ds_number(float(position @ normal))
        _set_pixels(ds, stored[k], ts)
        paths.append(save_dataset(ds, out_dir / f"IM_{k + 1:04d}.dcm", durable=False))
        report(progress, (k + 1) / n, f"wrote slice {k + 1}/{n}")
    if durable:
        sync_folder(paths)
    return paths


def _set_pixels(ds: Dataset, plane: np.ndarray, ts: UID) -> None:
    """Put one slice's stored values into ``ds`` (raw, or encoded for compressed syntaxes)."""
    if ts in UNCOMPRESSED:
        ds.PixelData = np.ascontiguousarray(plane).tobytes()
        ds["PixelData"].VR = "OW"
        return
    if "PixelData" in ds:
        del ds.PixelData
    ds.compress(ts, np.ascontiguousarray(plane), generate_instance_uid=False)
