"""Load a DICOM series into an ImageVolume (LPS mm, real-world values: CT in HU).

``load_dicom(path)`` scans a folder/file/DICOMDIR and loads one image series;
``load_series(series)`` loads a series from a scan; ``plan_series_geometry(series)`` gives the
exact grid (and warnings) the loaded volume will have, from headers only. Everything that is
not a faithful regular stack is either resampled with a warning or refused with BadInputError.
A series holding several volumes at the same positions loads the one chosen with ``volume``
(1-based, listed by ``plan_series_volumes``), else the first, and the warnings say which.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_geometry import SeriesPlan, SliceRef, mirrored_axis, plan_series
from surgiplan.io.dicom_header import UNCOMPRESSED_SYNTAXES, FileHeader
from surgiplan.io.dicom_pixels import (
    check_declared,
    decode_file,
    output_dtype,
    read_stored_plane,
    rescale_into,
    stored_dtype,
    volume_bytes_check,
)
from surgiplan.io.dicom_scan import ScanProblem, ScanResult, SeriesInfo, scan_dicom
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken, ProgressCallback, check, report

DECODE_THREADS = 2


def _unique_headers(slices: list[SliceRef]) -> list[FileHeader]:
    seen: dict[Path, FileHeader] = {}
    for s in slices:
        seen.setdefault(s.header.path, s.header)
    return list(seen.values())


def _checked_plan(series: SeriesInfo, volume: int | None = None
                  ) -> tuple[SeriesPlan, np.dtype]:
    for h in series.files:
        check_declared(h)
    plan = plan_series(series, volume)
    headers = _unique_headers(plan.slices)
    dtype = output_dtype(headers)
    volume_bytes_check(headers, plan.geometry.n_voxels, dtype.itemsize)
    return plan, dtype


def plan_series_geometry(series: SeriesInfo, volume: int | None = None
                         ) -> tuple[ImageGeometry, list[str]]:
    """Grid and warnings of the volume ``load_series`` would build; BadInputError if it would
    refuse for a reason visible in the headers (geometry, dimensions, codec, truncation)."""
    plan, _ = _checked_plan(series, volume)
    return plan.geometry, list(plan.warnings)


def plan_series_volumes(series: SeriesInfo, volume: int | None = None) -> SeriesPlan:
    """The full plan (grid, warnings, the volumes a series holds and the chosen one)."""
    return _checked_plan(series, volume)[0]


# ------------------------------------------------------------------ decoding slices
def _is_fast(h: FileHeader) -> bool:
    return h.transfer_syntax in UNCOMPRESSED_SYNTAXES and (h.pixel_offset or -1) >= 0


Job = tuple[FileHeader, list[tuple[int, SliceRef]]]


def _file_jobs(slices: list[SliceRef]) -> list[Job]:
    """(header, [(plane index, slice)]) per file, in slice order."""
    jobs: dict[Path, Job] = {}
    for k, s in enumerate(slices):
        jobs.setdefault(s.header.path, (s.header, []))[1].append((k, s))
    return list(jobs.values())


def _put(target: np.ndarray, k: int, s: SliceRef, stored: np.ndarray, plan: SeriesPlan) -> None:
    """Rescale one stored frame (its tile, for a MOSAIC) into plane k, un-mirroring GE
    reversed-polarity images."""
    h = s.header
    if s.tile >= 0:
        rows, cols = plan.mosaics[h.path].tile_window(s.tile)
        stored = stored[rows, cols].copy()
    axis = mirrored_axis(h)
    if axis is not None:
        stored = np.flip(stored, axis=axis).copy()
    rescale_into(target[k], stored, h, s.rescale)


def _decode_job(job: Job, target: np.ndarray, plan: SeriesPlan) -> None:
    h, planes = job
    if _is_fast(h):
        scratch = np.empty((h.rows, h.columns), stored_dtype(h))
        last = -1  # frame held in scratch (tiles of one MOSAIC frame share one read)
        for k, s in planes:
            if s.frame != last:
                read_stored_plane(h, s.frame, scratch)
            _put(target, k, s, scratch, plan)
            last = s.frame if s.tile >= 0 else -1  # a whole frame was masked in place
        return
    frames = decode_file(h)
    for k, s in planes:
        plane = frames[s.frame] if frames.ndim == 3 else frames
        _put(target, k, s, plane.astype(stored_dtype(h), copy=True), plan)


def _decode_into(plan: SeriesPlan, target: np.ndarray, *,
                 progress: ProgressCallback | None, cancel: CancelToken | None,
                 share: float) -> None:
    """target[k] = real-world values of slice k (fast path sequential, codecs threaded)."""
    jobs = _file_jobs(plan.slices)
    done = 0

    def step(job: Job) -> None:
        nonlocal done
        check(cancel)
        _decode_job(job, target, plan)
        done += 1
        if done % 8 == 0 or done == len(jobs):
            report(progress, share * done / len(jobs), f"decoded {done}/{len(jobs)} files")

    if all(_is_fast(h) for h, _ in jobs):
        for job in jobs:
            step(job)
        return
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        list(pool.map(step, jobs))


# ------------------------------------------------------------------ resampling
def _shift_sampler(plan: SeriesPlan, source: np.ndarray, fill: float
                   ) -> Callable[[int], np.ndarray]:
    """Source slice a sampled on the target plane grid (bilinear, own in-plane position)."""
    from scipy.ndimage import affine_transform

    geo = plan.geometry
    sx, sy = geo.spacing_mm[0], geo.spacing_mm[1]
    shape = (geo.size[1], geo.size[0])
    cache: dict[int, np.ndarray] = {}

    def sample(a: int) -> np.ndarray:
        if a not in cache:
            if len(cache) >= 2:
                cache.pop(min(cache))
            du, dv = plan.offsets_mm[a]
            cache[a] = affine_transform(
                source[a].astype(np.float32), np.ones(2), offset=(-dv / sy, -du / sx),
                output_shape=shape, order=1, mode="constant", cval=fill, prefilter=False)
        return cache[a]

    return sample


def _resample(plan: SeriesPlan, source: np.ndarray, out: np.ndarray, *,
              cancel: CancelToken | None, progress: ProgressCallback | None) -> float:
    """Fill ``out`` on the plan's regular grid by linear interpolation between the bracketing
    slices along the normal; returns the fill value used outside every slice footprint."""
    depths = np.asarray([s.depth_mm for s in plan.slices]) - plan.slices[0].depth_mm
    fill = float(source.min())
    sample = _shift_sampler(plan, source, fill)
    step = plan.geometry.spacing_mm[2]
    nz = out.shape[0]
    for z in range(nz):
        check(cancel)
        t = min(z * step, depths[-1])
        b = int(np.clip(np.searchsorted(depths, t), 1, len(depths) - 1))
        a = b - 1
        w = (t - depths[a]) / (depths[b] - depths[a])
        plane = sample(a) if w < 1e-6 else (
            sample(b) if w > 1 - 1e-6 else (1 - w) * sample(a) + w * sample(b))
        if out.dtype.kind in "iu":
            plane = np.rint(plane)
        np.copyto(out[z], plane, casting="unsafe")
        report(progress, 0.6 + 0.4 * (z + 1) / nz, f"resampled plane {z + 1}/{nz}")
    return fill


# ------------------------------------------------------------------ public API
def load_series(
    series: SeriesInfo,
    *,
    volume: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageVolume:
    """Decode a scanned series onto the grid of :func:`plan_series_geometry` (LPS mm);
    ``volume`` (1-based) picks one of several volumes sharing slice positions."""
    plan, dtype = _checked_plan(series, volume)
    geo = plan.geometry
    warnings = list(series.warnings) + list(plan.warnings)
    if not plan.resample:
        array = np.empty(geo.shape_zyx, dtype)
        _decode_into(plan, array, progress=progress, cancel=cancel, share=1.0)
    else:
        source = np.empty((len(plan.slices), *plan.plane), dtype)
        _decode_into(plan, source, progress=progress, cancel=cancel, share=0.6)
        array = np.empty(geo.shape_zyx, dtype)
        fill = _resample(plan, source, array, cancel=cancel, progress=progress)
        del source
        warnings.append(f"Voxels outside every original slice were set to {fill:g}.")
    report(progress, 1.0, "loaded")
    center, width = series_window(plan.slices, array)
    return ImageVolume(
        array=array, geometry=geo, modality=series.modality, description=series.description,
        series_uid=series.series_uid, window_center=center, window_width=width,
        warnings=warnings, metadata=_metadata(series, plan))


# ------------------------------------------------------------------ default window
WINDOW_SHARE = 0.9  # at least 90 % of the slices must carry a window
WINDOW_MIN_WIDTH = 0.02  # ... whose median is at least 2 % of the volume's robust range wide
WINDOW_SAMPLE = 100_000


def robust_range(array: np.ndarray) -> tuple[float, float]:
    """0.5th and 99.5th percentiles of the whole volume's non-background voxels (a strided
    sample over every slice, never one slice)."""
    sample = array.reshape(-1)[:: max(1, array.size // WINDOW_SAMPLE)]
    body = sample[sample > sample.min()]
    lo, hi = np.percentile(body if body.size >= 100 else sample, [0.5, 99.5])
    return float(lo), float(max(hi, lo + 1.0))


def series_window(slices: list[SliceRef], array: np.ndarray) -> tuple[float | None, float | None]:
    """The series' own window: the median WindowCenter/Width over its slices (scanners that
    window every MR slice on its own give edge slices a narrow window on noise; the median
    ignores them), kept when nearly every slice has one and it is wide enough for, and
    overlaps, the whole volume's robust range; else (None, None), and viewers use the whole
    volume's histogram window. One edge slice's window is never taken for the series."""
    windows = [(s.header.window_center, s.header.window_width) for s in slices
               if s.header.window_center is not None and (s.header.window_width or 0) > 0]
    if not windows or len(windows) < WINDOW_SHARE * len(slices):
        return None, None
    center, width = (float(v) for v in np.median(np.asarray(windows), axis=0))
    lo, hi = robust_range(array)
    sane = width >= WINDOW_MIN_WIDTH * (hi - lo) and center - width / 2 < hi and (
        center + width / 2 > lo)
    return (center, width) if sane else (None, None)


def _metadata(series: SeriesInfo, plan: SeriesPlan) -> dict:
    return {
        "patient": {"name": series.patient_name, "id": series.patient_id,
                    "birth_date": series.patient_birth_date, "sex": series.patient_sex},
        "study": {"uid": series.study_uid, "description": series.study_description,
                  "date": series.study_date},
        "series_number": series.series_number,
        "files": [str(h.path) for h in _unique_headers(plan.slices)],
    }


def choose_series(scan: ScanResult, series_uid: str | None = None) -> tuple[SeriesInfo, str]:
    """The series to load and a note on the choice ('' when there was no choice)."""
    if not scan.series:
        raise BadInputError(f"no loadable image series found ({scan.summary()})", path=scan.root,
                            action="Choose a folder holding a CT or MR DICOM series")
    if series_uid:
        matches = [s for s in scan.series if series_uid in (s.key, s.series_uid)]
        if not matches:
            known = ", ".join(s.key for s in scan.series[:5])
            raise BadInputError(f"no series with UID {series_uid} (found: {known})",
                                path=scan.root, action="Use a UID listed by 'surgiplan info'")
        best = max(matches, key=lambda s: s.n_files)
        if len(matches) == 1:
            return best, ""
        return best, (f"Series {series_uid} was split into {len(matches)} parts; loaded part "
                      f"{best.part} ({best.n_files} files).")
    if len(scan.series) == 1:
        return scan.series[0], ""
    best = max(scan.series, key=lambda s: s.n_files)
    return best, (f"{len(scan.series)} image series were found; loaded the one with the most "
                  f"files: {best.key} '{best.description}' ({best.n_files} files). Pick "
                  "another by its series UID.")


def load_dicom(
    path: str | Path,
    *,
    series_uid: str | None = None,
    volume: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageVolume:
    """Scan ``path`` and load one image series: ``series_uid`` (a key or UID from the scan),
    else the only image series, else the one with the most files (noted in the warnings);
    ``volume`` (1-based) picks one of several volumes of that series (listed by
    ``surgiplan info``), else the first is loaded and the choice named in the warnings."""
    def scan_progress(f: float, text: str) -> None:
        report(progress, 0.1 * f, text)

    def load_progress(f: float, text: str) -> None:
        report(progress, 0.1 + 0.9 * f, text)

    scan = scan_dicom(path, progress=scan_progress if progress else None, cancel=cancel)
    series, note = choose_series(scan, series_uid)
    image = load_series(series, volume=volume, progress=load_progress if progress else None,
                        cancel=cancel)
    if note:
        image.warnings.insert(0, note)
    skipped = [p for p in scan.problems if not p.plainly_not_dicom]
    if skipped:
        image.warnings.append(_skipped_files_warning(skipped))
    return image


def _skipped_files_warning(problems: list[ScanProblem]) -> str:
    """One sentence naming the files the scan could not use (they may be missing slices)."""
    first = problems[0]
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return (f"{len(problems)} file(s) were skipped as unreadable, e.g. {first.path.name}: "
            f"{first.reason}{more}; if they belong to this series, slices are missing.")
