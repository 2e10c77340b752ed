"""What a simulator returns: metrics with 95 % intervals, per-structure levels, display geometry,
warnings and provenance. Plain dataclasses with a JSON form (``to_json``).

Level of a critical structure against its safety margin ``m`` (mm), from the tool's clearance
``d`` = ``min_distance_mm`` (tool surface to structure surface, negative = inside):

* ``breach``  : ``d < 0``  (the tool enters the structure);
* ``caution`` : ``0 <= d < m``;
* ``safe``    : ``d >= m``.

The Monte Carlo breach probability ``P`` (:attr:`StructureLevel.breach_probability`, the share
of draws in which the tool, zone or implant enters the structure) raises that level, for every
simulator alike (:func:`level_for_probability`):

* ``P >= 0.05`` (:data:`CAUTION_BREACH_PROBABILITY`): at least ``caution`` -- a breach is not
  unlikely under the stated errors, whatever the nominal clearance;
* ``P >= 0.50`` (:data:`BREACH_BREACH_PROBABILITY`): ``breach`` -- a breach is the likelier
  outcome.

:class:`StructureLevel` applies this floor itself, so every reader (Compare, review, the PDF,
a result read back from JSON) shows the same level, and never "safe" next to P(breach) 43 %.

A clearance that is not a finite number (NaN, +/-inf: the inputs left the image, the draws
failed) is never ``safe``: :func:`level_for` gives ``caution`` and the simulator must mark the
metric ``not_assessable`` with its reason.

Every numeric :class:`Metric` carries either a 95 % interval with its kind
(:class:`IntervalKind`: ``prediction`` — where the true value of the placed tool will lie,
including every stated systematic error source; ``confidence`` — where an estimated quantity,
such as a probability, lies) or, with ``interval`` ``none``, the reason there is none
(``no_interval_reason``, e.g. "exact: a descriptive constant"). A metric that cannot be
assessed has ``value`` NaN and ``not_assessable`` says why; ``failed_draw_share`` is the share
of Monte Carlo draws whose value could not be computed.

The overall verdict (:attr:`SimulationResult.overall_level`) is the worst of the structure
levels and of the simulator's :class:`Concern` s (e.g. a Gertzbein-Robbins grade C, incomplete
ablation coverage, a short resection margin), and any not-assessable metric is at least
``caution``: a headline never says "safe" over numbers that do not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class Level(StrEnum):
    SAFE = "safe"
    CAUTION = "caution"
    BREACH = "breach"


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the simulator raised, hung past its timeout, or returned garbage
    CANCELLED = "cancelled"


class IntervalKind(StrEnum):
    PREDICTION = "prediction"  # where the placed tool's true value will lie (all error sources)
    CONFIDENCE = "confidence"  # where an estimated quantity (e.g. a probability) lies
    NONE = "none"  # no interval; ``no_interval_reason`` says why


_RANK = {Level.SAFE: 0, Level.CAUTION: 1, Level.BREACH: 2}
CAUTION_BREACH_PROBABILITY = 0.05  # P(breach) at or above this: at least caution
BREACH_BREACH_PROBABILITY = 0.50  # P(breach) at or above this: breach (the likelier outcome)


def worst_level(levels: Any) -> Level:
    """The most severe of ``levels`` (``safe`` when there are none)."""
    return max(levels, key=_RANK.__getitem__, default=Level.SAFE)


def level_for_probability(breach_probability: float | None) -> Level:
    """The least level a breach probability (0..1) allows: ``breach`` at >= 0.50, ``caution``
    at >= 0.05, else ``safe`` (None or NaN: no Monte Carlo, ``safe``)."""
    try:
        p = float(breach_probability)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Level.SAFE
    if not math.isfinite(p):
        return Level.SAFE
    if p >= BREACH_BREACH_PROBABILITY:
        return Level.BREACH
    return Level.CAUTION if p >= CAUTION_BREACH_PROBABILITY else Level.SAFE


def level_for(min_distance_mm: float, margin_mm: float,
              breach_probability: float | None = None) -> Level:
    """Traffic-light level of a clearance against a margin, raised by the breach probability
    (see the module docstring).

    A non-finite clearance (NaN, inf) is not assessable and never ``safe``: ``caution``.
    """
    floor = level_for_probability(breach_probability)
    if not math.isfinite(float(min_distance_mm)):
        return worst_level([Level.CAUTION, floor])
    if min_distance_mm < 0:
        return Level.BREACH
    return worst_level([Level.CAUTION if min_distance_mm < margin_mm else Level.SAFE, floor])


@dataclass(frozen=True)
class Metric:
    """One number with its 95 % interval ``ci95 = (low, high)`` and the interval's kind.

    ``interval`` is ``prediction`` or ``confidence`` when ``ci95`` is given, else ``none``
    with ``no_interval_reason``; ``None`` (legacy) means ``prediction`` with a ``ci95`` and an
    unexplained ``none`` without, which :func:`validate_result` reports. ``not_assessable``
    (non-empty) says why the value cannot be given (``value`` is then NaN).
    ``failed_draw_share`` (0..1) is the share of Monte Carlo draws that could not be evaluated.
    """

    key: str
    title: str
    unit: str
    value: float
    ci95: tuple[float, float] | None = None
    structure: str | None = None
    interval: IntervalKind | None = None
    no_interval_reason: str = ""
    not_assessable: str = ""
    failed_draw_share: float | None = None

    @property
    def interval_kind(self) -> IntervalKind:
        """The interval's kind, with the legacy default filled in."""
        if self.interval is not None:
            return IntervalKind(self.interval)
        return IntervalKind.NONE if self.ci95 is None else IntervalKind.PREDICTION

    @property
    def assessable(self) -> bool:
        return not self.not_assessable

    @classmethod
    def unassessable(cls, key: str, title: str, unit: str, reason: str, *,
                     structure: str | None = None,
                     failed_draw_share: float | None = None) -> Metric:
        """A metric that cannot be given, with the reason (value NaN, no interval)."""
        return cls(key=key, title=title, unit=unit, value=math.nan, ci95=None,
                   structure=structure, interval=IntervalKind.NONE,
                   no_interval_reason="not assessable", not_assessable=reason,
                   failed_draw_share=failed_draw_share)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "unit": self.unit,
                "value": _num(self.value),
                "ci95": None if self.ci95 is None else [_num(v) for v in self.ci95],
                "interval": str(self.interval_kind),
                "no_interval_reason": self.no_interval_reason or None,
                "not_assessable": self.not_assessable or None,
                "failed_draw_share": _num(self.failed_draw_share),
                "structure": self.structure}


