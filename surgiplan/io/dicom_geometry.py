"""Slice geometry of a DICOM series from headers only: the grid the loaded volume will have.

Positions are projected on the slice normal n = row x col (ImageOrientationPatient) and sorted;
spacing is never a mean. Stacks that are regular keep their slices as the grid planes. Stacks
that are sheared (gantry tilt: ImagePositionPatient offsets not along n), non-uniform or missing
slices are mapped onto a regular grid aligned with the slice planes (direction [row, col, n])
covering the union of the slice footprints, with a slice step of at most the median step
(within 1 %); the loader fills it by linear interpolation between the bracketing slices. Huge
gaps are refused.

Files become slices first: a classic file is one slice, an enhanced multi-frame file one slice
per frame, a Siemens MOSAIC one slice per tile (``dicom_mosaic``), a classic multi-frame file
one slice per frame only when GridFrameOffsetVector places its frames (else it is refused).
Slices that share positions are split into volumes by the attributes that tell them apart
(image type, echo, b-value, time, acquisition); one volume is loaded and the choice is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_header import FileHeader
from surgiplan.io.dicom_mosaic import MosaicLayout, mosaic_layout
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
GRID_FRAME_OFFSET = 0x3004000C  # FrameIncrementPointer value naming GridFrameOffsetVector
# Attributes that tell volumes at the same slice positions apart, in the order they are tried.
VOLUME_ATTRIBUTES = ("image type", "echo", "echo time ms", "b-value", "direction", "time",
                     "acquisition", "dimension index")
UNITS = {"echo time ms": ("echo time", " ms"), "b-value": ("b-value", " s/mm2")}
MAX_LISTED_VOLUMES = 8


@dataclass(frozen=True)
class SliceRef:
    """One source slice: a file (and frame, for multi-frame files) at an LPS position."""

    header: FileHeader
    frame: int
    position_lps: tuple[float, float, float]
    depth_mm: float  # position projected on the slice normal
    tile: int = -1  # MOSAIC tile index (-1: the whole frame)
    attrs: tuple[tuple[str, Any], ...] = ()  # volume attributes (image type, echo, ...)

    @property
    def rescale(self) -> tuple[float, float]:
        """(slope, intercept) of this slice's frame."""
        return self.header.frame_rescale(self.frame)


@dataclass(frozen=True)
class VolumeChoice:
    """One of several volumes sharing slice positions in a series (1-based index)."""

    index: int
    label: str
    n_slices: int


@dataclass
class SeriesPlan:
    """How a series becomes a volume: target grid, sorted slices and their in-plane offsets."""

    geometry: ImageGeometry
    slices: list[SliceRef]
    offsets_mm: np.ndarray  # (n_slices, 2): slice origin - grid origin along (row, col), mm
    resample: bool  # False: slice k is grid plane k exactly
    warnings: list[str] = field(default_factory=list)
    plane: tuple[int, int] = (0, 0)  # (rows, columns) of one source slice
    mosaics: dict[Path, MosaicLayout] = field(default_factory=dict)
    volumes: list[VolumeChoice] = field(default_factory=list)
    volume: int = 1


def _fail(series: SeriesInfo, problem: str, action: str,
          path: Path | None = None) -> NoReturn:
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


def classic_attrs(h: FileHeader) -> tuple[tuple[str, Any], ...]:
    """Volume attributes of a single-frame file, as (name, value) pairs."""
    image_type = "\\".join(h.image_type.split("\\")[2:]) if h.image_type else None
    pairs = (("image type", image_type or None), ("echo", h.echo_number),
             ("b-value", h.b_value), ("time", h.temporal_position),
             ("acquisition", h.acquisition_number))
    return tuple((k, v) for k, v in pairs if v is not None)


def _no_position(series: SeriesInfo, h: FileHeader) -> NoReturn:
    _fail(series, "has no valid ImagePositionPatient (missing or not 3 finite numbers), "
          "so the slice cannot be placed in patient space",
          "Export the series again from the scanner or PACS with full geometry", path=h.path)


