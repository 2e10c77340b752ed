"""A plan: a named set of interventions (trajectories, implants, probes, resections) with their
simulator results, notes, author, approval status and timestamps. Pydantic models, LPS mm.

Each intervention keeps its simulator input in JSON form (the kind's input model from
:mod:`surgiplan.simulation.inputs`, checked on creation), its parameters and uncertainty model,
and the JSON of its last result (``SimulationResult.to_json``), so a plan re-runs anywhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from surgiplan.simulation.inputs import INPUT_TYPES, SimulationInput
from surgiplan.simulation.result import SimulationResult
from surgiplan.simulation.spec import Kind
from surgiplan.simulation.uncertainty import UncertaintyModel


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class PlanStatus(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    APPROVED = "approved"


class Intervention(BaseModel):
    """One planned action: its simulator, input (LPS mm), parameters, uncertainty, last result."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id, min_length=1)
    label: str = Field(min_length=1)
    kind: Kind
    simulator_id: str = Field(min_length=1)
    inputs: dict[str, Any]
    parameters: dict[str, Any] = Field(default_factory=dict)
    uncertainty: dict[str, Any] = Field(default_factory=dict)  # UncertaintyModel fields
    result: dict[str, Any] | None = None  # SimulationResult.to_json() of the last run
    scored_utc: str | None = None

    @model_validator(mode="after")
    def _valid_inputs(self) -> Intervention:
        try:
            model = INPUT_TYPES[self.kind].model_validate({**self.inputs, "kind": self.kind})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{self.kind} input of {self.label!r} invalid at {where}: "
                             f"{first['msg']}") from None
        self.inputs = model.model_dump(mode="json")
        UncertaintyModel(**self.uncertainty)  # raises on unknown or bad fields
        return self

    @classmethod
    def from_input(cls, label: str, inputs: SimulationInput, *, simulator_id: str | None = None,
                   parameters: dict[str, Any] | None = None,
                   uncertainty: UncertaintyModel | None = None) -> Intervention:
        """An intervention from a simulation input (simulator id defaults to the kind name)."""
        kind = Kind(inputs.kind)
        unc = {} if uncertainty is None else _uncertainty_fields(uncertainty)
        return cls(label=label, kind=kind, simulator_id=simulator_id or str(kind),
                   inputs=inputs.model_dump(mode="json"), parameters=dict(parameters or {}),
                   uncertainty=unc)

    def input_model(self) -> BaseModel:
        """The typed simulation input (TrajectoryInput, ImplantInput, ...)."""
        return INPUT_TYPES[self.kind].model_validate(self.inputs)

    def uncertainty_model(self) -> UncertaintyModel:
        return UncertaintyModel(**self.uncertainty)

    def with_result(self, result: SimulationResult) -> Intervention:
        """A copy holding ``result`` (its JSON form) scored now."""
        return self.model_copy(update={"result": result.to_json(), "scored_utc": utc_now()})


def _uncertainty_fields(model: UncertaintyModel) -> dict[str, Any]:
    """The stored form: unset SDs stay unset (the simulator's own profile applies)."""
    fields: dict[str, Any] = {"entry_sd_mm": model.entry_sd_mm, "target_sd_mm": model.target_sd_mm,
              "boundary_sd_mm": model.boundary_sd_mm, "samples": model.samples,
              "seed": model.seed}
    if model.profile:
        fields["profile"] = model.profile
    return fields


class Plan(BaseModel):
    """A candidate plan. ``approved_by``/``approved_utc`` are set when the status is approved."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id, min_length=1)
    name: str = Field(min_length=1, max_length=200)
    interventions: list[Intervention] = Field(default_factory=list)
    notes: str = ""
    author: str = ""
    status: PlanStatus = PlanStatus.DRAFT
    approved_by: str | None = None
    approved_utc: str | None = None
    created_utc: str = Field(default_factory=utc_now)
    modified_utc: str = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _approval(self) -> Plan:
        if self.status is PlanStatus.APPROVED and not (self.approved_by and self.approved_utc):
            raise ValueError("an approved plan needs approved_by and approved_utc")
        if self.status is not PlanStatus.APPROVED and (self.approved_by or self.approved_utc):
            raise ValueError("only an approved plan has approved_by / approved_utc")
        labels = [i.label for i in self.interventions]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"intervention labels must be unique in a plan, repeated: {dupes}")
        return self

    @property
    def scored(self) -> bool:
        """True when every intervention holds a result."""
        return bool(self.interventions) and all(i.result for i in self.interventions)
