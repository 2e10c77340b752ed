"""The trajectory simulator: risk of a straight tool to every critical structure, with 95 %
intervals, and an automatic safest-path search (see search.py).

Per critical structure (role ``critical``):

* ``min_distance_mm`` = min over the path of (signed distance from the axis point to the
  structure surface, + outside) - tool radius: negative means the tool enters the structure;
* the closest point (LPS) on the axis; ``risk``: the distance-weighted risk integral (kernel.py);
* ``breach_probability``: fraction of Monte Carlo draws with ``min_distance_mm < 0``;
* level: breach (< 0) / caution (< margin) / safe, against the structure's margin or, when it
  has none, ``default_margin_mm``.

Whole path: ``path_length_mm``, ``entry_angle_deg`` (between the path and the inward skin normal
at the entry; the normal is the gradient of the skin's signed distance), ``clearance_mm`` (the
smallest ``min_distance_mm``) and the structures traversed (in order, from the label map).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    DisplayGeometry,
    DisplayLine,
    DisplayPoint,
    Kind,
    Metric,
    Output,
    Parameter,
    PathSearchRequest,
    PathSearchResult,
    SimulationContext,
    SimulationResult,
    SimulatorSpec,
    Status,
    StructureLevel,
    TrajectoryInput,
    UncertaintyModel,
    level_for,
)
from surgiplan.simulation.uncertainty import draw_placements, interval95, probability95
from surgiplan_trajectory import __version__
from surgiplan_trajectory.kernel import N_SAMPLES, lps_to_zyx_matrix, score_paths

DEFAULT_MARGIN_MM = 3.0  # lower end of the 2.5-7 mm vessel clearances of automated SEEG plans
MARGIN_SOURCE = ("vessel clearance of automated SEEG plans 2.5-7 mm (De Momi E et al., Int J "
                 "CARS 2014;9(6):1087-1097; Sparks R et al., Int J CARS 2017;12(1):123-136)")

SPEC = SimulatorSpec(
    id="trajectory",
    title="Straight trajectory (needle, SEEG electrode, DBS lead, catheter)",
    version=__version__,
    kind=Kind.TRAJECTORY,
    required_roles=(Role.CRITICAL,),
    capabilities=("search",),
    parameters=(
        Parameter(key="default_margin_mm", title="Safety margin for structures without one",
                  unit="mm", default=DEFAULT_MARGIN_MM, minimum=0.0, maximum=30.0,
                  source=MARGIN_SOURCE),
        Parameter(key="risk_band_mm", title="Risk band (distance-weighted risk is 0 beyond)",
                  unit="mm", default=10.0, minimum=0.5, maximum=50.0,
                  description="w(c) = 1 inside, (B - c)/B within B mm, 0 beyond"),
        Parameter(key="path_samples", title="Axis samples per path", type="int", unit="",
                  default=N_SAMPLES, minimum=11, maximum=4001),
    ),
    outputs=(
        Output(key="path_length_mm", title="Path length", unit="mm"),
        Output(key="entry_angle_deg", title="Angle to skin normal at entry", unit="deg"),
        Output(key="clearance_mm", title="Smallest clearance to any critical structure",
               unit="mm"),
        Output(key="min_distance_mm", title="Minimum distance", unit="mm", per_structure=True),
        Output(key="risk", title="Distance-weighted risk", unit="", per_structure=True),
        Output(key="breach_probability", title="Probability of breach", unit="",
               per_structure=True),
    ),
    description="Risk of a straight tool to critical structures with Monte Carlo 95 % "
                "intervals; automatic safest-entry search over the skin.",
)


def skin_structure(context: SimulationContext) -> str | None:
    skins = context.by_role(Role.SKIN)
    return skins[0].name if skins else None


def skin_normals_lps(context: SimulationContext, skin: str, points_lps: np.ndarray) -> np.ndarray:
    """Outward unit normals (n, 3) of the skin at LPS points: gradient of its signed distance."""
    h = 0.5 * min(context.geometry.spacing_mm)
    steps = np.vstack([np.eye(3), -np.eye(3)]) * h
    pts = points_lps[:, None, :] + steps[None, :, :]
    d = context.signed_distance_mm(skin, pts)
    grad = (d[:, :3] - d[:, 3:]) / (2 * h)
    norm = np.linalg.norm(grad, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return grad / norm


def entry_angles_deg(directions: np.ndarray, outward_normals: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit path directions (entry -> target) and the inward normals."""
    cos = np.einsum("ij,ij->i", directions, -outward_normals)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


