"""One header-only pass over a folder, a file or a DICOMDIR: series, non-image objects, problems.

Files are grouped into series by SeriesInstanceUID, then split into sub-series when the files
of one UID differ in orientation, rows/columns or pixel spacing (reported as a warning). Several
volumes at the same positions (echoes, time points, b-values, magnitude/phase) stay one series:
``dicom_geometry`` tells them apart and lets the caller pick one. Nothing here decodes pixels;
bad files become ``problems`` and never abort the scan. Vendor index files (Philips DIRFILE)
are listed as non-image objects, not as unreadable files.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_header import FileHeader, HeaderError, read_header, unknown_charsets
from surgiplan.progress import CancelToken, ProgressCallback, check, report

# Modalities that are never a volume to load, whatever pixels they hold.
NON_IMAGE_MODALITIES = {"SR", "PR", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "RTIMAGE",
                        "SEG", "KO", "REG", "DOC", "FID", "PLAN", "RWV", "AU", "ECG", "HD"}
# Files that sit next to DICOM series without being DICOM (label maps, notes, exports).
NON_DICOM_SUFFIXES = {".nrrd", ".nhdr", ".nii", ".gz", ".json", ".txt", ".md", ".csv", ".xml",
                      ".png", ".jpg", ".jpeg", ".pdf", ".html", ".zip", ".surgiplan", ".mrk"}
ORIENTATION_TOL = 1e-3  # direction cosines
SPACING_TOL_MM = 1e-3
# Vendor index files kept beside the images (Philips DIRFILE): not images, not damage.
INDEX_FILE_NAMES = {"DIRFILE": "Philips DIRFILE index"}


@dataclass
class SeriesInfo:
    """An image series (or a split part of one) ready for geometry planning and loading."""

    series_uid: str
    modality: str
    description: str
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_uid: str
    study_description: str
    study_date: str
    series_number: int | None
    rows: int
    columns: int
    files: list[FileHeader]
    warnings: list[str] = field(default_factory=list)
    part: int = 0  # 1, 2, ... when one SeriesInstanceUID was split into several sub-series

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def key(self) -> str:
        """Unique id within a scan: the series UID, plus ``#part`` for split series."""
        return f"{self.series_uid}#{self.part}" if self.part else self.series_uid

    @property
    def folder(self) -> Path:
        """Deepest folder holding all the files."""
        return Path(os.path.commonpath([str(f.path.parent) for f in self.files]))


@dataclass(frozen=True)
class NonImageObject:
    """A DICOM object that is not a loadable volume (SR, PR, RTSTRUCT, SEG, KO, ...)."""

    path: Path
    kind: str
    sop_class: str
    series_uid: str
    description: str


@dataclass(frozen=True)
class ScanProblem:
    """A file that could not be read as DICOM, with a one-line reason."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @property
    def plainly_not_dicom(self) -> bool:
        """A file with a non-DICOM extension that is not DICOM (a label map, notes, an export
        next to the series): not a damaged file and not a sign of a missing slice."""
        return (self.reason.startswith("not a DICOM file")
                and self.path.suffix.lower() in NON_DICOM_SUFFIXES)


@dataclass
class ScanResult:
    root: Path
    series: list[SeriesInfo] = field(default_factory=list)
    non_image: list[NonImageObject] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    n_files: int = 0

    def summary(self) -> str:
        """What was found, in one line (for error messages)."""
        kinds = Counter(o.kind for o in self.non_image)
        parts = [f"{len(self.series)} image series"]
        parts += [f"{n} {kind} object(s)" for kind, n in sorted(kinds.items())]
        parts.append(f"{len(self.problems)} unreadable/non-DICOM file(s)")
        if self.problems:
            first = self.problems[0]
            parts.append(f"first problem: {first.path.name}: {first.reason}")
        return ", ".join(parts)


# ------------------------------------------------------------------ file discovery
def _walk_folder(root: Path, problems: list[ScanProblem]) -> Iterator[Path]:
    seen_dirs: set[str] = set()

    def on_error(exc: OSError) -> None:
        problems.append(ScanProblem(Path(exc.filename or root), f"cannot list folder ({exc})"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            problems.append(ScanProblem(Path(dirpath), "symlink loop (folder already scanned); "
                                        "skipped"))
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _dicomdir_files(path: Path, problems: list[ScanProblem]) -> list[Path]:
    """Files a DICOMDIR references; missing ones are recorded as one problem."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
        records = list(ds.get("DirectoryRecordSequence") or [])
    except Exception as exc:  # pydicom raises many types on damaged files
        problems.append(ScanProblem(path, f"damaged DICOMDIR ({type(exc).__name__})"))
        return []
    found: list[Path] = []
    missing: list[Path] = []
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        target = path.parent.joinpath(*parts)
        (found if target.is_file() else missing).append(target)
    if missing:
        problems.append(ScanProblem(path, (
            f"DICOMDIR references {len(missing)} missing file(s), first "
            f"{missing[0].relative_to(path.parent)}; copy the complete disc/folder")))
    return found


