"""Slice geometry of a DICOM series from headers only: the grid the loaded volume will have.

Positions are projected on the slice normal n = row x col (ImageOrientationPatient) and sorted;
spacing is never a mean. Stacks that are regular keep their slices as the grid planes. Stacks
that are sheared (gantry tilt: ImagePositionPatient offsets not along n), non-uniform or missing
slices are mapped onto a regular grid aligned with the slice planes (direction [row, col, n])
covering the union of the slice footprints, with a slice step of at most the median step; the
loader fills it by linear interpolation between the bracketing slices. Huge gaps are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_header import FileHeader
from surgiplan.io.dicom_scan import SeriesInfo
from surgiplan.model.geometry import ImageGeometry

SAME_POSITION_MM = 0.01  # two slices closer than this along n share a position
UNIFORM_REL_TOL = 0.01  # steps within 1 % (and 0.01 mm) of the median are uniform
SHEAR_TOL_MM = 0.01  # in-plane offset counting as shear: this, or 2 % of a pixel if larger
SHEAR_TOL_PIXEL = 0.02
MISSING_FACTOR = 1.5  # gap > 1.5 x median step: missing slice(s)
REFUSE_FACTOR = 3.0  # gap > 3 x median step AND > REFUSE_MM: refuse the series
REFUSE_MM = 10.0
ORTHOGONAL_TOL = 0.01


@dataclass(frozen=True)
class SliceRef:
    """One source slice: a file (and frame, for multi-frame files) at an LPS position."""

    header: FileHeader
    frame: int
    position_lps: tuple[float, float, float]
    depth_mm: float  # position projected on the slice normal


@dataclass
class SeriesPlan:
    """How a series becomes a volume: target grid, sorted slices and their in-plane offsets."""

    geometry: ImageGeometry
    slices: list[SliceRef]
    offsets_mm: np.ndarray  # (n_slices, 2): slice origin - grid origin along (row, col), mm
    resample: bool  # False: slice k is grid plane k exactly
    warnings: list[str] = field(default_factory=list)


def _fail(series: SeriesInfo, problem: str, action: str, path: Path | None = None) -> None:
    raise BadInputError(problem, path=path or series.folder, action=action)


def _frame_axes(series: SeriesInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row, column and normal vectors (LPS) of the series' slices."""
    first = series.files[0]
    if first.orientation is None:
        _fail(series, f"{first.path.name} has no valid ImageOrientationPatient, so its slices "
              "cannot be placed in patient space", "Export the series again from the scanner "
              "or PACS with full geometry")
    iop = np.asarray(first.orientation, dtype=float)
    row, col = iop[:3], iop[3:]
    norms = np.linalg.norm(row), np.linalg.norm(col)
    if min(norms) < 0.5 or abs(row @ col) / (norms[0] * norms[1]) > ORTHOGONAL_TOL:
        _fail(series, f"{first.path.name} has an invalid ImageOrientationPatient "
              f"{list(first.orientation)} (not two orthogonal unit vectors)",
              "Export the series again from the scanner or PACS")
    row = row / norms[0]
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return row, col, np.cross(row, col)


def _pixel_spacing(series: SeriesInfo) -> tuple[float, float]:
    """(row spacing = y, column spacing = x) in mm, validated."""
    first = series.files[0]
    spacing = first.pixel_spacing_mm
    if spacing is None or min(spacing) <= 0:
        what = "no PixelSpacing" if spacing is None else f"PixelSpacing {list(spacing)} (<= 0)"
        _fail(series, f"{first.path.name} has {what}, so distances in the volume would be wrong",
              "Export the series again with PixelSpacing; SurgiPlan needs calibrated images")
    return float(spacing[0]), float(spacing[1])


