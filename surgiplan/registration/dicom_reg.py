"""DICOM Spatial Registration objects (PS3.3 A.39, SOP class 1.2.840.10008.5.1.4.1.1.66.1).

Written with pydicom (highdicom has no Spatial Registration IOD). The object lives in the
reference series' study and frame of reference; its Registration Sequence holds one item per
frame of reference: the reference's own with the identity matrix, and the registered series'
with its Frame of Reference Transformation Matrix, which maps points of the registered series'
frame (LPS mm) into the reference frame: exactly ``SeriesTransform.matrix_to_reference``. Only
linear transforms are written (a deformation needs a Deformable Spatial Registration object,
which SurgiPlan does not write: the linear part is written and the deformation is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from surgiplan import __version__
from surgiplan.errors import BadInputError
from surgiplan.io.source_series import SourceSeries
from surgiplan.model.series_transform import SeriesTransform, is_rigid

SPATIAL_REGISTRATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.1"
_DCM = ("DCM", "Registration type codes: PS3.16 CID 7100")
REGISTRATION_TYPES = {"RIGID": ("125024", "Image Content-based Alignment"),
                      "AFFINE": ("125024", "Image Content-based Alignment")}


@dataclass(frozen=True)
class RegistrationItem:
    """One item of a read Registration Sequence: a frame of reference and its matrix."""

    frame_of_reference_uid: str
    matrix_to_registration_frame: np.ndarray  # 4x4, LPS mm
    matrix_type: str
    series_uids: tuple[str, ...]


@dataclass(frozen=True)
class SpatialRegistration:
    """A read Spatial Registration object."""

    frame_of_reference_uid: str  # the registration (reference) frame
    items: tuple[RegistrationItem, ...]
    sop_instance_uid: str
    content_label: str

    def matrix_for(self, frame_of_reference_uid: str) -> np.ndarray:
        """The matrix of the item for ``frame_of_reference_uid`` (series -> reference)."""
        for item in self.items:
            if item.frame_of_reference_uid == frame_of_reference_uid:
                return item.matrix_to_registration_frame
        known = ", ".join(i.frame_of_reference_uid for i in self.items)
        raise BadInputError(f"the registration object holds no matrix for frame of reference "
                            f"{frame_of_reference_uid} (it has {known})",
                            action="Choose the registration object made for this series")


def _code(value: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, _DCM[0], meaning
    return code


def _referenced_images(source: SourceSeries) -> list[Any]:
    from pydicom.dataset import Dataset

    out = []
    for instance in source.instances:
        ref = Dataset()
        ref.ReferencedSOPClassUID = source.sop_class_uid
        ref.ReferencedSOPInstanceUID = instance.sop_instance_uid
        out.append(ref)
    return out


def _registration_item(source: SourceSeries, matrix: np.ndarray, matrix_type: str,
                       comment: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.FrameOfReferenceUID = source.frame_of_reference_uid
    item.ReferencedImageSequence = _referenced_images(source)
    matrix_item = Dataset()
    matrix_item.FrameOfReferenceTransformationMatrixType = matrix_type
    matrix_item.FrameOfReferenceTransformationMatrix = [
        float(f"{v:.10g}") for v in np.asarray(matrix, dtype=float).reshape(-1)]
    registration = Dataset()
    registration.MatrixSequence = [matrix_item]
    registration.FrameOfReferenceTransformationComment = comment[:64]  # LO
    registration.RegistrationTypeCodeSequence = [_code(*REGISTRATION_TYPES[matrix_type])]
    item.MatrixRegistrationSequence = [registration]
    return item


def _series_reference(source: SourceSeries) -> Any:
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.SeriesInstanceUID = source.series_uid
    ref.ReferencedInstanceSequence = _referenced_images(source)
    return ref


def _common_instance_reference(ds: Any, reference: SourceSeries, series: SourceSeries) -> None:
    """Common Instance Reference module: series in the object's study, then other studies."""
    from pydicom.dataset import Dataset

    same = [reference] if series.study_uid != reference.study_uid else [reference, series]
    ds.ReferencedSeriesSequence = [_series_reference(s) for s in same]
    if series.study_uid != reference.study_uid:
        other = Dataset()
        other.StudyInstanceUID = series.study_uid
        other.ReferencedSeriesSequence = [_series_reference(series)]
        ds.StudiesContainingOtherReferencedInstancesSequence = [other]


