"""DICOM Segmentation objects (SEG) <-> structures, through highdicom.

Writing: one BINARY segment per structure (label, colour as RecommendedDisplayCIELabValue,
algorithm type MANUAL or SEMIAUTOMATIC, an SCT anatomy code where the name is a known anatomy
else the generic "Tissue" code). The SEG frames are placed explicitly in patient LPS
(highdicom ``Volume``: PlanePositionSequence per frame), so they stay right even when the image
grid was resampled from a tilted series. Which series it references:

* the case's source series (:mod:`surgiplan.io.source_series`: kept in the case bundle, or read
  once from the files the twin was built from), de-identified by default with the
  installation's consistent PS3.15 UID mapping, the original with ``include_identifiers``;
  highdicom is given minimal datasets carrying the reference's UIDs and slice geometry, so
  nothing else of the source headers (institution, descriptions, device serial) reaches the SEG;
* otherwise (a case from NRRD / NIfTI) the image is first written as a DICOM series next to the
  SEG (``<stem>_image/``) with UIDs derived from the image, so every SEG of one case is in one
  study and frame of reference.

SurgiPlan's role and safety margin travel in each segment's SegmentDescription as
``SurgiPlan role=critical margin_mm=2``; SEGs from elsewhere read as role "other", margin 0.

Reading: any SEG (binary or fractional, thresholded at 0.5) segment by segment with
``Segmentation.get_volume``; a segment whose grid is a crop / flip / permutation of the image
grid is placed voxel for voxel, anything else is resampled with nearest-label interpolation
(:func:`label_map_onto_image`), and a SEG that does not overlap the image is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io import source_series
from surgiplan.io.deidentify import add_deidentification_method, save_dataset
from surgiplan.io.labelmaps import label_map_onto_image
from surgiplan.io.source_series import SourceSeries
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.twin import Twin

MANUFACTURER = "SurgiPlan"
_DESCRIPTION = re.compile(r"SurgiPlan role=(\w+) margin_mm=([0-9.eE+-]+)")
# Structure-name words that are not CamelCase SCT keywords -> the pydicom codes.SCT keyword.
_SCT_SYNONYMS = {
    "vessels": "BloodVessel", "vessel": "BloodVessel", "contrast_vessels": "BloodVessel",
    "spine": "Spine", "vertebrae": "Vertebra", "head": "Head", "bone": "Bone",
    "skin": "Skin", "brain": "Brain", "tumor": "Neoplasm", "tumour": "Neoplasm",
    "kidney": "Kidney", "lung": "Lung", "ribs": "Rib", "rib": "Rib", "skull": "Skull",
}
_SIDES = ("_left", "_right", " left", " right")


# ---------------------------------------------------------------------------- codes
def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in re.split(r"[\s_\-]+", text) if w)


def anatomy_code(name: str):
    """The SCT code (pydicom ``Code``) of a structure name, or None when it is not known.

    Tries the name as a codes.SCT keyword ("inferior_vena_cava" -> InferiorVenaCava), then
    without a left/right suffix or a trailing number, then its first and last word in a small
    synonym table ("contrast vessels" -> Blood Vessel).
    """
    from pydicom.sr.codedict import codes

    base = name.strip().lower()
    for side in _SIDES:
        base = base.removesuffix(side)
    stripped = re.sub(r"[_\s]*\d+$", "", base)
    words = re.split(r"[_\s]+", stripped) if stripped else [""]
    for candidate in (_camel(name), _camel(base), _camel(stripped),
                      _SCT_SYNONYMS.get(stripped, ""), _SCT_SYNONYMS.get(words[0], ""),
                      _SCT_SYNONYMS.get(words[-1], "")):
        if not candidate:
            continue
        try:
            code = getattr(codes.SCT, candidate)
        except AttributeError:
            continue
        if code.scheme_designator == "SCT":
            return code
    return None


def _segment_description(number: int, s: Structure, algorithm_type: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    code = anatomy_code(s.name)
    category = codes.SCT.AnatomicalStructure if code is not None else codes.SCT.Tissue
    rgb = [min(255.0, max(0.0, 255.0 * c)) for c in (s.color or (0.5, 0.5, 0.5))]
    desc = hd.seg.SegmentDescription(
        segment_number=number, segment_label=s.name[:64],
        segmented_property_category=category,
        segmented_property_type=code if code is not None else codes.SCT.Tissue,
        algorithm_type=algorithm_type,
        algorithm_identification=_algorithm() if algorithm_type != "MANUAL" else None,
        display_color=hd.color.CIELabColor.from_rgb(*rgb),
    )
    desc.SegmentDescription = f"SurgiPlan role={s.role.value} margin_mm={s.margin_mm:g}"
    return desc


def _algorithm():
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from surgiplan import __version__

    return hd.AlgorithmIdentificationSequence(
        name="SurgiPlan", family=codes.DCM.ImageProcessing, version=__version__)


# ---------------------------------------------------------------------------- source series
def source_datasets(files: Sequence[str | Path], series_uid: str) -> list | None:
    """Minimal datasets of the files of ``series_uid`` (original or de-identified UID), or None
    when no usable image of that series is among them."""
    found = source_series.from_files(files, series_uid)
    return None if found is None else source_series.datasets(found)


def _derived_uid(*parts: str) -> str:
    """A UID that is a function of ``parts`` (same case, same UID): the "2.25." form of a
    name-based (SHA-1, version 5) UUID, as PS3.5 B.2 allows."""
    import uuid

    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, '/'.join(['surgiplan', *parts])).int}"


def image_series_uids(twin: Twin, source: SourceSeries | None) -> dict:
    """Study, series, frame-of-reference and per-slice SOP UIDs for writing the twin's image
    as a DICOM series: in the source's study and frame of reference when there is one, else
    derived from the image content, so every export of one case gives the same UIDs."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(twin.image.array).tobytes())
    digest.update(repr(twin.geometry.to_json()).encode())
    key = digest.hexdigest()
    study = source.study_uid if source else _derived_uid("study", key)
    frame = source.frame_of_reference_uid if source else _derived_uid("frame", key)
    series = _derived_uid("series", study, key)
    n = twin.geometry.size[2]
    return {"study_uid": study, "frame_of_reference_uid": frame, "series_uid": series,
            "sop_instance_uids": [_derived_uid("sop", series, str(k)) for k in range(n)]}