def _is_dicomdir_name(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


def _candidate_files(root: Path, problems: list[ScanProblem]) -> list[Path]:
    if root.is_dir():
        files = list(_walk_folder(root, problems))
        out: list[Path] = []
        for path in files:
            if _is_dicomdir_name(path):
                _dicomdir_files(path, problems)  # only to report missing references
            else:
                out.append(path)
        return out
    if _is_dicomdir_name(root) or _is_dicomdir_content(root):
        return _dicomdir_files(root, problems)
    return [root]


def _is_dicomdir_content(path: Path) -> bool:
    try:
        read_header(path)
    except HeaderError as exc:
        return str(exc) == "is a DICOMDIR index"
    return False


# ------------------------------------------------------------------ grouping
def _is_image(h: FileHeader) -> bool:
    return h.has_pixels and h.modality.upper() not in NON_IMAGE_MODALITIES


def _is_damaged_image(h: FileHeader) -> bool:
    """A file without pixel data that is not recognisably a non-image object (SR, RTSTRUCT,
    SEG, ... by Modality or a known SOP class): an image whose header or pixels are damaged."""
    from pydicom.uid import UID

    if h.has_pixels or h.modality.upper() in NON_IMAGE_MODALITIES:
        return False
    sop_name = UID(h.sop_class_uid).name if h.sop_class_uid else ""
    known = bool(sop_name) and sop_name != h.sop_class_uid
    return not known or sop_name.endswith("Image Storage")


def _non_image(h: FileHeader) -> NonImageObject:
    from pydicom.uid import UID

    sop_name = UID(h.sop_class_uid).name if h.sop_class_uid else "unknown SOP class"
    kind = h.modality.upper() or sop_name
    if not h.has_pixels and h.modality.upper() not in NON_IMAGE_MODALITIES:
        kind = f"{kind} without pixel data"
    return NonImageObject(h.path, kind, sop_name, h.series_uid, h.series_description)


def _close(a: tuple[float, ...] | None, b: tuple[float, ...] | None, tol: float) -> bool:
    if a is None or b is None:
        return a is b
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def _same_grid(a: FileHeader, b: FileHeader) -> bool:
    return (a.rows, a.columns) == (b.rows, b.columns) and _close(
        a.orientation, b.orientation, ORIENTATION_TOL) and _close(
        a.pixel_spacing_mm, b.pixel_spacing_mm, SPACING_TOL_MM)


def _grid_label(h: FileHeader) -> str:
    ori = "none" if h.orientation is None else ",".join(f"{v:.3f}" for v in h.orientation)
    sp = "none" if h.pixel_spacing_mm is None else "x".join(f"{v:g}" for v in h.pixel_spacing_mm)
    return f"{h.columns}x{h.rows} px, spacing {sp} mm, orientation [{ori}]"


def _split_by_grid(files: list[FileHeader]) -> list[list[FileHeader]]:
    groups: list[list[FileHeader]] = []
    for h in files:
        for group in groups:
            if _same_grid(group[0], h):
                group.append(h)
                break
        else:
            groups.append([h])
    return groups


def _series_from(files: list[FileHeader], part: int) -> SeriesInfo:
    h = files[0]
    return SeriesInfo(
        series_uid=h.series_uid, modality=h.modality or "OT", description=h.series_description,
        patient_name=h.patient_name, patient_id=h.patient_id,
        patient_birth_date=h.patient_birth_date, patient_sex=h.patient_sex,
        study_uid=h.study_uid, study_description=h.study_description, study_date=h.study_date,
        series_number=h.series_number, rows=h.rows, columns=h.columns, files=files, part=part)


def _header_warnings(files: list[FileHeader]) -> list[str]:
    out: list[str] = []
    charsets = sorted({t for h in files for t in unknown_charsets(h)})
    if charsets:
        out.append(f"Unknown SpecificCharacterSet {', '.join(charsets)}: text such as the "
                   "patient name was decoded with the default character set and may be wrong.")
    invalid = Counter(msg for h in files for msg in h.invalid)
    for msg, n in sorted(invalid.items()):
        out.append(f"Invalid header value in {n} file(s): {msg}.")
    if not files[0].series_uid:
        out.append("Files have no SeriesInstanceUID; they were grouped together.")
    return out


def group_series(headers: list[FileHeader]) -> list[SeriesInfo]:
    """Group image headers into (sub-)series; splits are explained in each part's warnings."""
    by_uid: dict[str, list[FileHeader]] = {}
    for h in headers:
        by_uid.setdefault(h.series_uid, []).append(h)
    series: list[SeriesInfo] = []
    for uid, files in by_uid.items():
        parts: list[tuple[list[FileHeader], str]] = []
        grids = _split_by_grid(files)
        for grid in grids:
            reason = ""
            if len(grids) > 1:
                reason = (f"its files differ in orientation, size or pixel spacing; this part: "
                          f"{_grid_label(grid[0])}")
            parts.append((grid, reason))
        for i, (stack, reason) in enumerate(parts, start=1):
            info = _series_from(stack, i if len(parts) > 1 else 0)
            if len(parts) > 1:
                info.warnings.append(
                    f"Series {uid or '(no UID)'} was split into {len(parts)} sub-series because "
                    f"{reason}; this is part {i} with {len(stack)} file(s).")
            info.warnings += _header_warnings(stack)
            series.append(info)
    series.sort(key=lambda s: (s.patient_id, s.study_uid, s.series_number or 0, s.series_uid,
                               s.part))
    return series


# ------------------------------------------------------------------ public entry point
def scan_dicom(
    path: str | Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ScanResult:
    """Scan a folder (recursively), one file or a DICOMDIR, reading headers only.

    Raises BadInputError only when ``path`` itself does not exist; everything else found is
    reported in the result (series, non-image objects, problems).
    """
    root = Path(path)
    if not root.exists():
        raise BadInputError("no such file or folder", path=root,
                            action="Check the path of the DICOM folder")
    result = ScanResult(root=root)
    files = _candidate_files(root, result.problems)
    result.n_files = len(files)
    headers = _read_headers(files, result, progress=progress, cancel=cancel)
    damaged = [h for h in headers if _is_damaged_image(h)]
    result.problems += [ScanProblem(h.path, "image object without readable pixel data "
                                    "(damaged or incomplete file)") for h in damaged]
    rest = [h for h in headers if not _is_damaged_image(h)]
    result.series = group_series([h for h in rest if _is_image(h)])
    result.non_image += [_non_image(h) for h in rest if not _is_image(h)]
    return result


def _read_headers(
    files: list[Path],
    result: ScanResult,
    *,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> list[FileHeader]:
    headers: list[FileHeader] = []
    step = max(1, len(files) // 100)
    for i, path in enumerate(files):
        if i % step == 0:
            check(cancel)
            report(progress, i / max(1, len(files)), f"reading headers {i}/{len(files)}")
        if path.name.upper() in INDEX_FILE_NAMES:
            kind = INDEX_FILE_NAMES[path.name.upper()]
            result.non_image.append(NonImageObject(path, kind, "", "", "index file"))
            continue
        try:
            header = read_header(path)
            if not (header.sop_class_uid or header.modality or header.has_pixels):
                raise HeaderError("damaged DICOM: no SOPClassUID, Modality or pixel data found")
            headers.append(header)
        except HeaderError as exc:
            if str(exc) == "is a DICOMDIR index":
                _dicomdir_files(path, result.problems)
                continue
            result.problems.append(ScanProblem(path, str(exc)))
    report(progress, 1.0, f"read {len(files)} headers")
    return headers

