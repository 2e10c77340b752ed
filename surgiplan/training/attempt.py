"""A resident's attempt: the two-point placement (LPS mm), the time taken, and the conversion
between placements and simulator inputs.

An attempt file is ``{"format": "surgiplan.attempt", "schema_version": 1, "exercise_id": ...,
"entry_lps": [L, P, S], "target_lps": [L, P, S], "time_taken_s": 312.5, "resident": ""}``;
:func:`read_attempt` also takes a SurgiPlan plan (one ``Plan`` as JSON, or a whole
``plans.json`` document, whose first plan is used) holding an intervention of the exercise's kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from surgiplan.errors import BadInputError
from surgiplan.io.versioned import read_json_file, validated
from surgiplan.plans.model import Intervention, Plan
from surgiplan.simulation.inputs import (
    AblationInput,
    ImplantInput,
    PointLPS,
    SimulationInput,
    TrajectoryInput,
)
from surgiplan.simulation.spec import Kind
from surgiplan.training.exercise import Exercise, Placement

ATTEMPT_FORMAT: Final = "surgiplan.attempt"


class Attempt(BaseModel):
    """What a resident submits for one exercise."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["surgiplan.attempt"] = ATTEMPT_FORMAT
    schema_version: Literal[1] = 1
    exercise_id: str = ""
    entry_lps: PointLPS
    target_lps: PointLPS
    time_taken_s: float | None = Field(default=None, ge=0)
    resident: str = ""

    @property
    def placement(self) -> Placement:
        return Placement(entry_lps=self.entry_lps, target_lps=self.target_lps)


def simulation_input(exercise: Exercise, placement: Placement) -> SimulationInput:
    """The simulator input of ``placement`` with the exercise's tool (LPS mm)."""
    tool, entry, target = exercise.tool, placement.entry_lps, placement.target_lps
    if np.allclose(entry, target, atol=1e-6):
        raise BadInputError("the two points of the placement coincide",
                            action="place the entry and the target apart")
    if exercise.kind is Kind.TRAJECTORY:
        return TrajectoryInput(entry_lps=entry, target_lps=target,
                               diameter_mm=tool.diameter_mm or 0.8)
    if exercise.kind is Kind.IMPLANT:
        from surgiplan.simulation import load_simulator

        return load_simulator(exercise.simulator_id).screw_input(
            (tool.diameter_mm, tool.length_mm), np.asarray(entry), np.asarray(target))
    if exercise.kind is Kind.ABLATION:
        assert tool.device_id is not None  # Exercise validation requires it for ablation
        return AblationInput(device_id=tool.device_id, shaft_lps=entry, tip_lps=target,
                             settings=dict(tool.settings),
                             target_structure=tool.target_structure or exercise.target_structure)
    raise BadInputError(f"{exercise.kind} exercises are not supported",
                        action="use a trajectory, implant or ablation exercise")


def intervention(exercise: Exercise, placement: Placement, label: str = "") -> Intervention:
    """The placement as a plan intervention (for a plan, a report or the simulators)."""
    return Intervention.from_input(label or exercise.title, simulation_input(exercise, placement),
                                   simulator_id=exercise.simulator_id,
                                   parameters=dict(exercise.tool.parameters))


def placement_of(item: Intervention) -> Placement:
    """The two points of an intervention (trajectory, implant, ablation), LPS mm."""
    data = item.inputs
    if item.kind is Kind.TRAJECTORY:
        return Placement(entry_lps=data["entry_lps"], target_lps=data["target_lps"])
    if item.kind is Kind.ABLATION:
        return Placement(entry_lps=data["shaft_lps"], target_lps=data["tip_lps"])
    if item.kind is Kind.IMPLANT:
        implant = ImplantInput.model_validate(data)
        pose = np.asarray(implant.pose, float)
        length = float(np.max(np.asarray(implant.vertices_mm)[:, 2]))
        head = pose[:3, 3]
        return Placement(entry_lps=tuple(head), target_lps=tuple(head + length * pose[:3, 2]))
    raise BadInputError(f"a {item.kind} intervention has no two-point placement",
                        action="submit a trajectory, implant or ablation")


FIX = "fix the file (format: surgiplan/training/exercises/README.md)"


def _from_plan(raw: dict[str, Any], exercise: Exercise, path: Path) -> Attempt:
    if raw.get("format") == "surgiplan.plans":
        from surgiplan.plans.store import plans_from_bytes

        plans = plans_from_bytes(json.dumps(raw).encode(), path=str(path))
        if not plans:
            raise BadInputError("the plans document holds no plan", path=path,
                                action="export one plan")
        plan = plans[0]
    else:
        plan = validated(Plan, raw, what="the plan", path=path, action=FIX)
    for item in plan.interventions:
        if item.kind is exercise.kind:
            p = placement_of(item)
            return Attempt(exercise_id=exercise.id, entry_lps=p.entry_lps,
                           target_lps=p.target_lps, resident=plan.author)
    raise BadInputError(f"plan {plan.name!r} holds no {exercise.kind} intervention", path=path,
                        action=f"submit a plan with a {exercise.kind}")


def read_attempt(path: str | Path, exercise: Exercise) -> Attempt:
    """An attempt from an attempt file or a SurgiPlan plan JSON (see the module docstring)."""
    path = Path(path)
    raw = read_json_file(path, what="plan", action="give an attempt or plan JSON file")
    if not isinstance(raw, dict):
        raise BadInputError("the plan file is not a JSON object", path=path,
                            action="give an attempt or plan JSON file")
    if raw.get("format") == ATTEMPT_FORMAT:
        attempt = validated(Attempt, raw, what="the attempt", path=path, action=FIX)
    elif "interventions" in raw or raw.get("format") == "surgiplan.plans":
        attempt = _from_plan(raw, exercise, path)
    else:
        raise BadInputError("neither an attempt (format 'surgiplan.attempt') nor a plan",
                            path=path, action="see surgiplan/training/exercises/README.md")
    if attempt.exercise_id and attempt.exercise_id != exercise.id:
        raise BadInputError(f"this attempt is for exercise {attempt.exercise_id!r}, not "
                            f"{exercise.id!r}", path=path, action="score it with its exercise")
    return attempt