def _classic_frame_positions(series: SeriesInfo, h: FileHeader,
                             normal: np.ndarray) -> list[tuple[float, float, float]]:
    """Frame positions of a classic (non-enhanced) multi-frame file: only GridFrameOffsetVector
    places frames; anything else is refused rather than guessed."""
    offsets = h.grid_frame_offsets
    if h.frame_increment == GRID_FRAME_OFFSET and offsets and len(offsets) == h.frames:
        first = np.asarray(h.position_lps)
        base = 0.0 if offsets[0] == 0 else float(first @ normal)
        if offsets[0] == 0 or abs(offsets[0] - base) <= SAME_POSITION_MM:
            return [tuple(first + (o - offsets[0]) * normal) for o in offsets]
    _fail(series, (
        f"classic multi-frame image with {h.frames} frames but one ImagePositionPatient: the "
        "position of every frame after the first is not recorded, so the frames cannot be "
        "placed"), "Export the series as single-frame files or as an enhanced multi-frame "
        "object (per-frame positions)", path=h.path)
    return []


def _file_slices(series: SeriesInfo, h: FileHeader, axes: tuple[np.ndarray, ...],
                 mosaics: dict[Path, MosaicLayout]) -> list[SliceRef]:
    normal = axes[2]
    if h.is_enhanced:
        positions = list(h.frame_positions or ())
        if any(p is None for p in positions):
            _no_position(series, h)
        frame_attrs = h.frame_attrs or ((),) * len(positions)
        return [SliceRef(h, f, _xyz(p), float(np.asarray(p) @ normal),
                         attrs=frame_attrs[f]) for f, p in enumerate(positions)]
    if h.position_lps is None:
        _no_position(series, h)
    attrs = classic_attrs(h)
    if "MOSAIC" in h.image_type.split("\\") and not h.is_mosaic:
        _fail(series, "ImageType says MOSAIC but the Siemens NumberOfImagesInMosaic "
              "(0019,100A) is missing, so the tiles cannot be unpacked",
              "Convert the series with dcm2niix", path=h.path)
    if h.is_mosaic:
        layout = mosaics[h.path] = _cached_layout(h, axes, mosaics)
        return [SliceRef(h, 0, (p := layout.position(t)), float(np.asarray(p) @ normal),
                         tile=t, attrs=attrs) for t in range(layout.tiles)]
    if h.frames > 1:
        return [SliceRef(h, f, p, float(np.asarray(p) @ normal), attrs=attrs)
                for f, p in enumerate(_classic_frame_positions(series, h, normal))]
    p = _xyz(h.position_lps)
    return [SliceRef(h, 0, p, float(np.asarray(p) @ normal), attrs=attrs)]


def _xyz(p: Sequence[float]) -> tuple[float, float, float]:
    """A validated 3-number DICOM position as a float triple (LPS mm)."""
    return float(p[0]), float(p[1]), float(p[2])


def _mosaic_key(h: FileHeader) -> tuple:
    """The header facts a MOSAIC layout depends on (shared by the files of one run)."""
    return (h.position_lps, h.orientation, h.rows, h.columns, h.mosaic_tiles,
            h.pixel_spacing_mm, h.spacing_between_slices_mm, h.slice_thickness_mm,
            h.series_uid)


def _cached_layout(h: FileHeader, axes: tuple[np.ndarray, ...],
                   mosaics: dict[Path, MosaicLayout]) -> MosaicLayout:
    """The layout of an earlier file of the same run (an fMRI run holds hundreds of mosaics
    with one geometry; their CSA is read once), else this file's own."""
    key = _mosaic_key(h)
    for layout in mosaics.values():
        if layout.key == key:
            return layout
    return mosaic_layout(h, axes[0], axes[1], axes[2], key=key)


def _slices(series: SeriesInfo, axes: tuple[np.ndarray, ...],
            mosaics: dict[Path, MosaicLayout]) -> list[SliceRef]:
    out = [s for h in series.files for s in _file_slices(series, h, axes, mosaics)]
    out.sort(key=lambda s: (s.depth_mm, s.header.instance_number or 0, str(s.header.path),
                            s.frame, s.tile))
    return out


