"""What a simulator returns: metrics with 95 % intervals, per-structure levels, display geometry,
warnings and provenance. Plain dataclasses with a JSON form (``to_json``).

Level of a critical structure against its safety margin ``m`` (mm), from the tool's clearance
``d`` = ``min_distance_mm`` (tool surface to structure surface, negative = inside):

* ``breach``  : ``d < 0``  (the tool enters the structure);
* ``caution`` : ``0 <= d < m``;
* ``safe``    : ``d >= m``.
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


def level_for(min_distance_mm: float, margin_mm: float) -> Level:
    """Traffic-light level of a clearance against a margin (see the module docstring)."""
    if min_distance_mm < 0:
        return Level.BREACH
    return Level.CAUTION if min_distance_mm < margin_mm else Level.SAFE


@dataclass(frozen=True)
class Metric:
    """One number with its 95 % interval ``ci95 = (low, high)`` (None without uncertainty)."""

    key: str
    title: str
    unit: str
    value: float
    ci95: tuple[float, float] | None = None
    structure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "unit": self.unit,
                "value": _num(self.value),
                "ci95": None if self.ci95 is None else [_num(v) for v in self.ci95],
                "structure": self.structure}


@dataclass(frozen=True)
class StructureLevel:
    """A critical structure's verdict: level from the nominal clearance, breach probability."""

    structure: str
    level: Level
    min_distance_mm: float
    margin_mm: float
    breach_probability: float | None = None
    closest_point_lps: tuple[float, float, float] | None = None

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

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

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
                "provenance": None if self.provenance is None else self.provenance.to_json()}

    @classmethod
    def failed(cls, message: str, *, provenance: RunProvenance | None = None,
               status: Status = Status.FAILED) -> SimulationResult:
        return cls(status=status, error=" ".join(message.split()), provenance=provenance)


def _num(value: float | None) -> float | None:
    """JSON-safe float: None for None, NaN and infinities."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None
