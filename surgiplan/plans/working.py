"""The working rehearsals of a case (what is placed in the rehearsal panels but not yet saved as
a plan), kept in the bundle entry ``plans/working.json`` so that reopening a case restores them.

``{"format": "surgiplan.working", "schema_version": 1, "rehearsals": {KIND: {"simulator_id",
"inputs", "parameters", "extra"}}}``: one record per rehearsal kind (``trajectory``,
``implant``, ``ablation``, ``resection``); ``inputs`` is the simulator input's JSON (LPS mm),
``parameters`` the simulator parameters, ``extra`` what the panel needs beyond them (e.g. the
resection's cutting plane and its control-point heights, mm). A damaged or newer entry is
ignored with a one-line reason: the working state is a convenience, the plans are the record.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

WORKING_ENTRY: Final = "plans/working.json"
FORMAT: Final = "surgiplan.working"
SCHEMA_VERSION: Final = 1
KINDS: Final = ("trajectory", "implant", "ablation", "resection")


class WorkingRehearsal(BaseModel):
    """One rehearsal kind's working state (inputs LPS mm, as the simulator takes them)."""

    model_config = ConfigDict(extra="forbid")

    simulator_id: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class WorkingDocument(BaseModel):
    """``plans/working.json``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["surgiplan.working"] = FORMAT
    schema_version: Literal[1] = SCHEMA_VERSION
    rehearsals: dict[str, WorkingRehearsal] = Field(default_factory=dict)


def working_to_bytes(rehearsals: dict[str, WorkingRehearsal]) -> bytes:
    """The entry's bytes (keys sorted: the same state gives the same bytes)."""
    unknown = sorted(set(rehearsals) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown rehearsal kinds {unknown}; known: {list(KINDS)}")
    doc = WorkingDocument(rehearsals=dict(sorted(rehearsals.items())))
    return json.dumps(doc.model_dump(mode="json"), indent=1, sort_keys=True).encode("utf-8")


def working_from_extras(extras: dict[str, bytes]) -> tuple[dict[str, WorkingRehearsal], str]:
    """The working rehearsals a bundle carries and, if its entry could not be read, why
    (``({}, reason)``); ``({}, "")`` when the case has none."""
    data = extras.get(WORKING_ENTRY)
    if data is None:
        return {}, ""
    try:
        doc = WorkingDocument.model_validate(json.loads(data))
    except (ValueError, UnicodeDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        return {}, (f"{WORKING_ENTRY}: the working rehearsals could not be read ({first}); "
                    "they are not restored (saved plans are not affected)")
    return {k: v for k, v in doc.rehearsals.items() if k in KINDS}, ""


def store_working(extras: dict[str, bytes], rehearsals: dict[str, WorkingRehearsal]) -> bool:
    """Put the working rehearsals into ``extras`` (a twin's ``bundle_extras``); the entry is
    removed when there are none. True when the stored bytes changed."""
    before = extras.get(WORKING_ENTRY)
    if rehearsals:
        extras[WORKING_ENTRY] = working_to_bytes(rehearsals)
    else:
        extras.pop(WORKING_ENTRY, None)
    return extras.get(WORKING_ENTRY) != before