# ------------------------------------------------------------------ volumes
def _identity(s: SliceRef) -> tuple:
    return (s.header.sop_instance_uid or str(s.header.path), s.frame, s.tile)


def _has_repeats(slices: list[SliceRef]) -> bool:
    """Two different images at one position (copies of one image do not count)."""
    seen: dict[tuple, tuple] = {}
    for s in slices:
        pos = tuple(round(v / SAME_POSITION_MM) for v in s.position_lps)
        if seen.setdefault(pos, _identity(s)) != _identity(s):
            return True
    return False


def _groups(slices: list[SliceRef], names: list[str]) -> dict[tuple, list[SliceRef]]:
    out: dict[tuple, list[SliceRef]] = {}
    for s in slices:
        attrs = dict(s.attrs)
        out.setdefault(tuple(attrs.get(n) for n in names), []).append(s)
    return out


def _separating(slices: list[SliceRef]) -> list[str]:
    """The attributes (fewest, in VOLUME_ATTRIBUTES order) that leave no repeated positions
    within any group; [] when positions do not repeat or nothing separates them."""
    if not _has_repeats(slices):
        return []
    chosen: list[str] = []
    for name in VOLUME_ATTRIBUTES:
        if len({dict(s.attrs).get(name) for s in slices}) < 2:
            continue
        chosen.append(name)
        groups = _groups(slices, chosen)
        if not any(_has_repeats(g) for g in groups.values()):
            # volumes of about one slice each (e.g. an AcquisitionNumber per slice) are no
            # volumes: the repeated positions are left to _dedupe, which names them
            return chosen if 2 * len(groups) <= len(slices) else []
    return []


def _label(names: list[str], key: tuple) -> str:
    parts = []
    for name, value in zip(names, key, strict=True):
        title, unit = UNITS.get(name, (name, ""))
        text = "none" if value is None else f"{value:g}" if isinstance(value, float) else value
        parts.append(f"{title} {text}{unit if value is not None else ''}")
    return ", ".join(parts)


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in key)


def split_volumes(slices: list[SliceRef]) -> tuple[list[VolumeChoice], list[list[SliceRef]],
                                                      list[str]]:
    """Volumes of a series' slices: (choices, slices per volume, separating attributes)."""
    names = _separating(slices)
    if not names:
        return [VolumeChoice(1, "", len(slices))], [slices], []
    groups = sorted(_groups(slices, names).items(), key=lambda kv: _sort_key(kv[0]))
    choices = [VolumeChoice(i, _label(names, key), len(g))
               for i, (key, g) in enumerate(groups, start=1)]
    return choices, [g for _, g in groups], names


def _choose_volume(series: SeriesInfo, slices: list[SliceRef], volume: int | None,
                   warnings: list[str]) -> tuple[list[SliceRef], list[VolumeChoice], int]:
    choices, parts, names = split_volumes(slices)
    listed = "; ".join(f"{c.index} = {c.label} ({c.n_slices} slices)"
                       for c in choices[:MAX_LISTED_VOLUMES])
    if len(choices) > MAX_LISTED_VOLUMES:
        listed += f"; ... ({len(choices)} in all)"
    if volume is not None and not 1 <= volume <= len(choices):
        _fail(series, f"volume {volume} does not exist: the series holds {len(choices)} "
              f"volume(s){': ' + listed if names else ''}",
              "Choose a volume listed by 'surgiplan info'")
    index = volume or 1
    if len(choices) > 1:
        how = " as chosen" if volume else "; choose another with --volume N"
        told = " and ".join(UNITS.get(n, (n,))[0] for n in names)
        warnings.append(
            f"This series holds {len(choices)} volumes at the same slice positions, told apart "
            f"by {told}: {listed}. Volume {index} ({choices[index - 1].label}) was "
            f"loaded{how}.")
    return parts[index - 1], choices, index


