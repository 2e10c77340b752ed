"""Candidate plans shipped with each generated phantom, scored, so a new user sees a comparison
at once (``surgiplan sample`` stores them in the bundle):

* **head**: three SEEG-style trajectories (0.8 mm) to the tumour centre from the
  anterior-superior, lateral (temporal) and posterior-superior scalp; the lateral one grazes
  the middle cerebral artery branches;
* **spine**: three left L4 pedicle screws: the suggested one, a medially converging one (towards
  the cauda equina) and a 60 mm one (through the anterior cortex towards the aorta);
* **liver**: a microwave ablation of tumour 1 and a resection of tumour 1 with a 10 mm margin.

Targets come from the twin (the centroid of the target structure); entries are where a ray
from the target leaves the skin structure. A phantom whose simulator plug-in is not installed
gets no demo plans (the reason is returned).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.plans.model import Intervention, Plan
from surgiplan.plans.planset import PlanSet
from surgiplan.plans.scoring import score_plan
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    AblationInput,
    ResectionInput,
    SimulationContext,
    TrajectoryInput,
    load_simulator,
)
from surgiplan.twin import Twin

DEMO_AUTHOR = "SurgiPlan demo"


def centroid_lps(context: SimulationContext, structure: str) -> np.ndarray:
    """Centre of mass (LPS mm) of a structure's voxels."""
    centre = context.centroid_lps(structure)
    if centre is None:
        raise BadInputError(f"structure {structure!r} is empty", action="segment it first")
    return centre


def skin_exit_lps(context: SimulationContext, start_lps: np.ndarray, direction: np.ndarray,
                  skin: str, *, step_mm: float = 0.25, max_mm: float = 400.0) -> np.ndarray:
    """The last point inside ``skin`` (signed distance <= 0) on the ray from ``start_lps``: the
    outer skin surface (the skin layer is the outermost structure)."""
    unit = np.asarray(direction, float) / np.linalg.norm(direction)
    t = np.arange(0.0, max_mm, step_mm)
    inside = np.flatnonzero(context.signed_distance_mm(skin, start_lps + t[:, None] * unit) <= 0)
    if inside.size == 0:
        raise BadInputError(f"the ray never crosses {skin!r}", action="check the skin structure")
    return start_lps + t[inside[-1]] * unit


def _head(context: SimulationContext) -> list[Plan]:
    target = centroid_lps(context, "tumour")
    approaches = {  # direction from the target towards the entry, LPS
        "A anterior-superior": (-22.0, -50.0, 28.0),
        "B lateral temporal": (-1.0, 0.0, 0.0),
        "C posterior-superior": (-12.0, 40.0, 33.0),
    }
    plans = []
    for name, direction in approaches.items():
        entry = skin_exit_lps(context, target, np.asarray(direction), "scalp")
        inputs = TrajectoryInput(entry_lps=tuple(entry), target_lps=tuple(target),
                                 diameter_mm=0.8)
        plans.append(Plan(name=f"{name} trajectory", author=DEMO_AUTHOR,
                          notes="Demo plan: SEEG electrode (0.8 mm) to the tumour centre.",
                          interventions=[Intervention.from_input("Electrode to tumour", inputs)]))
    return plans


def _spine(context: SimulationContext) -> list[Plan]:
    simulator = load_simulator("implant")
    suggested, info = simulator.suggest_input(context, "L4", "left")
    entry, tip = np.asarray(info["entry_lps"]), np.asarray(info["tip_lps"])
    axis = (tip - entry) / np.linalg.norm(tip - entry)
    size = f"{info['diameter_mm']:g}x{info['length_mm']:g}"
    variants = {
        "A suggested": (suggested, f"Suggested {size} mm screw along the pedicle axis."),
        "B medial convergence": (
            simulator.screw_input(size, entry, tip + np.array([-8.0, 0.0, 0.0])),
            "Same entry, tip aimed 8 mm further medially."),
        "C long screw": (
            simulator.screw_input((info["diameter_mm"], 60.0), entry, entry + 60.0 * axis),
            "Suggested axis with a 60 mm screw."),
    }
    return [Plan(name=f"{name} left L4 screw", author=DEMO_AUTHOR, notes=f"Demo plan: {text}",
                 interventions=[Intervention.from_input(
                     "Left L4 pedicle screw", inputs, simulator_id="implant",
                     parameters={"scored_part": "shank"})])
            for name, (inputs, text) in variants.items()]


def _liver(context: SimulationContext) -> list[Plan]:
    centre = centroid_lps(context, "tumour 1")
    shaft = skin_exit_lps(context, centre, np.array([-0.35, -1.0, 0.0]), "skin")
    axis = (centre - shaft) / np.linalg.norm(centre - shaft)
    ablation = AblationInput(device_id="generic-microwave", tip_lps=tuple(centre + 14.0 * axis),
                             shaft_lps=tuple(shaft), settings={"power_w": 100.0, "time_min": 10.0},
                             target_structure="tumour 1")
    resection = ResectionInput(organ_structure="liver", target_structure="tumour 1",
                               margin_mm=10.0)
    return [
        Plan(name="A microwave ablation", author=DEMO_AUTHOR,
             notes="Demo plan: one microwave antenna, 100 W for 10 min (illustrative device).",
             interventions=[Intervention.from_input("Ablation of tumour 1", ablation)]),
        Plan(name="B resection 10 mm margin", author=DEMO_AUTHOR,
             notes="Demo plan: non-anatomical resection of tumour 1 with a 10 mm margin.",
             interventions=[Intervention.from_input(
                 "Resection of tumour 1", resection,
                 parameters={"specimen_rule": "target_margin"})]),
    ]


DEMOS: dict[str, Callable[[SimulationContext], list[Plan]]] = {
    "head": _head, "spine": _spine, "liver": _liver}


def demo_plans(name: str, twin: Twin, *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> tuple[PlanSet, str]:
    """The scored demo plans of phantom ``name`` and "" - or an empty set and the reason."""
    plan_set = PlanSet(actor=DEMO_AUTHOR)
    if name not in DEMOS:
        return plan_set, f"no demo plans for {name!r}"
    context = SimulationContext(twin)
    try:
        plans = DEMOS[name](context)
        scored = []
        for n, plan in enumerate(plans):
            check(cancel)
            report(progress, n / len(plans), f"scoring demo plan {plan.name}")
            scored.append((plan, score_plan(context, plan, cancel=cancel)))
    except BadInputError as exc:  # e.g. a simulator plug-in is not installed
        return plan_set, f"demo plans skipped: {exc}"
    for plan, results in scored:
        plan_set.add(plan)
        plan_set.set_results(plan.name, results)
    report(progress, 1.0, "demo plans scored")
    return plan_set, ""
