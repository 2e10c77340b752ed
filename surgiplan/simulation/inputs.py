"""The input of each rehearsal kind, in LPS mm (pydantic models; numbers checked on creation).

* trajectory: a straight tool from ``entry_lps`` to ``target_lps`` of ``diameter_mm``;
* implant: an implant mesh (LPS mm, in the implant's own frame) and a 4x4 pose placing it;
* ablation: a probe line (tip and a point on the shaft) plus device settings -> a zone;
* resection: a target structure with a margin, and/or a cutting surface.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from surgiplan.simulation.spec import Kind


def _finite3(value: tuple[float, float, float]) -> tuple[float, float, float]:
    if not all(math.isfinite(v) for v in value):
        raise ValueError("a point needs 3 finite numbers (LPS mm)")
    return value


PointLPS = Annotated[tuple[float, float, float], AfterValidator(_finite3)]


class TrajectoryInput(BaseModel):
    """A straight tool (needle, SEEG electrode, DBS lead, catheter) from entry to target."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind = Kind.TRAJECTORY
    entry_lps: PointLPS
    target_lps: PointLPS
    diameter_mm: float = Field(default=0.8, gt=0, le=20)

    @model_validator(mode="after")
    def _distinct(self) -> TrajectoryInput:
        if np.allclose(self.entry_lps, self.target_lps, atol=1e-6):
            raise ValueError("entry and target are the same point")
        return self

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0


class ImplantInput(BaseModel):
    """An implant mesh (its own frame, mm) and ``pose``: 4x4 implant -> LPS, rigid."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind = Kind.IMPLANT
    implant_id: str
    vertices_mm: tuple[PointLPS, ...]
    faces: tuple[tuple[int, int, int], ...]
    pose: tuple[tuple[float, float, float, float], ...]
    # Other implants already placed (same form), checked for collisions with this one.
    other_implants: tuple[ImplantInput, ...] = ()

    @model_validator(mode="after")
    def _rigid_pose(self) -> ImplantInput:
        m = np.asarray(self.pose, dtype=float)
        if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError("pose must be a 4x4 homogeneous matrix with last row 0 0 0 1")
        if not np.allclose(m[:3, :3].T @ m[:3, :3], np.eye(3), atol=1e-4):
            raise ValueError("pose must be rigid (orthonormal rotation)")
        if self.faces and max(max(f) for f in self.faces) >= len(self.vertices_mm):
            raise ValueError("a face refers to a missing vertex")
        return self


class AblationProbe(BaseModel):
    """A further probe of a multi-probe ablation (same fields as :class:`AblationInput`'s)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device_id: str
    tip_lps: PointLPS
    shaft_lps: PointLPS
    settings: dict[str, float] = Field(default_factory=dict)


class AblationInput(BaseModel):
    """A probe: ``tip_lps`` and ``shaft_lps`` (a point on the shaft); ``settings`` e.g. W, s.

    ``extra_probes``: further probes whose zones join the first one's (a composite zone).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind = Kind.ABLATION
    device_id: str
    tip_lps: PointLPS
    shaft_lps: PointLPS
    settings: dict[str, float] = Field(default_factory=dict)
    extra_probes: tuple[AblationProbe, ...] = ()
    target_structure: str | None = None  # the tumour; None: the target-role structure nearest

    @model_validator(mode="after")
    def _distinct(self) -> AblationInput:
        probes: tuple[AblationInput | AblationProbe, ...] = (self, *self.extra_probes)
        for probe in probes:
            if np.allclose(probe.tip_lps, probe.shaft_lps, atol=1e-6):
                raise ValueError("a probe's tip and shaft point are the same point")
        return self


class ResectionInput(BaseModel):
    """Resect ``target_structure`` with ``margin_mm`` and/or along a cutting surface (LPS mm).

    ``organ_structure``: the organ resected from (None: the simulator picks the organ-role
    structure, the one holding the target when there are several).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind = Kind.RESECTION
    organ_structure: str | None = None
    target_structure: str | None = None
    margin_mm: float = Field(default=0.0, ge=0)
    cut_vertices_lps: tuple[PointLPS, ...] = ()
    cut_faces: tuple[tuple[int, int, int], ...] = ()

    @model_validator(mode="after")
    def _something_to_cut(self) -> ResectionInput:
        if self.target_structure is None and not self.cut_faces:
            raise ValueError("give a target structure, a cutting surface, or both")
        return self


SimulationInput = TrajectoryInput | ImplantInput | AblationInput | ResectionInput
INPUT_TYPES: dict[Kind, type[BaseModel]] = {
    Kind.TRAJECTORY: TrajectoryInput,
    Kind.IMPLANT: ImplantInput,
    Kind.ABLATION: AblationInput,
    Kind.RESECTION: ResectionInput,
}


def input_to_json(inputs: BaseModel) -> dict[str, Any]:
    return inputs.model_dump(mode="json")
