"""Plan templates: rules that place a plan from each twin's own anatomy, then score it.

A template is JSON (``surgiplan.cohort-template/1``)::

    {"kind": "pedicle-screws", "levels": "lumbar" | ["L4", ...], "sides": ["left", "right"],
     "samples": 20, "exact_check": true}
    {"kind": "ablation", "targets": "all" | ["tumour 1"], "margin_mm": 5.0,
     "approach": "nearest-skin" | [X, Y, Z], "elongation": 1.25, "samples": 20}

* ``pedicle-screws``: the implant plug-in's auto-suggested screw (its own size rule from the
  pedicle width) in every bone structure named like a lumbar level (``L1``..``L5``) or the
  listed ones, on each side.
* ``ablation``: a custom zone centred on each target-role structure's centroid (LPS mm), short
  diameter = the target's equivalent-sphere diameter + 2 x ``margin_mm``, long diameter =
  ``elongation`` x short; the probe's shaft point is on the nearest skin, 20-80 mm from the
  tip (down the gradient of the distance to the skin label, a shell, at the tip), or 80 mm
  along a fixed LPS direction ``approach`` (from the tip towards the entry).

    {"kind": "trajectory", "targets": "all" | ["tumour"], "target_offset_mm": [0, 0, 0],
     "entry": "safest" | [X, Y, Z], "entry_radius_mm": null, "max_length_mm": 90,
     "max_angle_deg": 30, "diameter_mm": 0.8, "no_go_structures": [], "samples": 20}

* ``trajectory``: a straight tool to each target-role structure (or the listed ones); the
  target point is the structure's centroid plus ``target_offset_mm`` (LPS mm). The entry is
  the rank-1 candidate of the trajectory plug-in's safest-path search over the twin's own
  skin, under fixed constraints (maximum length and angle, tool diameter, no-go structures);
  with ``entry`` a direction [X, Y, Z] (LPS, from the target towards the entry) the entry
  is where the ray from the target along it leaves the skin, and with ``entry_radius_mm``
  as well the search is kept within that radius of that point (e.g. a burr-hole region).
  A target with no feasible entry is not placed, with the search's rejection counts.

Each placed plan is one *slot* (``"L4 left"``, ``"tumour 1"``); a slot the rule cannot place
(e.g. a pedicle too narrow for any screw) is kept as a not-assessable ``plan`` row with the reason.
Monte Carlo draws use the twin's seed, so a twin always gives the same numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError

SCHEMA = "surgiplan.cohort-template/1"
KINDS = ("pedicle-screws", "ablation", "trajectory")
_LUMBAR = re.compile(r"^L[1-5]$")
SHAFT_MM = 80.0


@dataclass(frozen=True)
class Template:
    """A validated plan template (see module docstring); ``name`` labels its rows."""

    kind: str
    name: str
    samples: int = 20
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": self.kind, "name": self.name,
                "samples": self.samples, **self.options}


@dataclass
class SlotResult:
    """One placed plan of one twin: slot name and the simulator's result, or why not placed."""

    slot: str
    result: Any = None  # SimulationResult
    not_placed: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    inputs: Any = None  # the simulator input (pydantic model, LPS mm)
    simulator_id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    uncertainty: Any = None  # the UncertaintyModel it was scored with


def template_from_json(data: dict[str, Any], *, source: str = "template") -> Template:
    """Validate template JSON; bad content raises :class:`BadInputError` naming ``source``."""
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise BadInputError(f"{source}: 'kind' must be one of {', '.join(KINDS)}",
                            action="see surgiplan/cohort/templates.py for the format")
    options = {k: v for k, v in data.items() if k not in ("schema", "kind", "name", "samples")}
    samples = data.get("samples", 20)
    if not isinstance(samples, int) or samples < 0:
        raise BadInputError(f"{source}: 'samples' must be a whole number >= 0",
                            action="e.g. \"samples\": 20 (0 switches Monte Carlo off)")
    return Template(kind=data["kind"], name=str(data.get("name") or data["kind"]),
                    samples=samples, options=options)


