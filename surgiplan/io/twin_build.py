"""Build a structural twin from a scan and optional label maps.

The image comes from a DICOM folder / file / DICOMDIR (``load_dicom``) or from an NRRD / NIfTI
volume. Label inputs, each put onto the image grid (resampled with nearest-label interpolation
when their grid differs, with a warning; refused when they do not overlap):

* NRRD / NIfTI label maps: names from ``label_names`` (a ``surgiplan.labels/1`` or
  ``surgiplan.totalsegmentator/1`` JSON file, or a keyword such as ``totalsegmentator-v2``),
  else from a ``labels.json`` next to the label file, else names TotalSegmentator embedded in
  the NIfTI header, else the file name;
* a 3D Slicer ``.seg.nrrd`` and a DICOM SEG bring their own segment names and colours (and
  SurgiPlan's roles and margins when SurgiPlan wrote them);
* a DICOM RTSTRUCT: its ROI contours are rasterised onto the image grid;
* a folder of TotalSegmentator per-structure masks (``<class>.nii.gz``), named by file.

``preset`` then runs an assisted segmentation preset (``surgiplan.segmentation.presets``).
Provenance records the source series UIDs, the SHA-256 of every source file (keyed by path
relative to the input, so folder names that may hold a patient's name stay out of the case),
the software and every warning.
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
    label_names_from,
    read_label_map,
    read_label_names,
    read_volume_file,
)
from surgiplan.model.label_layer import LabelLayer
from surgiplan.model.structures import Role, Segmentation, Structure
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.twin import Provenance, Twin

LABEL_NAMES_FILE = "labels.json"


def _scaled(progress: ProgressCallback | None, start: float, stop: float):
    """A progress callback mapping [0, 1] onto [start, stop] of ``progress``."""
    if progress is None:
        return None
    return lambda fraction, text="": report(progress, start + (stop - start) * fraction, text)


def load_image(
    path: Path, *, series_uid: str | None = None, progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None, volume: int | None = None,
) -> ImageVolume:
    """The image volume at ``path``: NRRD/NIfTI by suffix, anything else as DICOM (``volume``:
    1-based choice among a DICOM series' volumes, as listed by ``surgiplan info``)."""
    if not path.exists():
        raise BadInputError("no such file or folder", path=path, action="Check the path")
    if path.is_file() and file_kind(path):
        array, geometry = read_volume_file(path)
        report(progress, 1.0, "image read")
        # No file name as description: names chosen by users may hold the patient's name.
        return ImageVolume(array=array, geometry=geometry, description="",
                           metadata={"files": [str(path)]})
    from surgiplan.io.dicom_load import load_dicom

    return load_dicom(path, series_uid=series_uid, volume=volume, progress=progress,
                      cancel=cancel)


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


def _names_for(label_file: Path, label_names: str | Path | None) -> dict[int, dict]:
    if label_names is not None:
        return label_names_from(label_names)
    sidecar = label_file.parent / LABEL_NAMES_FILE
    if sidecar.is_file():
        return read_label_names(sidecar)
    if file_kind(label_file) == "nifti":
        from surgiplan.io.totalsegmentator import embedded_label_names

        return embedded_label_names(label_file) or {}
    return {}


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
        if not (used & values) and not layer.any_in(nonzero):
            return n
    seg.layers.append(LabelLayer(seg.geometry.shape_zyx, np.uint8))
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
        on_grid = label_map_onto_image(np.asarray(layer), source.geometry, seg.geometry, path=path,
                                       warnings_out=warnings if n == 0 else None)
        names = {
            s.label: {"name": s.name, "role": s.role.value, "color": s.color,
                      "margin_mm": s.margin_mm, "description": s.description}
            for s in source.structures if s.layer == n
        }
        added += add_label_map(seg, on_grid, names, source=path, warnings=warnings)
    return added


def merge_segmentation(seg: Segmentation, other: Segmentation) -> list[Structure]:
    """Add every structure of ``other`` (same grid) to ``seg``, renaming clashes ``name (2)``."""
    taken, added = set(seg.names()), []
    for s in other.structures:
        name = _unique_name(s.name, taken)
        taken.add(name)
        added.append(seg.add(name, other.mask(s.name), role=s.role, color=s.color,
                             margin_mm=s.margin_mm, description=s.description))
    return added


def add_dicom_seg(seg: Segmentation, path: Path, *, warnings: list[str]) -> list[Structure]:
    """Add the segments of a DICOM SEG (names, colours; roles/margins if SurgiPlan wrote it)."""
    from surgiplan.io.dicom_seg import read_dicom_seg

    return merge_segmentation(seg, read_dicom_seg(path, seg.geometry, warnings_out=warnings))


def add_rtstruct(seg: Segmentation, path: Path, *, warnings: list[str]) -> list[Structure]:
    """Add the ROIs of a DICOM RTSTRUCT, rasterised onto the image grid."""
    from surgiplan.io.rtstruct import read_rtstruct

    return merge_segmentation(seg, read_rtstruct(path, seg.geometry, warnings_out=warnings))


def add_mask_folder(
    seg: Segmentation, folder: Path, *, warnings: list[str], cancel: CancelToken | None = None
) -> list[Structure]:
    """Add a folder of binary masks (TotalSegmentator layout), one structure per file name."""
    from surgiplan.io.totalsegmentator import mask_files, properties

    files = mask_files(folder)
    if not files:
        raise BadInputError("the folder holds no .nii.gz mask", path=folder,
                            action="Give TotalSegmentator's output folder or a label-map file")
    added: list[Structure] = []
    empty: list[str] = []
    taken = set(seg.names())
    for name, file in files:
        check(cancel)
        array, geometry = read_label_map(file)
        mask = label_map_onto_image((array != 0).astype(np.uint8), geometry, seg.geometry,
                                    path=file, warnings_out=warnings if not added else None)
        if not mask.any():
            empty.append(name)
            continue
        info = properties(name)
        unique = _unique_name(name, taken)
        taken.add(unique)
        added.append(seg.add(unique, mask != 0, role=info["role"], color=info["color"],
                             margin_mm=info["margin_mm"], description=info["description"]))
    if empty:
        warnings.append(f"{folder.name}: {len(empty)} empty mask file(s) skipped "
                        f"({', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}).")
    return added


def _dicom_kind(path: Path) -> str:
    """"SEG", "RTSTRUCT" or another modality of a DICOM file ('' when it is not DICOM)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True,
                             specific_tags=["Modality", "SOPClassUID"])
    except (pydicom.errors.InvalidDicomError, OSError, ValueError):
        return ""
    return str(ds.get("Modality", "")) or "?"


def add_label_input(
    seg: Segmentation, path: Path, *, label_names: str | Path | None, warnings: list[str],
    cancel: CancelToken | None = None,
) -> list[Structure]:
    """Add one label input (file or mask folder) of any supported kind to ``seg``."""
    if path.is_dir():
        return add_mask_folder(seg, path, warnings=warnings, cancel=cancel)
    if path.name.lower().endswith(".seg.nrrd"):
        return add_seg_nrrd(seg, path, warnings=warnings)
    if file_kind(path):
        array, geometry = read_label_map(path)
        on_grid = label_map_onto_image(array, geometry, seg.geometry, path=path,
                                       warnings_out=warnings)
        return add_label_map(seg, on_grid, _names_for(path, label_names), source=path,
                             warnings=warnings)
    kind = _dicom_kind(path)
    if kind == "SEG":
        return add_dicom_seg(seg, path, warnings=warnings)
    if kind == "RTSTRUCT":
        return add_rtstruct(seg, path, warnings=warnings)
    what = f"a DICOM {kind} object" if kind else "not a label file SurgiPlan reads"
    raise BadInputError(what, path=path,
                        action="Give an NRRD/NIfTI label map, a .seg.nrrd, a DICOM SEG or "
                        "RTSTRUCT, or a folder of TotalSegmentator masks")


def apply_named_preset(
    twin: Twin, preset: str, *, progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Run an assisted segmentation preset on the twin; returns the structures it made."""
    from surgiplan.segmentation.presets import apply_preset

    return apply_preset(twin, preset, progress=progress, cancel=cancel)


def _check_preset(preset: str) -> None:
    from surgiplan.segmentation.presets import PRESETS

    if preset not in PRESETS:
        raise BadInputError(f"unknown segmentation preset {preset!r}",
                            action=f"Use one of {', '.join(PRESETS)}")


def build_twin(
    path: str | Path,
    *,
    series_uid: str | None = None,
    labels: Sequence[str | Path] = (),
    label_names: str | Path | None = None,
    preset: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    volume: int | None = None,
) -> Twin:
    """Build a twin from a scan (DICOM, NRRD or NIfTI), optional label inputs and a preset.

    ``labels``: label maps, ``.seg.nrrd``, DICOM SEG / RTSTRUCT files or TotalSegmentator mask
    folders. ``label_names``: a label-names JSON file or a keyword (``totalsegmentator-v2``).
    Returns a twin whose ``provenance.import_warnings`` holds every warning (image import and
    label placement); ``patient_ref`` is the installation's pseudonym of the DICOM PatientID.
    """
    path = Path(path)
    label_files = [Path(p) for p in labels]
    for given in label_files:
        if not given.exists():
            raise BadInputError("no such file or folder", path=given, action="Check the path")
    if preset:
        _check_preset(preset)
    if label_names is not None and not Path(label_names).is_file():
        label_names_from(label_names)  # a keyword, or a one-line error naming the file
    image = load_image(path, series_uid=series_uid, progress=_scaled(progress, 0.0, 0.5),
                       cancel=cancel, volume=volume)
    warnings = list(image.warnings)
    sources = list(image.metadata.get("files", []))
    report(progress, 0.5, "hashing source files")
    sha = hash_source_files(sources, path, cancel=cancel)
    sha.update(hash_source_files(_files_in(label_files), path, cancel=cancel))
    seg = Segmentation(geometry=image.geometry)
    automatic: dict[str, str] = {}  # structure -> method, for the provenance
    for n, label_file in enumerate(label_files):
        check(cancel)
        report(progress, 0.6 + 0.2 * n / max(1, len(label_files)), f"labels {label_file.name}")
        before = set(seg.names())
        add_label_input(seg, label_file, label_names=label_names, warnings=warnings,
                        cancel=cancel)
        automatic.update({s.name: f"TotalSegmentator output imported from {label_file.name}"
                          for s in seg.structures
                          if s.name not in before and s.description == "TotalSegmentator"})
    patient = image.metadata.get("patient") or {}
    provenance = Provenance(
        source_series_uids=[image.series_uid] if image.series_uid else [],
        source_files_sha256=sha, import_warnings=warnings,
    )
    image.warnings = warnings
    twin = Twin(image, seg, provenance=provenance,
                patient_ref=patient_pseudonym(str(patient.get("id") or "")))
    for name, method in automatic.items():
        twin.provenance.record_automatic(name, method)
    if preset:
        made = apply_named_preset(twin, preset, progress=_scaled(progress, 0.8, 1.0),
                                  cancel=cancel)
        twin.provenance.notes.append(f"preset {preset}: {', '.join(made)} (starting points "
                                     "to correct, not a finished segmentation)")
        twin.provenance.notes += [f"automatic structure {name}: quality unreviewed; method: "
                                  f"{twin.segmentation.get(name).description}"
                                  for name in made]
    report(progress, 1.0, "twin built")
    return twin


def _files_in(inputs: Sequence[Path]) -> list[Path]:
    """The files of the label inputs (folders expanded to their mask files)."""
    out: list[Path] = []
    for p in inputs:
        out += sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    return out