def spatial_registration_dataset(reference: SourceSeries, series: SourceSeries,
                                 transform: SeriesTransform, *, label: str = "SURGIPLAN_REG"
                                 ) -> Any:
    """The Spatial Registration dataset placing ``series`` in ``reference``'s frame."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    if transform.deformation_tfm is not None:
        raise BadInputError("the series has a deformable transform; a Spatial Registration "
                            "object holds only a matrix",
                            action="Register it rigid or affine to export the alignment")
    matrix_type = "RIGID" if is_rigid(transform.matrix_to_reference, tol=1e-5) else "AFFINE"
    now = datetime.now(UTC)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(SPATIAL_REGISTRATION_SOP_CLASS)
    ds.SOPClassUID = SPATIAL_REGISTRATION_SOP_CLASS
    instance_uid = generate_uid()
    ds.SOPInstanceUID = instance_uid
    ds.file_meta.MediaStorageSOPInstanceUID = instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if any(not v.isascii() for v in reference.identity.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in reference.identity.items():
        setattr(ds, keyword, value)
    ds.PatientSex = reference.identity.get("PatientSex", "")
    ds.StudyInstanceUID = reference.study_uid
    ds.Modality = "REG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.Laterality = ""  # type 2C: a registration of whole volumes states no side
    ds.FrameOfReferenceUID = reference.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "SurgiPlan"
    ds.SoftwareVersions = __version__
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceNumber = 1
    ds.ContentLabel = label[:16].upper().replace(" ", "_")
    ds.ContentDescription = transform.method[:64]
    ds.ContentCreatorName = ""
    identity = np.eye(4)
    ds.RegistrationSequence = [
        _registration_item(reference, identity, "RIGID", "reference series (identity)"),
        _registration_item(series, transform.matrix_to_reference, matrix_type,
                           f"{transform.method}; quality {transform.quality}"),
    ]
    _common_instance_reference(ds, reference, series)
    return ds


def write_spatial_registration(path: str | Path, reference: SourceSeries, series: SourceSeries,
                               transform: SeriesTransform) -> Path:
    """Write the Spatial Registration object (see :func:`spatial_registration_dataset`)."""
    path = Path(path)
    ds = spatial_registration_dataset(reference, series, transform)
    ds.save_as(path, enforce_file_format=True)
    return path


def read_spatial_registration(path: str | Path) -> SpatialRegistration:
    """Read a Spatial Registration object: its frame of reference and every matrix."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (OSError, InvalidDicomError) as exc:
        raise BadInputError(f"not a readable DICOM file ({exc})", path=path,
                            action="Give a DICOM Spatial Registration object") from exc
    if str(ds.get("SOPClassUID", "")) != SPATIAL_REGISTRATION_SOP_CLASS:
        raise BadInputError(f"not a Spatial Registration object (SOP class "
                            f"{ds.get('SOPClassUID', 'missing')})", path=path,
                            action="Give a DICOM Spatial Registration object (Modality REG)")
    items = []
    for item in ds.get("RegistrationSequence", []):
        matrix = np.eye(4)
        matrix_type = "RIGID"
        for registration in item.get("MatrixRegistrationSequence", []):
            for m in registration.get("MatrixSequence", []):
                values = np.asarray(m.FrameOfReferenceTransformationMatrix, dtype=float)
                if values.shape != (16,):
                    raise BadInputError("a Frame of Reference Transformation Matrix does not "
                                        "hold 16 numbers", path=path,
                                        action="The registration object is damaged")
                matrix = values.reshape(4, 4) @ matrix  # later matrices apply after earlier
                matrix_type = str(m.get("FrameOfReferenceTransformationMatrixType", ""))
        series = tuple(sorted({str(r.SeriesInstanceUID)
                               for r in ds.get("ReferencedSeriesSequence", [])}))
        items.append(RegistrationItem(str(item.FrameOfReferenceUID), matrix, matrix_type,
                                      series))
    if not items:
        raise BadInputError("the registration object holds no registration", path=path,
                            action="Give a Spatial Registration object with a matrix")
    return SpatialRegistration(str(ds.FrameOfReferenceUID), tuple(items),
                               str(ds.SOPInstanceUID), str(ds.get("ContentLabel", "")))


def transform_from_registration(reg: SpatialRegistration, series_frame_uid: str,
                                path: str | Path) -> SeriesTransform:
    """The series -> reference transform of a read object, for a series' frame of reference."""
    matrix = reg.matrix_for(series_frame_uid)
    rigid = is_rigid(matrix, tol=1e-4)
    return SeriesTransform(matrix, kind="rigid" if rigid else "affine",
                           method=f"dicom-sro: {Path(path).name} ({reg.sop_instance_uid})")