def load_template(path: Path) -> Template:
    """Read a template JSON file (or a built-in kind name, e.g. ``trajectory``)."""
    if str(path) in KINDS and not Path(path).exists():
        return template_from_json({"kind": str(path)}, source=str(path))
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read the template: {exc}", path=Path(path),
                            action="give a template JSON file or a built-in kind name") from exc
    return template_from_json(data, source=str(path))


def apply_template(template: Template, twin: Any, seed: int) -> list[SlotResult]:
    """Place and score the template's plans on one twin (:class:`surgiplan.twin.Twin`)."""
    from surgiplan.simulation import SimulationContext

    context = SimulationContext(twin)
    if template.kind == "pedicle-screws":
        return _pedicle_screws(template, context, seed)
    if template.kind == "trajectory":
        return _trajectories(template, context, twin, seed)
    return _ablation(template, context, twin, seed)


def _model(template: Template, seed: int) -> Any:
    from surgiplan.simulation import UncertaintyModel

    return UncertaintyModel(samples=template.samples, seed=seed)


def _pedicle_screws(template: Template, context: Any, seed: int) -> list[SlotResult]:
    from surgiplan.model.structures import Role
    from surgiplan.simulation import load_simulator, run_simulation

    simulator = load_simulator("implant")
    levels = template.options.get("levels", "lumbar")
    bones = [s.name for s in context.by_role(Role.BONE)]
    names = [b for b in bones if _LUMBAR.match(b)] if levels == "lumbar" else list(levels)
    slots = []
    for level in names:
        for side in template.options.get("sides", ["left", "right"]):
            slot = f"{level} {side}"
            try:
                inputs, suggestion = simulator.suggest_input(context, level, side)
            except (BadInputError, KeyError, ValueError) as exc:
                slots.append(SlotResult(slot, not_placed=f"no screw suggested: {exc}"))
                continue
            params = {"exact_check": bool(template.options.get("exact_check", True))}
            result = run_simulation(simulator, context, inputs,
                                    uncertainty=_model(template, seed), parameters=params)
            slots.append(SlotResult(slot, result, details={"suggestion": suggestion},
                                    inputs=inputs, simulator_id="implant", parameters=params,
                                    uncertainty=_model(template, seed)))
    return slots


def _ablation(template: Template, context: Any, twin: Any, seed: int) -> list[SlotResult]:
    from surgiplan.model.structures import Role
    from surgiplan.simulation import AblationInput, load_simulator, run_simulation

    simulator = load_simulator("ablation")
    wanted = template.options.get("targets", "all")
    targets = [s.name for s in context.by_role(Role.TARGET)]
    names = targets if wanted == "all" else list(wanted)
    approach = template.options.get("approach", "nearest-skin")
    margin = float(template.options.get("margin_mm", 5.0))
    slots = []
    for name in names:
        centre, diameter = _centroid_and_diameter(twin, name)
        if centre is None:
            slots.append(SlotResult(name, not_placed=f"target {name!r} is empty in this twin"))
            continue
        short = diameter + 2 * margin
        long_ = short * float(template.options.get("elongation", 1.25))
        inputs = AblationInput(
            device_id="custom", tip_lps=tuple(centre),
            shaft_lps=tuple(centre + _outward(context, centre, approach)),
            settings={"long_mm": long_, "short_mm": short, "tip_offset_mm": 0.0},
            target_structure=name)
        result = run_simulation(simulator, context, inputs, uncertainty=_model(template, seed))
        slots.append(SlotResult(name, result, details={
            "tip_lps": [float(v) for v in centre], "zone_mm": [long_, short]},
            inputs=inputs, simulator_id="ablation", uncertainty=_model(template, seed)))
    return slots


