"""Export a twin's structures for other tools: Slicer .seg.nrrd, label maps, DICOM SEG, meshes.

Formats (``EXPORT_FORMATS``): ``seg.nrrd`` (3D Slicer, LPS, names/colours/tags), ``nifti`` and
``nrrd`` (one label map, values 1..N in structure order, plus a ``labels.json``
(``surgiplan.labels/1``) beside it; overlapping structures cannot share one label map and are
refused), ``dicom-seg`` (see :mod:`surgiplan.io.dicom_seg` for which series it references) and
``stl`` / ``obj`` / ``ply`` / ``vtp`` (one surface file per structure in a folder).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.io.labelmaps import LABELS_SCHEMA, write_label_map
from surgiplan.io.mesh_export import MESH_FORMATS, Frame, export_structure_meshes
from surgiplan.model.structures import Segmentation, Structure
from surgiplan.model.twin import Twin
from surgiplan.progress import CancelToken, ProgressCallback

EXPORT_FORMATS = ("seg.nrrd", "nifti", "nrrd", "dicom-seg", *MESH_FORMATS)
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
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write the twin's structures (``names``, default all) as ``fmt``; returns written files."""
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
        return _export_dicom_seg(twin, out, chosen, source_dicom, progress, cancel)
    if fmt in MESH_FORMATS:
        if out.exists() and not out.is_dir():
            raise BadInputError("mesh export writes one file per structure into a folder, "
                                "but this is a file", path=out, action="Give a folder path")
        written = export_structure_meshes(twin, out, fmt=fmt, names=names or None, frame=frame,
                                          progress=progress, cancel=cancel)
        return list(written.values())
    raise BadInputError(f"unknown export format {fmt!r}",
                        action=f"Use one of {', '.join(EXPORT_FORMATS)}")


def _export_dicom_seg(twin: Twin, out: Path, names: list[str], source_dicom, progress,
                      cancel) -> list[Path]:
    from surgiplan.io.dicom_seg import source_datasets, write_dicom_seg

    files = None
    if source_dicom is not None:
        files = _dicom_files(Path(source_dicom))
        if source_datasets(files, twin.image.series_uid) is None:
            raise BadInputError(f"no DICOM image of the case's series {twin.image.series_uid} "
                                "was found there", path=source_dicom,
                                action="Give the folder of the series the case was built from")
    result = write_dicom_seg(twin, out, names=names, source_files=files, progress=progress,
                             cancel=cancel)
    extra = sorted(result.written_series_dir.iterdir()) if result.written_series_dir else []
    return [result.seg_path, *extra]


def _check_suffix(path: Path, suffixes: tuple[str, ...]) -> None:
    if not path.name.lower().endswith(suffixes):
        raise BadInputError(f"the file name must end in {' or '.join(suffixes)}", path=path,
                            action=f"Use e.g. --out structures{suffixes[0]}")
