"""Request and answer types of an automatic safest-path search (trajectory simulators).

A simulator declaring the ``"search"`` capability scores a straight path from every candidate
entry on the skin to one target, rejects those over the maximum length or angle or that breach a
critical structure, ranks the rest and returns the Pareto front (clearance up, length down,
angle down; Essert C et al., Int J CARS 2016: a weighted sum drops good options) plus per-vertex
scores for a heat-map. Coordinates are LPS mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from surgiplan.simulation.inputs import PointLPS
from surgiplan.simulation.result import DisplayScalars

# As used by automated SEEG planners (e.g. Sparks R et al., Int J CARS 2017;12(1):123-136):
DEFAULT_MAX_LENGTH_MM = 90.0  # longest electrode / cannula usually available
DEFAULT_MAX_ANGLE_DEG = 30.0  # drilling angle to the skull normal beyond which bits skid


@dataclass(frozen=True)
class PathSearchRequest:
    """Search entries for ``target_lps``; optional sphere of allowed entries (LPS mm)."""

    target_lps: PointLPS
    max_length_mm: float = DEFAULT_MAX_LENGTH_MM
    max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG
    diameter_mm: float = 0.8
    top_k: int = 10
    entry_region_centre_lps: PointLPS | None = None
    entry_region_radius_mm: float | None = None
    # no-go zones: entries inside a sphere (x, y, z, radius; LPS mm, e.g. drawn over the
    # eyebrow) and paths crossing a named structure (orbit, face, sinus, ear) are rejected
    no_go_spheres_lps: tuple[tuple[float, float, float, float], ...] = ()
    no_go_structures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from surgiplan.errors import BadInputError

        checks = [
            (all(math.isfinite(v) for v in self.target_lps), "the target must be 3 finite numbers"),
            (self.max_length_mm > 0, "the maximum length must be > 0 mm"),
            (0 < self.max_angle_deg <= 90, "the maximum angle must be in (0, 90] degrees"),
            (0 < self.diameter_mm <= 20, "the tool diameter must be in (0, 20] mm"),
            (self.top_k >= 1, "top K must be at least 1"),
            (all(len(z) == 4 and all(math.isfinite(v) for v in z) and z[3] > 0
                 for z in self.no_go_spheres_lps),
             "each no-go sphere must be 4 finite numbers (x, y, z, radius > 0 mm)"),
        ]
        for ok, problem in checks:
            if not ok:
                raise BadInputError(problem, action="fix the search request")


@dataclass(frozen=True)
class PathCandidate:
    """One ranked entry. ``clearance_mm``: tool surface to the nearest critical structure.

    ``risk`` is the path's distance-weighted risk (see the simulator's docs);
    ``exact_clearance_mm`` per structure is the re-check against surface meshes (top few only).
    """

    rank: int
    entry_lps: tuple[float, float, float]
    target_lps: tuple[float, float, float]
    length_mm: float
    angle_deg: float
    clearance_mm: float
    risk: float
    pareto: bool
    vertex: int = -1
    exact_clearance_mm: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class PathSearchResult:
    """Everything a candidate list, Pareto plot and skin heat-map need."""

    n_candidates: int
    n_feasible: int
    time_s: float
    candidates: list[PathCandidate]
    pareto: list[PathCandidate]
    heatmaps: list[DisplayScalars] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"n_candidates": self.n_candidates, "n_feasible": self.n_feasible,
                "time_s": self.time_s, "rejected": dict(self.rejected),
                "candidates": [c.to_json() for c in self.candidates],
                "pareto": [c.to_json() for c in self.pareto], "warnings": list(self.warnings)}