def _trajectories(template: Template, context: Any, twin: Any, seed: int) -> list[SlotResult]:
    from surgiplan.model.structures import Role
    from surgiplan.simulation import TrajectoryInput, load_simulator, run_simulation

    simulator = load_simulator("trajectory")
    wanted = template.options.get("targets", "all")
    names = ([s.name for s in context.by_role(Role.TARGET)] if wanted == "all"
             else list(wanted))
    offset = np.asarray(template.options.get("target_offset_mm", (0.0, 0.0, 0.0)), float)
    diameter = float(template.options.get("diameter_mm", 0.8))
    slots = []
    for name in names:
        centre, _ = _centroid_and_diameter(twin, name)
        if centre is None:
            slots.append(SlotResult(name, not_placed=f"target {name!r} is empty in this twin"))
            continue
        target = centre + offset.reshape(3)
        try:
            entry, details = _trajectory_entry(template, context, simulator, target, diameter)
        except (BadInputError, ValueError) as exc:
            slots.append(SlotResult(name, not_placed=str(exc)))
            continue
        inputs = TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                 diameter_mm=diameter)
        result = run_simulation(simulator, context, inputs, uncertainty=_model(template, seed))
        slots.append(SlotResult(name, result, details=details, inputs=inputs,
                                simulator_id="trajectory", uncertainty=_model(template, seed)))
    return slots