def _dedupe(slices: list[SliceRef], warnings: list[str]) -> list[SliceRef]:
    """Drop repeated copies of one image; pick one of several images at one position."""
    kept: list[SliceRef] = []
    copies: list[tuple[SliceRef, SliceRef]] = []
    clashes: list[tuple[SliceRef, SliceRef]] = []
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


def mirrored_axis(h: FileHeader) -> int | None:
    """Plane axis (0 = rows, 1 = columns) a GE epi_pepolar reversed-polarity image stores
    mirrored along its phase-encoding direction (dcm2niix flips it back), else None."""
    if not (h.manufacturer.upper().startswith("GE") and "EPI_PEPOLAR" in h.ge_sequence.upper()):
        return None
    if h.phase_reordering.upper() != "REVERSE_LINEAR":
        return None
    return 1 if h.phase_direction.upper() == "ROW" else 0


def _vendor_checks(series: SeriesInfo, slices: list[SliceRef], warnings: list[str]) -> None:
    """GE epi_pepolar: mirrored reversed-polarity images are flipped back (with a warning);
    a polarity that cannot be read is refused."""
    headers = {s.header.path: s.header for s in slices}.values()
    pepolar = [h for h in headers if h.manufacturer.upper().startswith("GE")
               and "EPI_PEPOLAR" in h.ge_sequence.upper()]
    unknown = [h for h in pepolar if h.phase_reordering.upper() not in ("LINEAR",
                                                                       "REVERSE_LINEAR")]
    if unknown:
        _fail(series, "GE epi_pepolar image without RectilinearPhaseEncodeReordering "
              "(0018,9034): its reversed-polarity volumes are stored mirrored and this one "
              "cannot be told apart", "Convert the series with dcm2niix", path=unknown[0].path)
    flipped = [h for h in pepolar if mirrored_axis(h) is not None]
    if flipped:
        axis = "front-to-back (rows)" if mirrored_axis(flipped[0]) == 0 else "columns"
        warnings.append(
            f"{len(flipped)} GE epi_pepolar reversed-polarity (REVERSE_LINEAR) file(s) store "
            f"the image mirrored along the phase-encoding direction; flipped back {axis}, as "
            "dcm2niix does.")


def _plane(series: SeriesInfo, mosaics: dict[Path, MosaicLayout]) -> tuple[int, int]:
    """(rows, columns) of one source slice: a MOSAIC tile, or the stored frame."""
    layouts = {(m.tile_rows, m.tile_columns) for m in mosaics.values()}
    if len(layouts) > 1:
        _fail(series, f"MOSAIC files with different tile sizes {sorted(layouts)}",
              "Load one acquisition at a time")
    if layouts and len(mosaics) < len({h.path for h in series.files}):
        _fail(series, "mixes MOSAIC and plain images", "Load one acquisition at a time")
    return layouts.pop() if layouts else (series.rows, series.columns)


