"""Export a twin's structures for other tools: Slicer .seg.nrrd, label maps, DICOM SEG, meshes.

Formats (``EXPORT_FORMATS``): ``seg.nrrd`` (3D Slicer, LPS, names/colours/tags), ``nifti`` and
``nrrd`` (one label map, values 1..N in structure order, plus a ``labels.json``
(``surgiplan.labels/1``) beside it; overlapping structures cannot share one label map and are
refused), ``dicom-seg`` (see :mod:`surgiplan.io.dicom_seg` for which series it references),
``dicom`` (the case's image as a DICOM series in a new folder, in the source's study and frame
of reference; with ``source_dicom`` instead the PS3.15 de-identified copy of the original files
of the case's series) and ``stl`` / ``obj`` / ``ply`` / ``vtp`` (one surface file per structure
in a folder).

Patient data: every DICOM export is de-identified by default (PS3.15 Basic Profile, UIDs mapped
consistently per installation, see :mod:`surgiplan.io.source_series`); ``include_identifiers``
keeps the original identity and UIDs and is logged. The other formats hold no patient
attributes. Every file is written atomically and owner-only (0600).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import removed_on_failure, write_bytes_atomic
from surgiplan.io.labelmaps import LABELS_SCHEMA, write_label_map
from surgiplan.io.mesh_export import MESH_FORMATS, Frame, export_structure_meshes
from surgiplan.io.source_series import SourceSeries
from surgiplan.model.structures import Segmentation, Structure
from surgiplan.progress import CancelToken, ProgressCallback
from surgiplan.twin import Twin

EXPORT_FORMATS = ("seg.nrrd", "nifti", "nrrd", "dicom-seg", "dicom", *MESH_FORMATS)
LABEL_NAMES_FILE = "labels.json"


def _selected(twin: Twin, names: Sequence[str] | None) -> list[Structure]:
    if not names:
        if not twin.structures:
            raise BadInputError("the case has no structures to export",
                                action="Add or import structures first")
        return list(twin.structures)
    have = twin.segmentation.names()
    missing = [n for n in names if n not in have]
    if missing:
        raise BadInputError(f"the case has no structure named {missing[0]!r} (it has "
                            f"{', '.join(have) or 'none'})",
                            action="Give one of the case's structure names")
    return [twin.structure(n) for n in names]


def subset(segmentation: Segmentation, structures: Sequence[Structure]) -> Segmentation:
    """A segmentation holding copies of only ``structures`` (same grid, properties kept)."""
    if len(structures) == len(segmentation.structures):
        return segmentation
    out = Segmentation(geometry=segmentation.geometry)
    for s in structures:
        out.add(s.name, segmentation.mask(s.name), role=s.role, color=s.color,
                margin_mm=s.margin_mm, description=s.description)
    return out


def write_label_map_with_names(
    segmentation: Segmentation, structures: Sequence[Structure], path: Path
) -> list[Path]:
    """One label map (values 1..N) and ``labels.json`` beside it; overlaps are refused."""
    dtype = np.uint8 if len(structures) < 256 else np.uint16
    labels = np.zeros(segmentation.geometry.shape_zyx, dtype=dtype)
    entries = []
    for value, s in enumerate(structures, start=1):
        mask = segmentation.mask(s.name)
        if np.any(labels[mask]):
            other = structures[int(labels[mask].max()) - 1].name
            raise BadInputError(f"structures {other!r} and {s.name!r} overlap, so one label "
                                "map cannot hold both", path=path,
                                action="Export them separately with --structure, or use "
                                "--format seg.nrrd")
        labels[mask] = value
        entries.append({"value": value, "name": s.name, "role": s.role.value,
                        "color": list(s.color) if s.color else None,
                        "margin_mm": s.margin_mm, "description": s.description})
    written = write_label_map(labels, segmentation.geometry, path)
    doc = json.dumps({"schema": LABELS_SCHEMA, "labels": entries}, indent=2).encode("utf-8")
    sidecar = write_bytes_atomic(path.parent / LABEL_NAMES_FILE, doc)
    return [written, sidecar]


def _dicom_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BadInputError("no such folder", path=folder, action="Give the DICOM folder")
    return sorted(p for p in folder.rglob("*") if p.is_file())


def export_twin(
    twin: Twin,
    fmt: str,
    out: str | Path,
    *,
    names: Sequence[str] | None = None,
    frame: Frame = "LPS",
    source_dicom: str | Path | None = None,
    include_identifiers: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write the twin's structures (``names``, default all) as ``fmt``; returns written files.

    ``source_dicom``: folder of the case's original series (dicom-seg: reference it from there;
    dicom: de-identify it). ``include_identifiers``: DICOM exports keep the patient identity
    and original UIDs (logged); default de-identified.
    """
    out = Path(out)
    structures = _selected(twin, names)
    chosen = [s.name for s in structures]
    if fmt == "seg.nrrd":
        from surgiplan.io.seg_nrrd import write_seg_nrrd

        _check_suffix(out, (".seg.nrrd",))
        return [write_seg_nrrd(subset(twin.segmentation, structures), out)]
    if fmt in ("nifti", "nrrd"):
        _check_suffix(out, (".nii", ".nii.gz") if fmt == "nifti" else (".nrrd",))
        return write_label_map_with_names(twin.segmentation, structures, out)
    if fmt == "dicom-seg":
        return _export_dicom_seg(twin, out, chosen, source_dicom, include_identifiers,
                                 progress, cancel)
    if fmt == "dicom":
        return _export_dicom_image(twin, out, source_dicom, include_identifiers, progress,
                                   cancel)
    if fmt in MESH_FORMATS:
        if out.exists() and not out.is_dir():
            raise BadInputError("mesh export writes one file per structure into a folder, "
                                "but this is a file", path=out, action="Give a folder path")
        with removed_on_failure(out):
            written = export_structure_meshes(twin, out, fmt=fmt, names=names or None,
                                              frame=frame, progress=progress, cancel=cancel)
        return list(written.values())
    raise BadInputError(f"unknown export format {fmt!r}",
                        action=f"Use one of {', '.join(EXPORT_FORMATS)}")