def _slices(series: SeriesInfo, normal: np.ndarray) -> list[SliceRef]:
    out: list[SliceRef] = []
    for h in series.files:
        positions = h.frame_positions if h.is_enhanced else (h.position_lps,)
        if positions is None or any(p is None for p in positions):
            _fail(series, "has no valid ImagePositionPatient (missing or not 3 finite numbers), "
                  "so the slice cannot be placed in patient space",
                  "Export the series again from the scanner or PACS with full geometry",
                  path=h.path)
        for frame, pos in enumerate(positions):
            p = tuple(float(v) for v in pos)
            out.append(SliceRef(h, frame, p, float(np.asarray(p) @ normal)))
    out.sort(key=lambda s: (s.depth_mm, s.header.instance_number or 0, str(s.header.path),
                            s.frame))
    return out


def _dedupe(slices: list[SliceRef], warnings: list[str]) -> list[SliceRef]:
    """Drop repeated copies of one image; pick one of several images at one position."""
    kept: list[SliceRef] = []
    copies, clashes = [], []
    for s in slices:
        prev = kept[-1] if kept else None
        if prev is None or abs(s.depth_mm - prev.depth_mm) > SAME_POSITION_MM:
            kept.append(s)
            continue
        same = (s.header.sop_instance_uid == prev.header.sop_instance_uid
                and s.frame == prev.frame and s.header.sop_instance_uid)
        (copies if same else clashes).append((prev, s))
    if copies:
        names = ", ".join(s.header.path.name for _, s in copies[:3])
        warnings.append(f"{len(copies)} duplicate file(s) of the same image were ignored "
                        f"({names}{'...' if len(copies) > 3 else ''}).")
    if clashes:
        prev, s = clashes[0]
        warnings.append(
            f"{len(clashes)} position(s) hold two different images (e.g. {prev.header.path.name}"
            f" and {s.header.path.name} at {s.depth_mm:.2f} mm along the slice normal); kept "
            "the one with the lowest InstanceNumber. Check that the series is one stack.")
    return kept


def _check_gaps(series: SeriesInfo, slices: list[SliceRef], steps: np.ndarray,
                median: float) -> None:
    """Refuse a series with a gap so large that a volume would be misleading."""
    for k, step in enumerate(steps):
        if step > REFUSE_FACTOR * median and step > REFUSE_MM:
            a, b = slices[k], slices[k + 1]
            _fail(series, (
                f"gap of {step:.1f} mm between slices at {a.depth_mm:.2f} mm "
                f"({a.header.path.name}) and {b.depth_mm:.2f} mm ({b.header.path.name}) along "
                f"the slice normal, {step / median:.1f}x the usual {median:.2f} mm step; "
                "slices are missing and a volume would be misleading"),
                "Re-export the complete series, or load the parts on either side separately")


def _single_slice_step(series: SeriesInfo, warnings: list[str]) -> float:
    thickness = series.files[0].slice_thickness_mm
    if thickness and thickness > 0:
        warnings.append(f"Single slice: its thickness {thickness:g} mm (SliceThickness) is used "
                        "as the slice spacing.")
        return float(thickness)
    warnings.append("Single slice without SliceThickness: slice spacing set to 1 mm.")
    return 1.0


def plan_series(series: SeriesInfo) -> SeriesPlan:
    """The target grid and slice plan of a series, from headers only (raises BadInputError)."""
    if not series.files:
        _fail(series, "series has no files", "Choose another series")
    row, col, normal = _frame_axes(series)
    sy, sx = _pixel_spacing(series)
    warnings: list[str] = []
    slices = _dedupe(_slices(series, normal), warnings)
    first = np.asarray(slices[0].position_lps)
    rel = np.asarray([s.position_lps for s in slices]) - first
    offsets = np.stack([rel @ row, rel @ col], axis=1)
    _tilt_warning(series, warnings)
    if len(slices) == 1:
        step = _single_slice_step(series, warnings)
        geo = _grid(series, first, row, col, normal, (sx, sy, step), 1)
        return SeriesPlan(geo, slices, offsets, False, warnings)
    depths = np.asarray([s.depth_mm for s in slices])
    steps = np.diff(depths)
    median = float(np.median(steps))
    _check_gaps(series, slices, steps, median)
    uniform = bool(np.all(np.abs(steps - median) <= max(SAME_POSITION_MM,
                                                        UNIFORM_REL_TOL * median)))
    sheared = bool(np.max(np.abs(offsets)) > max(SHEAR_TOL_MM, SHEAR_TOL_PIXEL * min(sx, sy)))
    if uniform and not sheared:
        geo = _grid(series, first, row, col, normal, (sx, sy, median), len(slices))
        return SeriesPlan(geo, slices, offsets, False, warnings)
    return _resampled_plan(series, slices, offsets, (row, col, normal), (sx, sy), steps,
                           median, sheared, warnings)