@dataclass(frozen=True)
class Concern:
    """A simulator's verdict on something other than a structure's clearance.

    E.g. ``Concern(Level.BREACH, "Gertzbein-Robbins grade D (4.3 mm medial breach)",
    metric_key="gertzbein_grade")``. It takes part in the overall verdict.
    """

    level: Level
    message: str
    metric_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"level": str(self.level), "message": self.message, "metric_key": self.metric_key}


@dataclass(frozen=True)
class StructureLevel:
    """A critical structure's verdict: level from the nominal clearance, breach probability.

    ``level`` is raised to at least :func:`level_for_probability` of ``breach_probability``
    on construction (see the module docstring): a level never reads safer than its P(breach).
    """

    structure: str
    level: Level
    min_distance_mm: float
    margin_mm: float
    breach_probability: float | None = None
    closest_point_lps: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        try:
            level = Level(self.level)
        except ValueError:
            return  # validate_result reports an unknown level
        floor = level_for_probability(self.breach_probability)
        if _RANK[floor] > _RANK[level]:
            object.__setattr__(self, "level", floor)

    def to_json(self) -> dict[str, Any]:
        return {"structure": self.structure, "level": str(self.level),
                "min_distance_mm": _num(self.min_distance_mm), "margin_mm": self.margin_mm,
                "breach_probability": _num(self.breach_probability),
                "closest_point_lps": None if self.closest_point_lps is None
                else [float(v) for v in self.closest_point_lps]}


@dataclass(frozen=True)
class DisplayLine:
    """A polyline to draw (LPS mm), e.g. the tool; ``radius_mm`` 0 draws a thin line."""

    label: str
    points_lps: tuple[tuple[float, float, float], ...]
    radius_mm: float = 0.0


@dataclass(frozen=True)
class DisplayPoint:
    label: str
    point_lps: tuple[float, float, float]


@dataclass(frozen=True)
class DisplayScalars:
    """Per-vertex values on a twin structure's surface (a heat-map), e.g. risk per skin vertex.

    ``vertices_lps`` (N, 3) are the coloured vertices and ``vertex_ids`` (N,) their indices in
    ``context.surface(structure)``; ``values`` (N,) in ``unit``, NaN where rejected.
    """

    label: str
    structure: str
    unit: str
    vertices_lps: np.ndarray
    values: np.ndarray
    vertex_ids: np.ndarray | None = None


@dataclass(frozen=True)
class DisplayMesh:
    """A triangle mesh to draw (e.g. an ablation zone, an implant, a cut surface).

    ``vertices_lps`` (N, 3) mm, ``faces`` (M, 3) vertex indices, outward-oriented when closed;
    ``color`` RGB in 0..1 (None: the viewer chooses), ``opacity`` 0..1.
    """

    label: str
    vertices_lps: np.ndarray
    faces: np.ndarray
    color: tuple[float, float, float] | None = None
    opacity: float = 0.4