def plan_series(series: SeriesInfo, volume: int | None = None) -> SeriesPlan:
    """The target grid and slice plan of a series, from headers only (raises BadInputError).
    ``volume`` (1-based) picks one of several volumes sharing slice positions."""
    if not series.files:
        _fail(series, "series has no files", "Choose another series")
    row, col, normal = _frame_axes(series)
    sy, sx = _pixel_spacing(series)
    warnings: list[str] = []
    mosaics: dict[Path, MosaicLayout] = {}
    every = _slices(series, (row, col, normal), mosaics)
    chosen, volumes, index = _choose_volume(series, every, volume, warnings)
    slices = _dedupe(chosen, warnings)
    plane = _plane(series, mosaics)
    _vendor_checks(series, slices, warnings)
    for note in dict.fromkeys(n for m in mosaics.values() for n in m.warnings):
        warnings.append(note)
    if mosaics:
        m = next(iter(mosaics.values()))
        warnings.append(
            f"Siemens MOSAIC unpacked: {m.tiles} tiles of {m.tile_columns}x{m.tile_rows} pixels "
            f"per file ({m.per_row} per row) became slices; the tile positions were corrected "
            "from the mosaic corner and ordered along the CSA SliceNormalVector.")
    first = np.asarray(slices[0].position_lps)
    rel = np.asarray([s.position_lps for s in slices]) - first
    offsets = np.stack([rel @ row, rel @ col], axis=1)
    _tilt_warning(series, warnings)
    extra: dict[str, Any] = {"plane": plane, "mosaics": mosaics, "volumes": volumes,
                             "volume": index}
    if len(slices) == 1:
        step = _single_slice_step(series, warnings)
        geo = _grid(plane, first, row, col, normal, (sx, sy, step), 1)
        return SeriesPlan(geo, slices, offsets, False, warnings, **extra)
    depths = np.asarray([s.depth_mm for s in slices])
    steps = np.diff(depths)
    median = float(np.median(steps))
    _check_gaps(series, slices, steps, median)
    uniform = bool(np.all(np.abs(steps - median) <= max(SAME_POSITION_MM,
                                                        UNIFORM_REL_TOL * median)))
    sheared = bool(np.max(np.abs(offsets)) > max(SHEAR_TOL_MM, SHEAR_TOL_PIXEL * min(sx, sy)))
    if uniform and not sheared:
        geo = _grid(plane, first, row, col, normal, (sx, sy, median), len(slices))
        return SeriesPlan(geo, slices, offsets, False, warnings, **extra)
    if not sheared:  # in-plane offsets within tolerance: the slices share one pixel lattice
        offsets = np.zeros_like(offsets)
    plan = _resampled_plan(plane, slices, offsets, (row, col, normal), (sx, sy), steps,
                           median, sheared, warnings)
    for key, value in extra.items():
        setattr(plan, key, value)
    return plan


def _tilt_warning(series: SeriesInfo, warnings: list[str]) -> None:
    tilt = series.files[0].gantry_tilt_deg
    if tilt:
        warnings.append(f"GantryDetectorTilt is {tilt:g} degrees.")


def _grid(plane: tuple[int, int], origin: np.ndarray, row: np.ndarray, col: np.ndarray,
          normal: np.ndarray, spacing: tuple[float, float, float], nz: int,
          nx: int | None = None, ny: int | None = None) -> ImageGeometry:
    return ImageGeometry(
        size=(nx or plane[1], ny or plane[0], nz),
        spacing_mm=spacing,
        origin_lps=tuple(origin),
        direction=np.stack([row, col, normal], axis=1),
    )


def _resampled_plan(plane: tuple[int, int], slices: list[SliceRef], offsets: np.ndarray,
                    axes: tuple[np.ndarray, np.ndarray, np.ndarray], pixel: tuple[float, float],
                    steps: np.ndarray, median: float, sheared: bool,
                    warnings: list[str]) -> SeriesPlan:
    row, col, normal = axes
    sx, sy = pixel
    pixel_mm = np.array([sx, sy])
    lo = np.floor(offsets.min(axis=0) / pixel_mm + 1e-6) * pixel_mm  # first slice on the lattice
    hi = offsets.max(axis=0) + np.array([(plane[1] - 1) * sx, (plane[0] - 1) * sy])
    nx = int(np.ceil((hi[0] - lo[0]) / sx - 1e-6)) + 1
    ny = int(np.ceil((hi[1] - lo[1]) / sy - 1e-6)) + 1
    length = float(slices[-1].depth_mm - slices[0].depth_mm)
    nz = int(np.ceil(length / median - UNIFORM_REL_TOL)) + 1  # a step within 1 % is kept
    step = length / (nz - 1)
    first = np.asarray(slices[0].position_lps)
    origin = first + row * lo[0] + col * lo[1]
    geo = _grid(plane, origin, row, col, normal, (sx, sy, step), nz, nx, ny)
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
    return SeriesPlan(geo, slices, offsets - lo, True, warnings, plane=plane)


def plan_series_geometry(series: SeriesInfo, volume: int | None = None
                         ) -> tuple[ImageGeometry, list[str]]:
    """The exact grid ``load_series`` will produce, and the geometry warnings (headers only)."""
    plan = plan_series(series, volume)
    return plan.geometry, list(plan.warnings)