def _trajectory_entry(template: Template, context: Any, simulator: Any, target: np.ndarray,
                      diameter_mm: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Entry point (LPS mm) for ``target`` by the template's rule, and what placed it."""
    from surgiplan.simulation import PathSearchRequest
    from surgiplan.simulation.path_search import DEFAULT_MAX_ANGLE_DEG, DEFAULT_MAX_LENGTH_MM
    from surgiplan.simulation.runner import SimulationFailedError, run_search

    rule = template.options.get("entry", "safest")
    radius = template.options.get("entry_radius_mm")
    anchor = None if rule == "safest" else skin_exit(context, target, rule)
    if anchor is not None and radius is None:
        return anchor, {"entry_rule": "skin along the direction", "target_lps": list(target)}
    request = PathSearchRequest(
        target_lps=_triple(target), diameter_mm=diameter_mm, top_k=1,
        max_length_mm=float(template.options.get("max_length_mm", DEFAULT_MAX_LENGTH_MM)),
        max_angle_deg=float(template.options.get("max_angle_deg", DEFAULT_MAX_ANGLE_DEG)),
        entry_region_centre_lps=None if anchor is None else _triple(anchor),
        entry_region_radius_mm=None if anchor is None or radius is None else float(radius),
        no_go_structures=tuple(template.options.get("no_go_structures", ())))
    try:
        found = run_search(simulator, context, request)
    except SimulationFailedError as exc:
        raise ValueError(f"safest-path search failed: {exc}") from exc
    if not found.candidates:
        why = ", ".join(f"{k} {v}" for k, v in found.rejected.items() if v)
        raise ValueError(f"no feasible entry among {found.n_candidates} skin candidates"
                         + (f" (rejected: {why})" if why else ""))
    best = found.candidates[0]
    return np.asarray(best.entry_lps, float), {
        "entry_rule": "safest-path search", "target_lps": list(target),
        "n_candidates": found.n_candidates, "n_feasible": found.n_feasible,
        "clearance_mm": best.clearance_mm, "length_mm": best.length_mm,
        "angle_deg": best.angle_deg}


def _triple(v: Any) -> tuple[float, float, float]:
    """An LPS point (mm) as a float triple."""
    return float(v[0]), float(v[1]), float(v[2])


def skin_exit(context: Any, start_lps: np.ndarray, direction: Any) -> np.ndarray:
    """Where the ray from ``start_lps`` along ``direction`` (LPS) last leaves the skin
    structure (its outer surface: the last zero crossing of its signed distance, LPS mm)."""
    from scipy.ndimage import map_coordinates

    from surgiplan.model.structures import Role

    skins = context.by_role(Role.SKIN)
    if not skins:
        raise BadInputError("the twin has no skin structure to place the entry on",
                            action="give the skin the role skin, or use \"entry\": \"safest\"")
    v = np.asarray(direction, dtype=float).reshape(3)
    if not np.all(np.isfinite(v)) or np.linalg.norm(v) < 1e-9:
        raise BadInputError(f"the entry direction {list(v)} is not a direction",
                            action="give \"entry\": [X, Y, Z] (LPS, non-zero) or \"safest\"")
    g = context.geometry
    reach = float(np.linalg.norm(np.asarray(g.size) * np.asarray(g.spacing_mm)))
    t = np.arange(0.0, reach, 0.5 * min(g.spacing_mm))
    points = np.asarray(start_lps, float) + t[:, None] * (v / np.linalg.norm(v))
    ijk = g.lps_to_index(points)
    inside = np.all((ijk > -0.5) & (ijk < np.asarray(g.size) - 0.5), axis=1)
    d = map_coordinates(context.distance_map(skins[0].name), ijk[inside][:, ::-1].T, order=1)
    crossing = np.flatnonzero((d[:-1] <= 0) & (d[1:] > 0))
    if not len(crossing):
        raise ValueError("the ray from the target along the entry direction never leaves the "
                         "skin inside the image")
    j = int(crossing[-1])
    frac = d[j] / (d[j] - d[j + 1])
    return points[inside][j] + frac * (points[inside][j + 1] - points[inside][j])


def _outward(context: Any, tip_lps: np.ndarray, approach: Any) -> np.ndarray:
    """LPS vector from the tip to the shaft point (see module docstring), mm."""
    from surgiplan.model.structures import Role

    if approach != "nearest-skin":
        v = np.asarray(approach, dtype=float).reshape(3)
        return SHAFT_MM * v / np.linalg.norm(v)
    skins = context.by_role(Role.SKIN)
    if not skins:
        raise BadInputError("the twin has no skin structure for a nearest-skin approach",
                            action="give \"approach\": [X, Y, Z] in the template")
    distance = context.distance_map(skins[0].name)
    g = context.geometry
    ijk = np.clip(np.rint(g.lps_to_index(tip_lps[None])[0]).astype(int), 1,
                  np.asarray(g.size) - 2)
    x, y, z = (int(v) for v in ijk)
    grad_ijk = np.array([distance[z, y, x + 1] - distance[z, y, x - 1],
                         distance[z, y + 1, x] - distance[z, y - 1, x],
                         distance[z + 1, y, x] - distance[z - 1, y, x]], float)
    grad_ijk /= 2.0 * np.asarray(g.spacing_mm)
    v = np.asarray(g.direction, float) @ grad_ijk  # index axes -> LPS
    if distance[z, y, x] > 0:  # outside the skin label (a shell): towards it is downhill
        v = -v
    v = v if np.linalg.norm(v) > 1e-9 else np.array([0.0, -1.0, 0.0])
    length = float(np.clip(abs(distance[z, y, x]), 20.0, SHAFT_MM))  # to the skin, in the image
    return length * v / np.linalg.norm(v)


def _centroid_and_diameter(twin: Any, name: str) -> tuple[Any, float]:
    """Centroid (LPS mm) and equivalent-sphere diameter (mm) of a structure's voxels."""
    mask = twin.segmentation.mask(name)
    zyx = np.argwhere(mask)
    if not len(zyx):
        return None, 0.0
    g = twin.geometry
    centre = g.index_to_lps(zyx.mean(axis=0)[::-1][None].astype(float))[0]
    volume = len(zyx) * float(np.prod(g.spacing_mm))
    return np.asarray(centre, float), float((6.0 * volume / np.pi) ** (1.0 / 3.0))


def templated_plan(template: Template, twin_id: str, slots: list[SlotResult]) -> Any:
    """A :class:`surgiplan.plans.planset.PlanSet` holding the template's plan for one twin,
    with each placed slot as an intervention and its result (unplaced slots in the notes)."""
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.planset import PlanSet

    placed = [s for s in slots if s.inputs is not None]
    missing = [f"{s.slot}: {s.not_placed}" for s in slots if s.inputs is None]
    plan = Plan(name=f"{template.name} (cohort template)", author="SurgiPlan cohort",
                notes=f"Placed by the cohort template {template.name!r} on {twin_id}."
                      + (" Not placed: " + "; ".join(missing) if missing else ""),
                interventions=[Intervention.from_input(s.slot, s.inputs,
                                                       simulator_id=s.simulator_id,
                                                       parameters=s.parameters,
                                                       uncertainty=s.uncertainty)
                               for s in placed])
    plan_set = PlanSet([plan], actor="SurgiPlan cohort")
    plan_set.set_results(plan.name, [s.result for s in placed])
    return plan_set
