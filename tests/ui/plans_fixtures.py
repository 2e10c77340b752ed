"""A small twin with a critical vessel and three trajectory plans scored by the real trajectory
simulator (shared by the plans, comparison and review tests)."""

from __future__ import annotations

import numpy as np

from surgiplan.model.structures import Role
from surgiplan.plans import Intervention, Plan, PlanSet, score_plan, store_in_twin
from surgiplan.simulation import SimulationContext, TrajectoryInput, UncertaintyModel
from surgiplan.twin import Twin
from tests.ui.conftest import TUMOUR_LPS, make_twin

VESSEL_LPS = np.array([-30.0, 10.0, -10.0])  # right of the tumour: the lateral path hits it
ENTRIES_LPS = {"Lateral": (-33.0, 10.0, -10.0), "Anterior": (-15.0, -34.0, -10.0),
               "Posterior": (-15.0, 36.0, -10.0)}


def twin_with_vessel() -> Twin:
    twin = make_twin()
    geo = twin.geometry
    k, j, i = np.indices(geo.shape_zyx)
    lps = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    vessel = np.linalg.norm(lps - VESSEL_LPS, axis=-1) <= 4.0
    twin.add_structure("vessel", vessel, role=Role.CRITICAL, color=(1.0, 0.2, 0.2),
                       margin_mm=2.0)
    return twin


def scored_plans(twin: Twin) -> list[Plan]:
    """Three one-trajectory plans to the tumour, scored (40 Monte Carlo samples)."""
    context = SimulationContext(twin)
    plans = []
    for name, entry in ENTRIES_LPS.items():
        item = Intervention.from_input(
            "Needle", TrajectoryInput(entry_lps=entry, target_lps=tuple(TUMOUR_LPS),
                                      diameter_mm=1.0),
            uncertainty=UncertaintyModel(entry_sd_mm=0.5, target_sd_mm=0.5, samples=40, seed=1))
        plan = Plan(name=name, author="tester", interventions=[item])
        results = score_plan(context, plan)
        plans.append(plan.model_copy(update={"interventions": [
            i.with_result(r) for i, r in zip(plan.interventions, results, strict=True)]}))
    return plans


def twin_with_plans() -> tuple[Twin, list[Plan]]:
    twin = twin_with_vessel()
    plans = scored_plans(twin)
    store_in_twin(twin, PlanSet(plans))
    return twin, plans
