"""The resection's "specimen" and "remnant" as voxel masks, and as labelled twin structures.

The simulator never changes the twin; :func:`add_resection_structures` is the explicit step
that writes the two regions as new structures, through a
:class:`~surgiplan.segmentation.editor.SegmentEditor` when one is given (one undo step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.model.structures import Role, Structure
from surgiplan.simulation import ResectionInput, SimulationContext
from surgiplan.twin import Twin
from surgiplan_resection.simulator import (
    REMNANT_COLOR,
    SPEC,
    SPECIMEN_COLOR,
    cut_of,
    prepare,
)


@dataclass(frozen=True)
class ResectionMasks:
    """Boolean ``(nz, ny, nx)`` masks: the organ's specimen and remnant voxels."""

    organ: str
    specimen: np.ndarray
    remnant: np.ndarray


def resection_masks(context: SimulationContext, inputs: ResectionInput,
                    parameters: dict[str, Any] | None = None) -> ResectionMasks:
    """The specimen and remnant of a resection (same rule and voxels as the simulator's)."""
    params = {**SPEC.defaults(), **(parameters or {})}
    prepared = prepare(context, inputs.organ_structure, inputs.target_structure)
    score = prepared.score(cut_of(inputs), rule=params["specimen_rule"],
                           margin_mm=inputs.margin_mm, surface_spacing_mm=5.0)
    specimen, remnant = prepared.masks(score)
    return ResectionMasks(prepared.organ, specimen, remnant)


def _free_name(twin: Twin, name: str) -> str:
    names, n, candidate = set(twin.segmentation.names()), 2, name
    while candidate in names:
        candidate, n = f"{name} {n}", n + 1
    return candidate


def add_resection_structures(twin: Twin, masks: ResectionMasks, *, editor: Any = None,
                             names: tuple[str, str] = ("specimen", "remnant"),
                             ) -> tuple[Structure, Structure]:
    """Add the specimen and remnant as structures (role other; a number is appended to a name
    already taken). With ``editor`` (a ``SegmentEditor`` on ``twin``) it is one undo step."""
    specimen_name, remnant_name = (_free_name(twin, n) for n in names)
    described = {
        specimen_name: (masks.specimen, SPECIMEN_COLOR, f"resection specimen of {masks.organ}"),
        remnant_name: (masks.remnant, REMNANT_COLOR, f"future remnant of {masks.organ}"),
    }
    if editor is None:
        return tuple(twin.add_structure(n, m, role=Role.OTHER, color=c, description=d)
                     for n, (m, c, d) in described.items())  # type: ignore[return-value]
    with editor.stroke(f"resection of {masks.organ}"):
        return tuple(editor.add_structure(n, m, role=Role.OTHER, color=c, description=d)
                     for n, (m, c, d) in described.items())  # type: ignore[return-value]
