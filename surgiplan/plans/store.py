"""Plans in the case bundle: ``plans/plans.json`` (schema-versioned) and ``plans/audit.jsonl``.

``plans/plans.json`` is ``{"format": "surgiplan.plans", "schema_version": N, "plans": [...]}``
(see :class:`surgiplan.plans.model.Plan`; LPS mm). Older versions keep loading: ``MIGRATIONS[v]``
turns a version-v document into version v+1, one step per version. A newer version than this
SurgiPlan reads is refused with a one-line ``BadInputError``.

Version history:

* 0 - the unversioned pre-release layout: ``{"plans": [{"name", "status", "notes",
  "trajectories": [{"entry", "target", "diameter_mm"}]}]}`` (trajectories only, LPS mm);
* 1 - plans with typed interventions of every kind, results, author, approval, timestamps.

The entries travel with the twin (``twin.bundle_extras``), so ``save_bundle`` and
``load_bundle`` carry them with hashes; :func:`write_plans` updates only these two entries of
a bundle on disk (atomic, hash-checked) and :func:`read_plans` reads them without the image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from surgiplan import __version__
from surgiplan.errors import BadInputError
from surgiplan.io import versioned
from surgiplan.plans.audit import AuditLog, identifiers_of
from surgiplan.plans.model import Plan, utc_now
from surgiplan.plans.planset import PlanSet

FORMAT: Final = "surgiplan.plans"
SCHEMA_VERSION: Final = 1
PLANS_ENTRY = "plans/plans.json"
AUDIT_ENTRY = "plans/audit.jsonl"


class PlansDocument(BaseModel):
    """The current (version 1) form of ``plans/plans.json``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["surgiplan.plans"]
    schema_version: Literal[1]
    software: str = ""
    saved_utc: str = ""
    plans: list[Plan]


# ---------------------------------------------------------------------------- migrations
def _v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """Unversioned trajectories-only plans -> typed trajectory interventions."""
    plans = []
    for n, old in enumerate(raw.get("plans", []), start=1):
        interventions = [
            {"label": f"Trajectory {k}", "kind": "trajectory", "simulator_id": "trajectory",
             "inputs": {"entry_lps": t["entry"], "target_lps": t["target"],
                        "diameter_mm": t.get("diameter_mm", 0.8)}}
            for k, t in enumerate(old.get("trajectories", []), start=1)]
        plans.append({"name": old.get("name") or f"Plan {n}", "interventions": interventions,
                      "notes": old.get("notes", ""), "status": old.get("status", "draft")})
    return {"format": FORMAT, "schema_version": 1, "plans": plans}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def _version_of(raw: Any, path: str) -> int:
    if not isinstance(raw, dict):
        raise BadInputError("the plans document is not a JSON object", path=path,
                            action="The case file is damaged: open a backup copy")
    if "format" not in raw and "schema_version" not in raw:
        return 0
    version = raw.get("schema_version")
    if raw.get("format") != FORMAT or not isinstance(version, int) or version < 0:
        raise BadInputError(f"not a SurgiPlan plans document (format {raw.get('format')!r}, "
                            f"schema_version {version!r})", path=path,
                            action="The case file is damaged: open a backup copy")
    return version


def upgrade(raw: Any, *, path: str = PLANS_ENTRY) -> dict[str, Any]:
    """Bring a plans document of any older version up to :data:`SCHEMA_VERSION`."""
    return versioned.upgrade(raw, _version_of(raw, path), current=SCHEMA_VERSION,
                             migrations=MIGRATIONS, path=path, subject="these plans were",
                             what="plans")


def plans_from_bytes(data: bytes, *, path: str = PLANS_ENTRY) -> list[Plan]:
    """Plans from ``plans/plans.json`` bytes of any supported version."""
    raw = versioned.parse_json(data, what="plans document", path=path,
                               action="The case file is damaged: open a backup copy")
    return versioned.validated(PlansDocument, upgrade(raw, path=path),
                               what="the plans document", path=path,
                               action="The case file is damaged: open a backup copy").plans


def plans_to_bytes(plans: Iterable[Plan]) -> bytes:
    """``plans/plans.json`` bytes in the current version."""
    doc = PlansDocument(format=FORMAT, schema_version=SCHEMA_VERSION,
                        software=f"SurgiPlan {__version__}", saved_utc=utc_now(),
                        plans=list(plans))
    return json.dumps(doc.model_dump(mode="json"), indent=1).encode("utf-8")


# ---------------------------------------------------------------------------- twin / bundle
def plan_set_from_extras(extras: dict[str, bytes], *, actor: str = "",
                         forbidden: Iterable[str] = (), where: str = "") -> PlanSet:
    """A :class:`PlanSet` from bundle entries (empty when the case has no plans yet)."""
    prefix = f"{where}!" if where else ""
    plans = (plans_from_bytes(extras[PLANS_ENTRY], path=prefix + PLANS_ENTRY)
             if PLANS_ENTRY in extras else [])
    audit = AuditLog(extras.get(AUDIT_ENTRY, b""), forbidden=forbidden,
                     path=prefix + AUDIT_ENTRY)
    return PlanSet(plans, audit=audit, actor=actor)


def plans_extras(plan_set: PlanSet) -> dict[str, bytes]:
    """The two bundle entries holding ``plan_set``."""
    return {PLANS_ENTRY: plans_to_bytes(plan_set.plans), AUDIT_ENTRY: plan_set.audit.to_bytes()}


def plan_set_of_twin(twin: Any, *, actor: str = "") -> PlanSet:
    """The plans a loaded twin carries (its patient identifiers, if any, are redacted in audit)."""
    return plan_set_from_extras(twin.bundle_extras, actor=actor, forbidden=identifiers_of(twin))


def store_in_twin(twin: Any, plan_set: PlanSet) -> None:
    """Put ``plan_set`` into ``twin.bundle_extras`` (written by the next ``save_bundle``)."""
    twin.bundle_extras.update(plans_extras(plan_set))


def read_plans(bundle: str | Path, *, actor: str = "") -> PlanSet:
    """The plans of a case bundle on disk, hash-checked, without decoding the image."""
    from surgiplan.io.bundle import read_extras

    return plan_set_from_extras(read_extras(bundle), actor=actor, where=str(bundle))


def write_plans(bundle: str | Path, plan_set: PlanSet) -> Path:
    """Replace the plans entries of a bundle on disk (atomic; other entries byte-for-byte)."""
    from surgiplan.io.bundle import update_extras

    return update_extras(bundle, dict(plans_extras(plan_set)))
