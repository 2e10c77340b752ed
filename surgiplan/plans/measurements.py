"""Image measurements: rulers (mm), angles (degrees) and box ROI statistics, in LPS mm.

Each measurement keeps its control points (LPS mm) and reports :class:`Reading` values (key,
title, unit, value, 95 % interval):

* ruler - length between two points; interval: each end placed within half the largest voxel
  spacing, so length +- that spacing (clipped at 0);
* angle - at the middle point between the two arms (0..180 deg); interval: the arms' ends
  placed within half the largest spacing, ``atan(h / arm)`` per arm;
* roi - an axis-aligned box in LPS (two opposite corners): mean and SD of the voxels whose
  centres lie inside (95 % confidence intervals treating the voxels as independent: Student
  t for the mean, chi-square for the SD; neighbouring voxels are correlated, so these are
  narrower than a repeat scan's spread), voxel count and volume (ml; interval: the box grown
  / shrunk by half a voxel on every face).

Stored in the case bundle as ``plans/measurements.json`` (``twin.bundle_extras``) and exported
as 3D Slicer markups (``Line``, ``Angle``, ``ROI``; LPS mm).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.frames import ras_to_lps

MEASUREMENTS_ENTRY = "plans/measurements.json"
FORMAT = "surgiplan.measurements"
SCHEMA_VERSION = 1
Kind = Literal["ruler", "angle", "roi"]
POINTS_PER_KIND = {"ruler": 2, "angle": 3, "roi": 2}


@dataclass(frozen=True)
class Reading:
    """One measured value with its 95 % interval ``(low, high)`` in ``unit``."""

    key: str
    title: str
    unit: str
    value: float
    interval: tuple[float, float]


@dataclass
class Measurement:
    """A ruler, angle or ROI: ``points_lps`` (n, 3) mm, a name and an optional note."""

    kind: Kind
    points_lps: np.ndarray
    name: str = ""
    note: str = ""
    readings: list[Reading] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in POINTS_PER_KIND:
            raise ValueError(f"unknown measurement kind {self.kind!r}")
        pts = np.asarray(self.points_lps, dtype=float).reshape(-1, 3)
        if len(pts) != POINTS_PER_KIND[self.kind] or not np.all(np.isfinite(pts)):
            raise ValueError(f"a {self.kind} needs {POINTS_PER_KIND[self.kind]} finite LPS "
                             f"points, got {pts.tolist()}")
        self.points_lps = pts

    def summary(self) -> str:
        """Short text of the main reading, e.g. ``"42.3 mm"``."""
        if not self.readings:
            return ""
        r = self.readings[0]
        return f"{r.value:.1f} {r.unit}"


# ---------------------------------------------------------------------------- computing
def ruler_readings(points_lps: np.ndarray, spacing_mm: tuple[float, ...]) -> list[Reading]:
    length = float(np.linalg.norm(points_lps[1] - points_lps[0]))
    h = float(max(spacing_mm))
    return [Reading("length_mm", "Length", "mm", length, (max(0.0, length - h), length + h))]


def angle_readings(points_lps: np.ndarray, spacing_mm: tuple[float, ...]) -> list[Reading]:
    a, vertex, b = points_lps
    u, v = a - vertex, b - vertex
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return [Reading("angle_deg", "Angle", "deg", float("nan"), (0.0, 180.0))]
    angle = math.degrees(math.acos(float(np.clip(u @ v / (nu * nv), -1.0, 1.0))))
    h = float(max(spacing_mm)) / 2.0
    err = math.degrees(math.atan(h / nu) + math.atan(h / nv))
    return [Reading("angle_deg", "Angle", "deg", angle,
                    (max(0.0, angle - err), min(180.0, angle + err)))]


def _box_mask(geometry, lo_lps: np.ndarray, hi_lps: np.ndarray) -> tuple[tuple[slice, ...],
                                                                          np.ndarray]:
    """(zyx box of slices, boolean mask) of voxel centres inside the LPS box [lo, hi]."""
    corners = np.array([[x, y, z] for x in (lo_lps[0], hi_lps[0])
                        for y in (lo_lps[1], hi_lps[1]) for z in (lo_lps[2], hi_lps[2])])
    ijk = geometry.lps_to_index(corners)
    size = np.asarray(geometry.size)
    start = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, size)
    stop = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, size)
    box = (slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0]))
    k, j, i = np.meshgrid(np.arange(start[2], stop[2]), np.arange(start[1], stop[1]),
                          np.arange(start[0], stop[0]), indexing="ij")
    lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    inside = np.all((lps >= lo_lps - 1e-6) & (lps <= hi_lps + 1e-6), axis=-1)
    return box, inside


def roi_readings(points_lps: np.ndarray, image) -> list[Reading]:
    """Statistics of ``image`` (an ImageVolume) inside the LPS box spanned by two corners."""
    lo, hi = points_lps.min(axis=0), points_lps.max(axis=0)
    geo = image.geometry
    box, inside = _box_mask(geo, lo, hi)
    values = image.array[box][inside].astype(np.float64)
    n = int(values.size)
    unit = image.units or ""
    voxel_ml = geo.voxel_volume_mm3 / 1000.0
    half = np.asarray(geo.spacing_mm) / 2.0
    small = int(_box_mask(geo, lo + half, hi - half)[1].sum()) if np.all(hi - lo > 2 * half) else 0
    big = int(_box_mask(geo, lo - half, hi + half)[1].sum())
    volume = Reading("volume_ml", "Volume", "ml", n * voxel_ml, (small * voxel_ml, big * voxel_ml))
    count = Reading("voxels", "Voxels", "", float(n), (float(n), float(n)))
    if n == 0:
        nan = float("nan")
        return [Reading("mean", "Mean", unit, nan, (nan, nan)),
                Reading("sd", "SD", unit, nan, (nan, nan)), volume, count]
    mean, sd = float(values.mean()), float(values.std(ddof=1)) if n > 1 else 0.0
    return [Reading("mean", "Mean", unit, mean, _mean_interval(mean, sd, n)),
            Reading("sd", "SD", unit, sd, _sd_interval(sd, n)), volume, count]


def _mean_interval(mean: float, sd: float, n: int) -> tuple[float, float]:
    """95 % confidence interval of the mean of ``n`` values (Student t, n - 1 d.f.)."""
    if n < 2:
        return (float("nan"), float("nan"))
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def _sd_interval(sd: float, n: int) -> tuple[float, float]:
    """95 % confidence interval of the SD of ``n`` values (chi-square, n - 1 d.f.)."""
    if n < 2:
        return (float("nan"), float("nan"))
    from scipy.stats import chi2

    dof = n - 1
    return (sd * math.sqrt(dof / float(chi2.ppf(0.975, dof))),
            sd * math.sqrt(dof / float(chi2.ppf(0.025, dof))))


def measure(measurement: Measurement, image) -> Measurement:
    """Fill ``measurement.readings`` from its points (and ``image`` for ROIs); returns it."""
    spacing = image.geometry.spacing_mm
    if measurement.kind == "ruler":
        measurement.readings = ruler_readings(measurement.points_lps, spacing)
    elif measurement.kind == "angle":
        measurement.readings = angle_readings(measurement.points_lps, spacing)
    else:
        measurement.readings = roi_readings(measurement.points_lps, image)
    return measurement


# ---------------------------------------------------------------------------- the bundle
def measurements_bytes(measurements: list[Measurement]) -> bytes:
    """``plans/measurements.json`` content (points in LPS mm, readings for reference)."""
    doc = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "coordinate_system": "LPS",
           "units": "mm", "measurements": [
               {"kind": m.kind, "name": m.name, "note": m.note,
                "points_lps": m.points_lps.tolist(),
                "readings": [{"key": r.key, "title": r.title, "unit": r.unit,
                              "value": _json_number(r.value),
                              "interval": [_json_number(v) for v in r.interval]}
                             for r in m.readings]}
               for m in measurements]}
    return json.dumps(doc, indent=1).encode("utf-8")


def _json_number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def measurements_from_bytes(data: bytes, *, source: str = MEASUREMENTS_ENTRY,
                            image=None) -> list[Measurement]:
    """Measurements from ``plans/measurements.json``; readings recomputed when ``image``."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise BadInputError(f"is not JSON ({exc})", path=source,
                            action="re-save the case or delete its measurements") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadInputError("is not a SurgiPlan measurements file", path=source,
                            action="re-save the case")
    if int(doc.get("schema_version", 0)) > SCHEMA_VERSION:
        raise BadInputError("was written by a newer SurgiPlan", path=source,
                            action="update SurgiPlan to open its measurements")
    out = []
    for item in doc.get("measurements", []):
        try:
            m = Measurement(item["kind"], np.asarray(item["points_lps"], float),
                            str(item.get("name", "")), str(item.get("note", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"holds a bad measurement ({exc})", path=source,
                                action="re-save the case or delete its measurements") from None
        out.append(measure(m, image) if image is not None else m)
    return out


def load_measurements(twin) -> list[Measurement]:
    """The twin's measurements (from its bundle extras), readings recomputed on its image."""
    data = twin.bundle_extras.get(MEASUREMENTS_ENTRY)
    return [] if not data else measurements_from_bytes(data, image=twin.image)


def store_measurements(twin, measurements: list[Measurement]) -> None:
    """Put ``measurements`` into ``twin.bundle_extras`` (written by the next save)."""
    twin.bundle_extras[MEASUREMENTS_ENTRY] = measurements_bytes(measurements)


# ---------------------------------------------------------------------------- Slicer markups
def markups_document(measurements: list[Measurement]) -> dict[str, Any]:
    """A 3D Slicer ``.mrk.json`` document: rulers as ``Line``, angles as ``Angle``, ROIs as a
    box ``ROI`` (centre control point + size), all LPS mm; validated by the markups models."""
    from surgiplan.plans.slicer_markups import SCHEMA_URL, MarkupsFile

    markups = []
    for n, m in enumerate(measurements, start=1):
        name = m.name or f"{m.kind} {n}"
        common = {"name": name, "coordinateSystem": "LPS", "coordinateUnits": "mm",
                  "fixedNumberOfControlPoints": True,
                  "measurements": [{"name": r.title.lower(), "value": _json_number(r.value),
                                    "units": r.unit, "enabled": True} for r in m.readings[:1]]}
        if m.kind == "roi":
            lo, hi = m.points_lps.min(axis=0), m.points_lps.max(axis=0)
            markups.append({**common, "type": "ROI", "roiType": "Box",
                            "size": (hi - lo).tolist(), "controlPoints": [
                                _control_point(1, name, (lo + hi) / 2.0)]})
        else:
            markups.append({**common, "type": "Line" if m.kind == "ruler" else "Angle",
                            "controlPoints": [_control_point(i, f"{name}-{i}", p)
                                              for i, p in enumerate(m.points_lps, start=1)]})
    doc = MarkupsFile.model_validate({"@schema": SCHEMA_URL, "markups": markups})
    return doc.model_dump(by_alias=True, exclude_none=True)


def _control_point(n: int, label: str, position: np.ndarray) -> dict[str, Any]:
    return {"id": str(n), "label": label, "position": [float(v) for v in position],
            "positionStatus": "defined"}


def write_markups(measurements: list[Measurement], path: str | Path) -> Path:
    """Write ``measurements`` as a Slicer ``.mrk.json`` file (atomically)."""
    from surgiplan.io.atomic import write_bytes_atomic

    path = Path(path)
    write_bytes_atomic(path, json.dumps(markups_document(measurements), indent=2).encode())
    return path


_MARKUP_KINDS: dict[str, Kind] = {"Line": "ruler", "Angle": "angle", "ROI": "roi"}  # Slicer types


def read_markups(path: str | Path) -> list[Measurement]:
    """Rulers, angles and box ROIs from a Slicer ``.mrk.json`` (LPS or RAS, mm)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot be read as markups JSON ({exc})", path=path,
                            action="choose a 3D Slicer .mrk.json file") from None
    out = []
    for markup in doc.get("markups", []) if isinstance(doc, dict) else []:
        kind = _MARKUP_KINDS.get(markup.get("type"))
        if kind is None:
            continue
        pts = np.array([cp["position"] for cp in markup.get("controlPoints", [])], float)
        if markup.get("coordinateSystem") == "RAS":
            pts = ras_to_lps(pts)
        if kind == "roi":
            size = np.asarray(markup.get("size", [0, 0, 0]), float)
            pts = np.array([pts[0] - size / 2.0, pts[0] + size / 2.0])
        out.append(Measurement(kind, pts, str(markup.get("name", ""))))
    return out
