"""Re-run a plan's simulators, and read stored results back.

:func:`score_plan` runs every intervention of a plan through its simulator plug-in (the
runner's timeout and cancel apply) and returns one result per intervention.
A stored result is read back with ``SimulationResult.from_json`` (the one JSON form).
"""

from __future__ import annotations

from surgiplan.plans.model import Intervention, Plan
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation.context import SimulationContext
from surgiplan.simulation.discovery import PluginEntry, discover, load_simulator
from surgiplan.simulation.result import (
    SimulationResult,
)
from surgiplan.simulation.runner import DEFAULT_TIMEOUT_S, run_simulation


def stored_results(plan: Plan) -> list[SimulationResult | None]:
    """The stored result of each intervention (None where it was never scored)."""
    return [None if i.result is None else SimulationResult.from_json(i.result)
            for i in plan.interventions]


def score_intervention(context: SimulationContext, intervention: Intervention, *,
                       entries: list[PluginEntry] | None = None,
                       timeout_s: float = DEFAULT_TIMEOUT_S,
                       progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> SimulationResult:
    """Run one intervention's simulator (``BadInputError`` if it is not installed)."""
    simulator = load_simulator(intervention.simulator_id, entries=entries)
    return run_simulation(simulator, context, intervention.input_model(),
                          parameters=intervention.parameters,
                          uncertainty=intervention.uncertainty_model(), timeout_s=timeout_s,
                          progress=progress, cancel=cancel)


def _part(progress: ProgressCallback | None, k: int, n: int) -> ProgressCallback | None:
    """Progress of part ``k`` of ``n`` mapped onto the whole (fractions 0..1)."""
    if progress is None:
        return None
    whole = progress

    def part(fraction: float, text: str) -> None:
        report(whole, (k + fraction) / n, text)

    return part


def score_plan(context: SimulationContext, plan: Plan, *,
               timeout_s: float = DEFAULT_TIMEOUT_S,
               progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> list[SimulationResult]:
    """Re-run every simulator of ``plan``; one result per intervention, in order."""
    entries = discover()
    results = []
    n = max(1, len(plan.interventions))
    for k, intervention in enumerate(plan.interventions):
        check(cancel)
        report(progress, k / n, f"{plan.name}: {intervention.label}")
        results.append(score_intervention(
            context, intervention, entries=entries, timeout_s=timeout_s, cancel=cancel,
            progress=_part(progress, k, n)))
    report(progress, 1.0, f"{plan.name} scored")
    return results
