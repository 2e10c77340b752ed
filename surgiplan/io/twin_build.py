"""Build a structural twin from a scan and optional label maps.

The image comes from a DICOM folder / file / DICOMDIR (``load_dicom``) or from an NRRD / NIfTI
volume. Label maps are put onto the image grid (resampled with nearest-label interpolation when
their grid differs, with a warning). Structure names come from ``label_names``, or from a
``labels.json`` next to the label file, else from the file name; a 3D Slicer ``.seg.nrrd``
brings its own segment names, colours, roles and margins. Provenance records the source
series UIDs, the SHA-256 of every source file (keyed by path relative to the input, so folder
names that may hold a patient's name stay out of the case), the software and every warning.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.deidentify import patient_pseudonym
from surgiplan.io.labelmaps import (
    file_kind,
    label_map_onto_image,
    read_label_map,
    read_label_names,
    read_volume_file,
)
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.twin import Provenance, Twin
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report

LABEL_NAMES_FILE = "labels.json"


def _scaled(progress: ProgressCallback | None, start: float, stop: float):
    """A progress callback mapping [0, 1] onto [start, stop] of ``progress``."""
    if progress is None:
        return None
    return lambda fraction, text="": report(progress, start + (stop - start) * fraction, text)


def load_image(
    path: Path, *, series_uid: str | None = None, progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageVolume:
    """The image volume at ``path``: NRRD/NIfTI by suffix, anything else as DICOM."""
    if not path.exists():
        raise BadInputError("no such file or folder", path=path, action="Check the path")
    if path.is_file() and file_kind(path):
        array, geometry = read_volume_file(path)
        report(progress, 1.0, "image read")
        # No file name as description: names chosen by users may hold the patient's name.
        return ImageVolume(array=array, geometry=geometry, description="",
                           metadata={"files": [str(path)]})
    from surgiplan.io.dicom_load import load_dicom

    return load_dicom(path, series_uid=series_uid, progress=progress, cancel=cancel)


def hash_source_files(
    files: Sequence[str | Path], root: Path, *, cancel: CancelToken | None = None
) -> dict[str, str]:
    """SHA-256 (hex) of each file, keyed by its path relative to ``root`` (POSIX form)."""
    base = (root if root.is_dir() else root.parent).resolve()

    def digest(file: str | Path) -> tuple[str, str]:
        check(cancel)
        path = Path(file)
        try:
            key = path.resolve().relative_to(base).as_posix()
        except ValueError:
            key = path.name
        with open(path, "rb") as handle:
            return key, hashlib.file_digest(handle, "sha256").hexdigest()

    # hashlib releases the GIL on large buffers: a few threads overlap reading and hashing.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return dict(pool.map(digest, files))


def _names_for(label_file: Path, label_names: Path | None) -> dict[int, dict]:
    if label_names is not None:
        return read_label_names(label_names)
    sidecar = label_file.parent / LABEL_NAMES_FILE
    return read_label_names(sidecar) if sidecar.is_file() else {}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".seg.nrrd", ".nii.gz", ".nrrd", ".nhdr", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _free_layer(seg: Segmentation, nonzero: np.ndarray, values: set[int]) -> int:
    """First layer where these voxels are empty and these label values unused, else a new one."""
    for n, layer in enumerate(seg.layers):
        used = {s.label for s in seg.structures if s.layer == n}
        if not (used & values) and not np.any(layer[nonzero]):
            return n
    seg.layers.append(np.zeros(seg.geometry.shape_zyx, dtype=np.uint8))
    return len(seg.layers) - 1


def _unique_name(name: str, taken: set[str]) -> str:
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name} ({k})", k + 1
    return unique


def add_label_map(
    seg: Segmentation, labels: np.ndarray, names: dict[int, dict], *, source: Path,
    warnings: list[str],
) -> list[Structure]:
    """Add every label of a label map on the image grid to ``seg`` (keeping label values)."""
    present = {int(v) for v in np.unique(labels) if v != 0}
    absent = sorted(v for v in names if v not in present)
    if absent:
        listed = ", ".join(f"{names[v]['name']} ({v})" for v in absent[:5])
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        warnings.append(
            f"{source.name}: named labels with no voxel in the label map: {listed}{more}.")
    if not present:
        warnings.append(f"{source.name}: the label map is empty (no structure added).")
        return []
    nonzero = labels != 0
    index = _free_layer(seg, nonzero, present)
    if max(present) > 255 and seg.layers[index].dtype == np.uint8:
        seg.layers[index] = seg.layers[index].astype(np.uint16)
    seg.layers[index][nonzero] = labels[nonzero]
    taken = set(seg.names())
    stem, added = _stem(source), []
    for value in sorted(present):
        info = names.get(value, {})
        default = stem if len(present) == 1 else f"{stem}_{value}"
        name = _unique_name(info.get("name", default), taken)
        taken.add(name)
        added.append(Structure(
            name=name, role=Role(info.get("role", "other")), label=value, layer=index,
            color=info.get("color"), margin_mm=float(info.get("margin_mm", 0.0)),
            description=info.get("description", ""),
        ))
    seg.structures.extend(added)
    return added


def add_seg_nrrd(seg: Segmentation, path: Path, *, warnings: list[str]) -> list[Structure]:
    """Add the segments of a 3D Slicer ``.seg.nrrd`` (its own names, colours, roles, margins)."""
    from surgiplan.io.seg_nrrd import read_seg_nrrd

    source = read_seg_nrrd(path)
    added: list[Structure] = []
    for n, layer in enumerate(source.layers):
        on_grid = label_map_onto_image(layer, source.geometry, seg.geometry, path=path,
                                       warnings_out=warnings if n == 0 else None)
        names = {
            s.label: {"name": s.name, "role": s.role.value, "color": s.color,
                      "margin_mm": s.margin_mm, "description": s.description}
            for s in source.structures if s.layer == n
        }
        added += add_label_map(seg, on_grid, names, source=path, warnings=warnings)
    return added


def build_twin(
    path: str | Path,
    *,
    series_uid: str | None = None,
    labels: Sequence[str | Path] = (),
    label_names: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Twin:
    """Build a twin from a scan (DICOM, NRRD or NIfTI) and optional label maps.

    Returns a twin whose ``provenance.import_warnings`` holds every warning (image import and
    label placement); ``patient_ref`` is the installation's pseudonym of the DICOM PatientID.
    """
    path = Path(path)
    names_path = Path(label_names) if label_names is not None else None
    label_files = [Path(p) for p in labels]
    for given in [*label_files, *([names_path] if names_path else [])]:
        if not given.is_file():
            raise BadInputError("no such file", path=given, action="Check the path")
    image = load_image(path, series_uid=series_uid, progress=_scaled(progress, 0.0, 0.6),
                       cancel=cancel)
    warnings = list(image.warnings)
    sources = list(image.metadata.get("files", []))
    report(progress, 0.6, "hashing source files")
    sha = hash_source_files(sources, path, cancel=cancel)
    sha.update(hash_source_files(label_files, path, cancel=cancel))
    seg = Segmentation(geometry=image.geometry)
    for n, label_file in enumerate(label_files):
        check(cancel)
        report(progress, 0.75 + 0.25 * n / max(1, len(label_files)), f"labels {label_file.name}")
        if label_file.name.lower().endswith(".seg.nrrd"):
            add_seg_nrrd(seg, label_file, warnings=warnings)
            continue
        array, geometry = read_label_map(label_file)
        on_grid = label_map_onto_image(array, geometry, image.geometry, path=label_file,
                                       warnings_out=warnings)
        add_label_map(seg, on_grid, _names_for(label_file, names_path), source=label_file,
                      warnings=warnings)
    patient = image.metadata.get("patient") or {}
    provenance = Provenance(
        source_series_uids=[image.series_uid] if image.series_uid else [],
        source_files_sha256=sha, import_warnings=warnings,
    )
    image.warnings = warnings
    report(progress, 1.0, "twin built")
    return Twin(image, seg, provenance=provenance,
                patient_ref=patient_pseudonym(str(patient.get("id") or "")))