@dataclass
class DisplayGeometry:
    lines: list[DisplayLine] = field(default_factory=list)
    points: list[DisplayPoint] = field(default_factory=list)
    scalars: list[DisplayScalars] = field(default_factory=list)
    meshes: list[DisplayMesh] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lines": [asdict(x) for x in self.lines],
                "points": [asdict(x) for x in self.points],
                "scalars": [{"label": s.label, "structure": s.structure, "unit": s.unit,
                             "n_vertices": len(s.values)} for s in self.scalars],
                "meshes": [{"label": m.label, "n_vertices": len(m.vertices_lps),
                            "n_faces": len(m.faces), "color": m.color, "opacity": m.opacity}
                           for m in self.meshes]}


@dataclass
class RunProvenance:
    """How a result was made: enough to reproduce it and to check its inputs were the same."""

    simulator_id: str
    simulator_version: str
    api_version: int
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    input_hashes: dict[str, str] = field(default_factory=dict)
    uncertainty: dict[str, Any] = field(default_factory=dict)
    samples: int = 0
    seed: int | None = None
    run_time_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SimulationResult:
    """A simulator's answer. ``status`` FAILED/CANCELLED carries ``error`` (one human line)."""

    status: Status
    metrics: list[Metric] = field(default_factory=list)
    levels: list[StructureLevel] = field(default_factory=list)
    geometry: DisplayGeometry = field(default_factory=DisplayGeometry)
    warnings: list[str] = field(default_factory=list)
    provenance: RunProvenance | None = None
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific, JSON-ready
    concerns: list[Concern] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def overall_level(self) -> Level:
        """Worst of structure levels, concerns and not-assessable metrics (at least caution)."""
        levels = [lv.level for lv in self.levels] + [c.level for c in self.concerns]
        if any(m.not_assessable for m in self.metrics):
            levels.append(Level.CAUTION)
        if not self.ok:
            levels.append(Level.CAUTION)
        return worst_level(levels)

    @property
    def verdict(self) -> Level | None:
        """:attr:`overall_level`, or None when there is nothing to judge (an ok result with no
        levels, no concerns and no unassessable metric)."""
        if (self.ok and not self.levels and not self.concerns
                and not any(m.not_assessable for m in self.metrics)):
            return None
        return self.overall_level

    def verdict_reasons(self) -> list[str]:
        """Human lines behind a non-safe :attr:`overall_level`, most severe first."""
        lines = [(lv.level, f"{lv.structure}: {lv.level} (clearance "
                            f"{_fmt_mm(lv.min_distance_mm)}, margin {lv.margin_mm:g} mm"
                            f"{_fmt_p(lv.breach_probability)})")
                 for lv in self.levels if lv.level is not Level.SAFE]
        lines += [(c.level, c.message) for c in self.concerns if c.level is not Level.SAFE]
        lines += [(Level.CAUTION, f"{m.title}: not assessable ({m.not_assessable})")
                  for m in self.metrics if m.not_assessable]
        return [text for _, text in sorted(lines, key=lambda x: -_RANK[x[0]])]

    def metric(self, key: str, structure: str | None = None) -> Metric:
        for m in self.metrics:
            if m.key == key and m.structure == structure:
                return m
        raise KeyError(f"no metric {key!r} for structure {structure!r}")

    def level(self, structure: str) -> StructureLevel:
        for lv in self.levels:
            if lv.structure == structure:
                return lv
        raise KeyError(f"no level for structure {structure!r}")

    def to_json(self) -> dict[str, Any]:
        return {"status": str(self.status), "error": self.error,
                "metrics": [m.to_json() for m in self.metrics],
                "levels": [lv.to_json() for lv in self.levels],
                "geometry": self.geometry.to_json(), "warnings": list(self.warnings),
                "details": dict(self.details),
                "concerns": [c.to_json() for c in self.concerns],
                "overall_level": str(self.overall_level),
                "provenance": None if self.provenance is None else self.provenance.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimulationResult:
        """The result of :meth:`to_json` output (display geometry is not kept)."""
        metrics = [_metric_from_json(m) for m in data.get("metrics", [])]
        levels = [StructureLevel(structure=lv["structure"], level=Level(lv["level"]),
                                 min_distance_mm=_nan(lv.get("min_distance_mm")),
                                 margin_mm=float(lv.get("margin_mm") or 0.0),
                                 breach_probability=lv.get("breach_probability"),
                                 closest_point_lps=None if lv.get("closest_point_lps") is None
                                 else tuple(lv["closest_point_lps"]))
                  for lv in data.get("levels", [])]
        concerns = [Concern(Level(c["level"]), str(c.get("message", "")), c.get("metric_key"))
                    for c in data.get("concerns", [])]
        prov = data.get("provenance")
        return cls(status=Status(data.get("status", "ok")), metrics=metrics, levels=levels,
                   warnings=list(data.get("warnings", [])), error=data.get("error", ""),
                   details=dict(data.get("details", {})), concerns=concerns,
                   provenance=None if prov is None else RunProvenance(**prov))

    @classmethod
    def failed(cls, message: str, *, provenance: RunProvenance | None = None,
               status: Status = Status.FAILED) -> SimulationResult:
        return cls(status=status, error=" ".join(message.split()), provenance=provenance)


def validate_result(result: SimulationResult) -> list[str]:
    """Problems that make a result unfit to show (empty list: fit).

    Checks types, that every value is finite or explicitly not assessable, that every
    interval is ordered, finite and holds its nominal value, that every metric has an interval
    or a stated reason, and that clearances behind levels are numbers.
    """
    if not isinstance(result, SimulationResult):
        return [f"not a SimulationResult but {type(result).__name__}"]
    if not result.ok:
        return []
    problems: list[str] = []
    for m in result.metrics:
        problems += _metric_problems(m)
    for lv in result.levels:
        if not isinstance(lv, StructureLevel):
            problems.append(f"a level is {type(lv).__name__}, not a StructureLevel")
            continue
        try:
            Level(lv.level)
        except ValueError:
            problems.append(f"{lv.structure}: unknown level {lv.level!r}")
        if not isinstance(lv.min_distance_mm, (int, float)):
            problems.append(f"{lv.structure}: clearance is not a number")
        elif (not math.isfinite(float(lv.min_distance_mm))
              and Level(lv.level) is Level.SAFE):
            problems.append(f"{lv.structure}: non-finite clearance judged safe")
    for c in result.concerns:
        if not isinstance(c, Concern):
            problems.append(f"a concern is {type(c).__name__}, not a Concern")
    return problems


def _metric_problems(m: Any) -> list[str]:
    if not isinstance(m, Metric):
        return [f"a metric is {type(m).__name__}, not a Metric"]
    name = m.key if m.structure is None else f"{m.key} ({m.structure})"
    if not isinstance(m.value, (int, float, np.floating, np.integer)):
        return [f"{name}: value is {type(m.value).__name__}, not a number"]
    if not isinstance(m.unit, str) or not isinstance(m.title, str):
        return [f"{name}: title and unit must be text"]
    value = float(m.value)
    if m.not_assessable:
        return [] if m.ci95 is None else [f"{name}: not assessable but has an interval"]
    if not math.isfinite(value):
        return [f"{name}: value {value} is not finite and not marked not assessable"]
    if m.ci95 is None:
        if m.interval_kind is IntervalKind.NONE and not m.no_interval_reason:
            return [f"{name}: no interval and no reason given"]
        if m.interval_kind is not IntervalKind.NONE:
            return [f"{name}: interval kind {m.interval_kind} without an interval"]
        return []
    try:
        low, high = (float(v) for v in m.ci95)
    except (TypeError, ValueError):
        return [f"{name}: interval {m.ci95!r} is not two numbers"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return [f"{name}: interval [{low}, {high}] is not finite"]
    if m.interval_kind is IntervalKind.NONE:
        return [f"{name}: has an interval but its kind is none"]
    tol = 1e-9 * max(1.0, abs(value))
    if not (low - tol <= value <= high + tol):
        return [f"{name}: value {value:g} outside its own interval [{low:g}, {high:g}]"]
    return []


def _metric_from_json(m: dict[str, Any]) -> Metric:
    ci = m.get("ci95")
    kind = m.get("interval")
    share = m.get("failed_draw_share")
    return Metric(key=m["key"], title=m["title"], unit=m.get("unit", ""),
                  value=_nan(m.get("value")),
                  ci95=None if ci is None else (_nan(ci[0]), _nan(ci[1])),
                  structure=m.get("structure"),
                  interval=None if kind is None else IntervalKind(kind),
                  no_interval_reason=m.get("no_interval_reason") or "",
                  not_assessable=m.get("not_assessable") or "",
                  failed_draw_share=None if share is None else float(share))


def _nan(value: Any) -> float:
    """JSON null back to NaN."""
    return math.nan if value is None else float(value)


def _fmt(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(float(value)) else "not assessable"


def _fmt_mm(value: float) -> str:
    """``12.3 mm``, or ``not assessable`` (no unit after a missing value)."""
    return f"{value:.1f} mm" if math.isfinite(float(value)) else "not assessable"


def _fmt_p(p: float | None) -> str:
    """", P(breach) 43 %" for a finite probability, else ""."""
    try:
        value = float(p)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return f", P(breach) {100 * value:.0f} %" if math.isfinite(value) else ""


def _num(value: float | None) -> float | None:
    """JSON-safe float: None for None, NaN and infinities."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None