def _case_series_files(twin: Twin, folder: Path) -> tuple[list[Path], SourceSeries]:
    """The files of the case's series in ``folder`` and their reference; refused when there
    are none. Files matching the case's de-identified series UID directly are its de-identified
    copy: their reference is marked de-identified (never mapped a second time)."""
    from surgiplan.io import source_series

    headers = source_series.read_headers(_dicom_files(folder))
    uid = twin.image.series_uid
    mine = [h for h in headers if str(h.get("SeriesInstanceUID", "")) == uid]
    if mine:
        own = source_series.source_of(twin.image)
        copy = own.deidentified if own is not None else all(
            str(h.get("PatientIdentityRemoved", "")).upper() == "YES" for h in mine)
    else:
        copy = False
        mine = [h for h in headers if uid and source_series.deidentified_uid(
            str(h.get("SeriesInstanceUID", ""))) == uid]
    reference = source_series.from_headers(mine, deidentified=copy)
    if reference is None:
        raise BadInputError(f"no DICOM image of the case's series {uid or '(unknown)'} was "
                            "found there", path=folder,
                            action="Give the folder of the series the case was built from")
    return [Path(h.filename) for h in mine], reference


def _export_dicom_seg(twin: Twin, out: Path, names: list[str], source_dicom,
                      include_identifiers: bool, progress, cancel) -> list[Path]:
    from surgiplan.io.dicom_seg import write_dicom_seg

    source = _case_series_files(twin, Path(source_dicom))[1] if source_dicom else None
    series_dir = out.parent / f"{out.name.split('.')[0]}_image"  # the reference it may write
    with removed_on_failure(out, series_dir):
        result = write_dicom_seg(twin, out, names=names, source=source,
                                 include_identifiers=include_identifiers, progress=progress,
                                 cancel=cancel)
    extra = sorted(result.written_series_dir.iterdir()) if result.written_series_dir else []
    return [result.seg_path, *extra]


def _export_dicom_image(twin: Twin, out: Path, source_dicom, include_identifiers: bool,
                        progress, cancel) -> list[Path]:
    """The image as a DICOM series, or the de-identified copy of the source files."""
    from surgiplan.io import source_series
    from surgiplan.io.deidentify import deidentify_series
    from surgiplan.io.dicom_seg import export_reference, write_image_series

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInputError("the DICOM export needs a new or empty folder", path=out,
                            action="Choose a new folder for the DICOM series")
    if source_dicom is not None:
        if include_identifiers:
            raise BadInputError("--include-identifiers with --source-dicom would only copy the "
                                "original files", path=source_dicom,
                                action="Copy them yourself, or drop --include-identifiers to "
                                "get the de-identified copy")
        files, found = _case_series_files(twin, Path(source_dicom))
        if found.deidentified:
            raise BadInputError("these files are already de-identified", path=source_dicom,
                                action="Give the folder of the original series")
        with removed_on_failure(out):
            return deidentify_series(files, out, progress=progress, cancel=cancel)
    reference = export_reference(twin, include_identifiers=include_identifiers, path=out)
    with removed_on_failure(out):
        written = write_image_series(twin, out, source=reference, progress=progress,
                                     cancel=cancel)
    if include_identifiers and reference is not None and not reference.deidentified:
        source_series.log_identified_export("DICOM image series", out)
    return written


def _check_suffix(path: Path, suffixes: tuple[str, ...]) -> None:
    if not path.name.lower().endswith(suffixes):
        raise BadInputError(f"the file name must end in {' or '.join(suffixes)}", path=path,
                            action=f"Use e.g. --out structures{suffixes[0]}")