def write_image_series(twin: Twin, folder: Path, *, source: SourceSeries | None,
                       progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> list[Path]:
    """Write the twin's image as a derived DICOM series in ``folder`` (see
    :func:`image_series_uids`); patient / study attributes come from ``source`` (as given:
    de-identify it first), else the case's pseudonymous reference."""
    from surgiplan.io.dicom_write import write_series

    ref = twin.patient_ref or "ANON"
    identity = dict(source.identity) if source else {"PatientName": f"SurgiPlan^{ref}",
                                                     "PatientID": ref}
    return write_series(twin.image, folder, identity=identity,
                        series_description="SurgiPlan twin image",
                        **image_series_uids(twin, source), progress=progress, cancel=cancel)


def reference_series_folder(seg_path: str | Path) -> Path:
    """Where :func:`write_dicom_seg` writes the image series a case without a DICOM source
    references: ``NAME_image`` beside ``NAME.dcm``."""
    seg_path = Path(seg_path)
    return seg_path.parent / f"{seg_path.name.split('.')[0]}_image"


def _write_reference_series(twin: Twin, folder: Path) -> SourceSeries:
    written = write_image_series(twin, folder, source=None)
    reference = source_series.from_headers(source_series.read_headers(written),
                                            deidentified=True)
    if reference is None:
        raise RuntimeError(f"the DICOM series written to {folder} cannot be referenced")
    return reference


def _volume_affine(geometry: ImageGeometry) -> np.ndarray:
    """highdicom affine of a ``(nz, ny, nx)`` array: array axes (k, j, i) -> LPS mm."""
    return geometry.index_to_lps_matrix[:, [2, 1, 0, 3]]


# ---------------------------------------------------------------------------- writing
@dataclass
class SegWriteResult:
    """What :func:`write_dicom_seg` wrote: the SEG and, if it had to, the referenced series."""

    seg_path: Path
    referenced_series_uid: str
    written_series_dir: Path | None


def export_reference(twin: Twin, *, source: SourceSeries | None = None,
                     include_identifiers: bool = False,
                     path: str | Path = "") -> SourceSeries | None:
    """The source reference a DICOM export of ``twin`` uses: ``source`` or the case's own,
    de-identified unless ``include_identifiers`` (refused when the case no longer holds the
    identifiers); None when the case has no DICOM source."""
    reference = source if source is not None else source_series.source_of(twin.image)
    if reference is None:
        return None
    if not include_identifiers:
        return source_series.deidentify(reference)
    if reference.deidentified:
        raise BadInputError(
            "the case was saved de-identified (the default), so it no longer holds the "
            "patient identifiers and original UIDs", path=path or None,
            action="Drop --include-identifiers, give --source-dicom with the original "
            "series, or rebuild the case with --include-identifiers")
    return reference


def write_dicom_seg(
    twin: Twin,
    path: str | Path,
    *,
    names: Sequence[str] | None = None,
    source: SourceSeries | None = None,
    source_files: Sequence[str | Path] | None = None,
    include_identifiers: bool = False,
    algorithm_type: str = "SEMIAUTOMATIC",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> SegWriteResult:
    """Write the twin's structures (``names``, default all) as a DICOM SEG file at ``path``.

    ``algorithm_type``: "MANUAL" or "SEMIAUTOMATIC". The SEG references ``source`` or the
    case's own source series, or the series read from ``source_files`` (refused when they do
    not hold it) (:func:`export_reference`: de-identified by default, with the
    installation's consistent UID mapping); a case without one gets its image written first as
    a DICOM series beside the SEG. Written atomically, owner-only (0600). Returns the SEG path,
    the referenced SeriesInstanceUID and the folder of the series written for it (or None).
    """
    import highdicom as hd

    path = Path(path)
    if algorithm_type not in ("MANUAL", "SEMIAUTOMATIC"):
        raise ValueError(f"algorithm_type must be MANUAL or SEMIAUTOMATIC, got {algorithm_type}")
    structures = [twin.structure(n) for n in names] if names else list(twin.structures)
    if not structures:
        raise BadInputError("the case has no structures to write", path=path,
                            action="Add or import structures first")
    if source is None and source_files is not None:
        source = source_series.from_files(source_files, twin.image.series_uid)
        if source is None:
            raise BadInputError(f"no DICOM image of the case's series {twin.image.series_uid} "
                                "is among the source files", path=path,
                                action="Give the files of the series the case was built from")
    reference = export_reference(twin, source=source, include_identifiers=include_identifiers,
                                 path=path)
    written = None
    if reference is None:
        written = reference_series_folder(path)
        reference = _write_reference_series(twin, written)
    sources = source_series.datasets(reference)
    report(progress, 0.3, "source series ready")
    volume = hd.Volume(_stack(twin, structures, cancel), _volume_affine(twin.geometry), "PATIENT",
                       frame_of_reference_uid=reference.frame_of_reference_uid,
                       channels={"SegmentNumber": list(range(1, len(structures) + 1))})
    descriptions = [_segment_description(n, s, algorithm_type)
                    for n, s in enumerate(structures, start=1)]
    check(cancel)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=volume, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=300,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name="SurgiPlan", software_versions=_version(),
        device_serial_number="0", content_label="SURGIPLAN", series_description="SurgiPlan SEG",
    )
    if reference.deidentified:
        add_deidentification_method(seg)
    report(progress, 0.9, "segmentation encoded")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(seg, path)
    if include_identifiers and not reference.deidentified:
        source_series.log_identified_export("DICOM SEG", path)
    report(progress, 1.0, "DICOM SEG written")
    return SegWriteResult(path, reference.series_uid, written)


def _version() -> str:
    from surgiplan import __version__

    return __version__


def _stack(twin: Twin, structures: list[Structure], cancel: CancelToken | None) -> np.ndarray:
    """``(nz, ny, nx, n_structures)`` uint8 masks (1 inside)."""
    out = np.zeros((*twin.geometry.shape_zyx, len(structures)), dtype=np.uint8)
    for n, s in enumerate(structures):
        check(cancel)
        out[..., n] = twin.segmentation.layers[s.layer] == s.label
    return out


# ---------------------------------------------------------------------------- reading
def _open(path: Path):
    import highdicom as hd
    import pydicom

    if not path.is_file():
        raise BadInputError("no such file", path=path, action="Check the path")
    try:
        return hd.seg.segread(path)
    except (pydicom.errors.InvalidDicomError, AttributeError, ValueError, KeyError,
            TypeError, OSError) as exc:
        raise BadInputError(f"not a readable DICOM Segmentation object ({exc})", path=path,
                            action="Give a DICOM SEG file (SOP class Segmentation Storage)"
                            ) from exc


def _geometry_of(volume) -> tuple[np.ndarray, ImageGeometry]:
    """A highdicom Volume / VolumeGeometry (axes k, j, i) as ``(nz, ny, nx)`` array + grid."""
    cols = volume.affine[:3, :3]
    spacing = np.linalg.norm(cols, axis=0)
    direction = (cols / spacing)[:, [2, 1, 0]]
    n0, n1, n2 = volume.spatial_shape
    geometry = ImageGeometry((n2, n1, n0), tuple(spacing[[2, 1, 0]]),
                             tuple(volume.affine[:3, 3]), direction)
    return np.asarray(getattr(volume, "array", np.zeros(0))), geometry


def _segment_mask(seg, number: int, image_geometry: ImageGeometry, *, path: Path,
                  warnings_out: list[str] | None) -> np.ndarray:
    import highdicom as hd

    try:
        volume = seg.get_volume(segment_numbers=[number], combine_segments=False,
                                rescale_fractional=True)
    except (RuntimeError, ValueError) as exc:
        raise BadInputError(f"segment {number} is not on a regular 3D grid ({exc})", path=path,
                            action="Give a SEG whose frames form a regular volume") from exc
    if volume is None:
        return np.zeros(image_geometry.shape_zyx, dtype=bool)
    if volume.number_of_channel_dimensions:
        volume = volume.squeeze_channel()
    target = hd.VolumeGeometry(_volume_affine(image_geometry), image_geometry.shape_zyx,
                               "PATIENT")
    try:
        matched = volume.match_geometry(target)
        return np.asarray(matched.array) >= 0.5
    except (RuntimeError, ValueError):
        array, geometry = _geometry_of(volume)
        labels = (array >= 0.5).astype(np.uint8)
        on_grid = label_map_onto_image(labels, geometry, image_geometry, path=path,
                                       warnings_out=warnings_out)
        return on_grid != 0


def _properties(desc) -> dict:
    """name, role, color, margin_mm of one SegmentSequence item."""
    import highdicom as hd

    info: dict = {"name": " ".join(str(desc.SegmentLabel).split()) or
                  f"segment_{desc.SegmentNumber}", "role": Role.OTHER, "margin_mm": 0.0}
    match = _DESCRIPTION.search(str(desc.get("SegmentDescription", "")))
    if match and match.group(1) in Role.__members__.values():
        info["role"], info["margin_mm"] = Role(match.group(1)), float(match.group(2))
    if "RecommendedDisplayCIELabValue" in desc:
        lab = hd.color.CIELabColor.from_dicom_value(desc.RecommendedDisplayCIELabValue)
        info["color"] = tuple(c / 255.0 for c in lab.to_rgb(clip=True))
    return info


def read_dicom_seg(
    path: str | Path,
    image_geometry: ImageGeometry | None = None,
    *,
    warnings_out: list[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Segmentation:
    """Read a DICOM SEG as a :class:`Segmentation` on ``image_geometry``.

    Without ``image_geometry`` the grid is the SEG's own (that of its first segment). Segments
    become structures named by SegmentLabel, coloured from RecommendedDisplayCIELabValue.
    """
    path = Path(path)
    seg = _open(path)
    numbers = list(seg.segment_numbers)
    if image_geometry is None:
        image_geometry = _own_geometry(seg, path=path)
    out = Segmentation(geometry=image_geometry)
    taken: set[str] = set()
    for n, number in enumerate(numbers):
        check(cancel)
        report(progress, n / max(1, len(numbers)), f"segment {number}")
        info = _properties(seg.get_segment_description(number))
        name, k = info.pop("name"), 2
        unique = name
        while unique in taken:
            unique, k = f"{name} ({k})", k + 1
        taken.add(unique)
        mask = _segment_mask(seg, number, image_geometry, path=path, warnings_out=warnings_out)
        out.add(unique, mask, **info)
    report(progress, 1.0, "DICOM SEG read")
    return out


def _own_geometry(seg, *, path: Path) -> ImageGeometry:
    """The grid of the whole SEG (all frames, all segments): highdicom's volume geometry."""
    try:
        volume = seg.get_volume_geometry()
    except (RuntimeError, ValueError):
        volume = None
    if volume is None:
        raise BadInputError("the SEG frames do not form a regular 3D grid", path=path,
                            action="Read it onto the image it was made for")
    return _geometry_of(volume)[1]