class TrajectorySimulator:
    """The trajectory plug-in (entry point ``trajectory``)."""

    spec = SPEC

    def run(
        self,
        context: SimulationContext,
        inputs: TrajectoryInput,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult:
        entry = np.asarray(inputs.entry_lps, float)
        target = np.asarray(inputs.target_lps, float)
        critical = context.by_role(Role.CRITICAL)
        warnings = _input_warnings(context, entry, target, critical)
        n_path = int(parameters["path_samples"])
        band = float(parameters["risk_band_mm"])
        m = lps_to_zyx_matrix(context.geometry)
        mc = uncertainty.samples > 0
        draws = draw_placements(uncertainty, entry, target, n_structures=len(critical),
                                spacing_mm=context.geometry.spacing_mm) if mc else None
        metrics: list[Metric] = []
        levels: list[StructureLevel] = []
        points: list[DisplayPoint] = [DisplayPoint("entry", tuple(entry)),
                                      DisplayPoint("target", tuple(target))]
        all_min = []
        for k, s in enumerate(critical):
            check(cancel)
            report(progress, 0.1 + 0.8 * k / max(1, len(critical)), f"scoring {s.name}")
            dist = context.distance_map(s.name)
            d0, t0, r0 = score_paths(dist, m, entry, target, radius_mm=inputs.radius_mm,
                                     band_mm=band, n_samples=n_path)
            closest = entry + t0[0] * (target - entry)
            margin = s.margin_mm if s.margin_mm > 0 else float(parameters["default_margin_mm"])
            ci_d = ci_r = ci_p = None
            p_breach = None
            if draws is not None:
                dk, _, rk = score_paths(dist, m, draws.entries, draws.targets,
                                        radius_mm=inputs.radius_mm, band_mm=band,
                                        offsets_mm=draws.boundary[:, k], n_samples=n_path)
                all_min.append(dk)
                ci_d, ci_r = interval95(dk), interval95(rk)
                p_breach, ci_p = probability95(dk < 0)
            metrics += [
                Metric("min_distance_mm", f"Minimum distance to {s.name}", "mm", float(d0[0]),
                       ci_d, s.name),
                Metric("risk", f"Risk ({s.name})", "", float(r0[0]), ci_r, s.name),
            ]
            if p_breach is not None:
                metrics.append(Metric("breach_probability", f"Probability of breaching "
                                      f"{s.name}", "", p_breach, ci_p, s.name))
            levels.append(StructureLevel(s.name, level_for(float(d0[0]), margin), float(d0[0]),
                                         margin, p_breach, tuple(closest)))
            points.append(DisplayPoint(f"closest to {s.name}", tuple(closest)))
        metrics += self._path_metrics(context, entry, target, draws, warnings)
        if levels:
            nominal = min(lv.min_distance_mm for lv in levels)
            ci = interval95(np.min(all_min, axis=0)) if all_min else None
            metrics.append(Metric("clearance_mm", "Smallest clearance to any critical structure",
                                  "mm", nominal, ci))
        path = entry + np.linspace(0, 1, n_path)[:, None] * (target - entry)
        traversed = _ordered_unique(context.structures_at(path))
        report(progress, 1.0, "trajectory scored")
        geometry = DisplayGeometry(
            lines=[DisplayLine("tool", (tuple(entry), tuple(target)), inputs.radius_mm)],
            points=points)
        return SimulationResult(status=Status.OK, metrics=metrics, levels=levels,
                                geometry=geometry, warnings=warnings,
                                details={"traversed": traversed})

    def _path_metrics(self, context, entry, target, draws, warnings) -> list[Metric]:
        length = float(np.linalg.norm(target - entry))
        ci_len = None
        if draws is not None:
            ci_len = interval95(np.linalg.norm(draws.targets - draws.entries, axis=1))
        out = [Metric("path_length_mm", "Path length", "mm", length, ci_len)]
        skin = skin_structure(context)
        if skin is None:
            warnings.append("no structure has the role skin: the entry angle is not computed")
            return out
        gap = float(context.signed_distance_mm(skin, entry[None])[0])
        if abs(gap) > 3.0:
            warnings.append(f"the entry is {gap:+.1f} mm from the skin surface ({skin})")
        angle = entry_angles_deg(((target - entry) / length)[None],
                                 skin_normals_lps(context, skin, entry[None]))[0]
        ci_angle = None
        if draws is not None:
            dirs = draws.targets - draws.entries
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            ci_angle = interval95(entry_angles_deg(dirs, skin_normals_lps(context, skin,
                                                                          draws.entries)))
        out.append(Metric("entry_angle_deg", "Angle to the skin normal at entry", "deg",
                          float(angle), ci_angle))
        return out

    def search(
        self,
        context: SimulationContext,
        request: PathSearchRequest,
        parameters: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> PathSearchResult:
        from surgiplan_trajectory.search import search_paths

        return search_paths(context, request, parameters, progress=progress, cancel=cancel)


def _input_warnings(context, entry, target, critical) -> list[str]:
    warnings = []
    inside = context.geometry.contains_lps(np.vstack([entry, target]))
    for name, ok in zip(("entry", "target"), inside, strict=True):
        if not ok:
            warnings.append(f"the {name} lies outside the image; anatomy there is unknown")
    if not critical:
        warnings.append("no structure has the role critical: nothing to score risk against")
    return warnings


def _ordered_unique(names_per_point: list[list[str]]) -> list[str]:
    seen: list[str] = []
    for names in names_per_point:
        seen += [n for n in names if n not in seen]
    return seen