def _tilt_warning(series: SeriesInfo, warnings: list[str]) -> None:
    tilt = series.files[0].gantry_tilt_deg
    if tilt:
        warnings.append(f"GantryDetectorTilt is {tilt:g} degrees.")


def _grid(series: SeriesInfo, origin: np.ndarray, row: np.ndarray, col: np.ndarray,
          normal: np.ndarray, spacing: tuple[float, float, float], nz: int,
          nx: int | None = None, ny: int | None = None) -> ImageGeometry:
    return ImageGeometry(
        size=(nx or series.columns, ny or series.rows, nz),
        spacing_mm=spacing,
        origin_lps=tuple(origin),
        direction=np.stack([row, col, normal], axis=1),
    )


def _resampled_plan(series: SeriesInfo, slices: list[SliceRef], offsets: np.ndarray,
                    axes: tuple[np.ndarray, np.ndarray, np.ndarray], pixel: tuple[float, float],
                    steps: np.ndarray, median: float, sheared: bool,
                    warnings: list[str]) -> SeriesPlan:
    row, col, normal = axes
    sx, sy = pixel
    pixel_mm = np.array([sx, sy])
    lo = np.floor(offsets.min(axis=0) / pixel_mm + 1e-6) * pixel_mm  # first slice on the lattice
    hi = offsets.max(axis=0) + np.array([(series.columns - 1) * sx, (series.rows - 1) * sy])
    nx = int(np.ceil((hi[0] - lo[0]) / sx - 1e-6)) + 1
    ny = int(np.ceil((hi[1] - lo[1]) / sy - 1e-6)) + 1
    length = float(slices[-1].depth_mm - slices[0].depth_mm)
    nz = int(np.ceil(length / median - 1e-6)) + 1
    step = length / (nz - 1)
    first = np.asarray(slices[0].position_lps)
    origin = first + row * lo[0] + col * lo[1]
    geo = _grid(series, origin, row, col, normal, (sx, sy, step), nz, nx, ny)
    reasons = []
    if sheared:
        shift = float(np.max(np.linalg.norm(offsets - offsets[0], axis=1)))
        reasons.append(f"slices are sheared (gantry tilt: in-plane offsets up to {shift:.1f} mm "
                       "between first and last slice)")
    if not np.all(np.abs(steps - median) <= max(SAME_POSITION_MM, UNIFORM_REL_TOL * median)):
        reasons.append(f"slice spacing is non-uniform ({steps.min():.2f} to {steps.max():.2f} "
                       f"mm, median {median:.2f} mm)")
    gaps = steps[steps > MISSING_FACTOR * median]
    if gaps.size:
        reasons.append(f"{gaps.size} gap(s) over {MISSING_FACTOR}x the median step (up to "
                       f"{gaps.max():.2f} mm; missing slices) are filled by interpolation")
    warnings.append(
        f"Resampled onto a regular grid aligned with the slice planes because "
        f"{'; '.join(reasons)}: {len(slices)} slices -> {nz} planes {step:.3f} mm apart, "
        f"{nx}x{ny} pixels (linear interpolation between neighbouring slices).")
    return SeriesPlan(geo, slices, offsets - lo, True, warnings)


def plan_series_geometry(series: SeriesInfo) -> tuple[ImageGeometry, list[str]]:
    """The exact grid ``load_series`` will produce, and the geometry warnings (headers only)."""
    plan = plan_series(series)
    return plan.geometry, list(plan.warnings)
