"""Drawing a plan's interventions: their axis (entry -> target, LPS mm), their traffic-light
level from the stored result, and pyvista actors for a 3D view (shared by the comparison
window and the OR review mode).

* trajectory: entry -> target, a tube of the tool's diameter;
* implant: head -> tip along the implant's +z axis, the placed implant mesh;
* ablation: shaft point -> tip, the probe as a tube and a sphere at the tip;
* resection: the cut surface when the plan holds one; the axis runs from the cut's centre to
  the target structure's centre (or is absent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surgiplan.plans.model import Intervention, Plan
from surgiplan.simulation.result import Level, SimulationResult
from surgiplan.simulation.spec import Kind
from surgiplan.ui.plan.trajectory_tools import LEVEL_RGB

MIN_TUBE_RADIUS_MM = 0.75
PROBE_RADIUS_MM = 1.2
_LEVEL_RANK = {Level.SAFE: 0, Level.CAUTION: 1, Level.BREACH: 2}


def level_of(intervention: Intervention) -> Level | None:
    """The stored result's verdict: worst of structure levels, concerns and unassessable
    metrics (None: not scored or nothing to judge)."""
    if not intervention.result:
        return None
    return SimulationResult.from_json(intervention.result).verdict


def plan_level(plan: Plan) -> Level | None:
    """The worst level over a plan's interventions."""
    levels = [lv for lv in (level_of(i) for i in plan.interventions) if lv is not None]
    return max(levels, key=_LEVEL_RANK.get, default=None)


def level_rgb(level: Level | None) -> tuple[float, float, float]:
    return tuple(c / 255.0 for c in LEVEL_RGB[level])


def implant_axis_lps(intervention: Intervention) -> tuple[np.ndarray, np.ndarray]:
    """(head, tip) of an implant in LPS mm: the pose origin and the far end along its +z."""
    inputs = intervention.input_model()
    pose = np.asarray(inputs.pose, float)
    z_max = max(1.0, float(np.asarray(inputs.vertices_mm, float)[:, 2].max()))
    return pose[:3, 3], pose[:3, :3] @ np.array([0.0, 0.0, z_max]) + pose[:3, 3]


def axis_lps(intervention: Intervention, *, target_centre_lps: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """(entry, target) of an intervention in LPS mm (see the module docstring), or None."""
    inputs = intervention.inputs
    if intervention.kind is Kind.TRAJECTORY:
        return np.asarray(inputs["entry_lps"], float), np.asarray(inputs["target_lps"], float)
    if intervention.kind is Kind.IMPLANT:
        return implant_axis_lps(intervention)
    if intervention.kind is Kind.ABLATION:
        return np.asarray(inputs["shaft_lps"], float), np.asarray(inputs["tip_lps"], float)
    cut = np.asarray(inputs.get("cut_vertices_lps") or [], float).reshape(-1, 3)
    if target_centre_lps is None:
        return None
    start = cut.mean(axis=0) if len(cut) else None
    if start is None or np.linalg.norm(start - target_centre_lps) < 1e-3:
        return None
    return start, np.asarray(target_centre_lps, float)


def add_intervention_actors(plotter: Any, intervention: Intervention, *, prefix: str
                            ) -> list[str]:
    """Add actors for one intervention to a pyvista plotter; returns their names."""
    import pyvista as pv

    color = level_rgb(level_of(intervention))
    inputs = intervention.inputs
    meshes: list[tuple[str, Any, dict]] = []
    if intervention.kind is Kind.TRAJECTORY:
        entry, target = axis_lps(intervention)
        radius = max(float(inputs.get("diameter_mm", 0.8)) / 2.0, MIN_TUBE_RADIUS_MM)
        meshes += [("tool", pv.Line(entry, target).tube(radius=radius, n_sides=12), {}),
                   ("entry", pv.Sphere(radius=2.5, center=entry), {"color": (1, 1, 1)}),
                   ("target", pv.Sphere(radius=2.5, center=target), {})]
    elif intervention.kind is Kind.IMPLANT:
        from surgiplan.plans.exports import implant_mesh_lps
        from surgiplan.ui.views.display_meshes import mesh_to_polydata

        meshes.append(("implant", mesh_to_polydata(implant_mesh_lps(intervention),
                                                   normals=True), {}))
    elif intervention.kind is Kind.ABLATION:
        probes = [(inputs["shaft_lps"], inputs["tip_lps"])] + [
            (p["shaft_lps"], p["tip_lps"]) for p in inputs.get("extra_probes", [])]
        for n, (shaft, tip) in enumerate(probes):
            meshes += [(f"probe{n}", pv.Line(shaft, tip).tube(radius=PROBE_RADIUS_MM), {}),
                       (f"tip{n}", pv.Sphere(radius=3.0, center=tip), {})]
    elif inputs.get("cut_vertices_lps") and inputs.get("cut_faces"):
        faces = np.asarray(inputs["cut_faces"], np.int64)
        poly = pv.PolyData(np.asarray(inputs["cut_vertices_lps"], float),
                           np.hstack([np.full((len(faces), 1), 3), faces]).ravel())
        meshes.append(("cut", poly, {"opacity": 0.6}))
    names = []
    for part, mesh, style in meshes:
        name = f"{prefix}:{intervention.id}:{part}"
        plotter.add_mesh(mesh, name=name, reset_camera=False, render=False,
                         **{"color": color, **style})
        names.append(name)
    return names
