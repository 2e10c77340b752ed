"""The candidate plans of one case: add, duplicate, rename, delete, edit, approve, with undo/redo,
events for views and an audit line for every change.

Events on ``plan_set.events`` (callbacks get ``(event, **payload)``):

* ``"plan_added"`` / ``"plan_removed"`` / ``"plan_changed"`` (``plan_id=``, ``name=``);
* ``"plan_renamed"`` (``plan_id=``, ``name=``, ``old_name=``);
* ``"plans_reset"`` after an undo or redo (views re-read :attr:`PlanSet.plans`);
* ``"history_changed"`` whenever the undo/redo state changes.

Plans are addressed by name or id. Undo keeps whole snapshots of the (small) plan list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from surgiplan.errors import BadInputError
from surgiplan.model.events import EventEmitter
from surgiplan.plans.audit import AuditLog
from surgiplan.plans.model import Intervention, Plan, PlanStatus, new_id, utc_now
from surgiplan.simulation.result import SimulationResult

MAX_UNDO_STEPS = 100
EDITABLE_FIELDS = ("notes", "author", "interventions")


class _Step:
    def __init__(self, label: str, before: list[Plan], after: list[Plan]) -> None:
        self.label, self.before, self.after = label, before, after


class PlanSet:
    """An ordered set of uniquely named plans; ``actor`` is who makes the changes (audit)."""

    def __init__(self, plans: Iterable[Plan] = (), *, audit: AuditLog | None = None,
                 actor: str = "") -> None:
        self._plans: list[Plan] = [p.model_copy(deep=True) for p in plans]
        names = [p.name for p in self._plans]
        if len(set(names)) != len(names):
            raise ValueError(f"plan names must be unique, got {names}")
        self.audit = audit if audit is not None else AuditLog()
        self.actor = actor
        self.events = EventEmitter()
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []

    # ------------------------------------------------------------------ reading
    @property
    def plans(self) -> list[Plan]:
        """Copies of the plans, in order."""
        return [p.model_copy(deep=True) for p in self._plans]

    def names(self) -> list[str]:
        return [p.name for p in self._plans]

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, key: str) -> Plan:
        """A copy of the plan named (or with id) ``key``; ``BadInputError`` listing the names."""
        return self._find(key).model_copy(deep=True)

    def _find(self, key: str) -> Plan:
        for plan in self._plans:
            if key in (plan.name, plan.id):
                return plan
        raise BadInputError(f"no plan named {key!r} (plans: {', '.join(self.names()) or 'none'})",
                            action="use one of the listed plan names")

    def _index(self, key: str) -> int:
        return self._plans.index(self._find(key))

    # ------------------------------------------------------------------ changes
    def add(self, plan: Plan) -> Plan:
        """Add a plan (its name must be new)."""
        self._check_new_name(plan.name)
        with self._step(f"add {plan.name}"):
            self._plans.append(plan.model_copy(deep=True))
        self._log("create", plan, {"interventions": len(plan.interventions)})
        self.events.emit("plan_added", plan_id=plan.id, name=plan.name)
        return plan.model_copy(deep=True)

    def duplicate(self, key: str, new_name: str | None = None) -> Plan:
        """A copy of a plan under a new name (default "NAME (copy)"), as a draft, results kept."""
        source = self._find(key)
        name = new_name or self._free_name(f"{source.name} (copy)")
        self._check_new_name(name)
        now = utc_now()
        copy = Plan.model_validate({
            **source.model_dump(), "id": new_id(), "name": name, "status": PlanStatus.DRAFT,
            "approved_by": None, "approved_utc": None, "created_utc": now, "modified_utc": now})
        with self._step(f"duplicate {source.name}"):
            self._plans.insert(self._plans.index(source) + 1, copy)
        self._log("duplicate", copy, {"source_plan_id": source.id, "source_name": source.name})
        self.events.emit("plan_added", plan_id=copy.id, name=copy.name)
        return copy.model_copy(deep=True)

    def rename(self, key: str, new_name: str) -> None:
        plan = self._find(key)
        new_name = new_name.strip()
        if new_name == plan.name:
            return
        self._check_new_name(new_name)
        old = plan.name
        with self._step(f"rename {old}"):
            self._replace(plan, name=new_name)
        self._log("rename", self._find(new_name), {"old_name": old, "new_name": new_name})
        self.events.emit("plan_renamed", plan_id=plan.id, name=new_name, old_name=old)

    def delete(self, key: str) -> None:
        plan = self._find(key)
        with self._step(f"delete {plan.name}"):
            self._plans.remove(plan)
        self._log("delete", plan, {})
        self.events.emit("plan_removed", plan_id=plan.id, name=plan.name)

    def update(self, key: str, **fields: Any) -> Plan:
        """Change notes, author and/or interventions (a list of Intervention); back to draft
        if the plan was approved and its interventions change."""
        unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
        if unknown:
            raise ValueError(f"cannot edit {unknown}; editable: {list(EDITABLE_FIELDS)}")
        plan = self._find(key)
        if "interventions" in fields:
            fields["interventions"] = [Intervention.model_validate(i) for i in
                                       fields["interventions"]]
            if plan.status is PlanStatus.APPROVED:
                fields.update(status=PlanStatus.DRAFT, approved_by=None, approved_utc=None)
        with self._step(f"edit {plan.name}"):
            new = self._replace(plan, **fields)
        self._log("edit", new, {"fields": sorted(fields)})
        self.events.emit("plan_changed", plan_id=new.id, name=new.name)
        return new.model_copy(deep=True)

    def set_status(self, key: str, status: PlanStatus | str, *, by: str = "") -> Plan:
        """Draft, proposed, or approved (``by`` names the approver; the time is now)."""
        status = PlanStatus(status)
        plan = self._find(key)
        if status is PlanStatus.APPROVED and not by.strip():
            raise BadInputError("approving a plan needs the approver's name",
                                action="say who approves it")
        approval = ({"approved_by": by.strip(), "approved_utc": utc_now()}
                    if status is PlanStatus.APPROVED else
                    {"approved_by": None, "approved_utc": None})
        with self._step(f"{status} {plan.name}"):
            new = self._replace(plan, status=status, **approval)
        self._log("status", new, {"status": str(status), "approved_by": new.approved_by})
        self.events.emit("plan_changed", plan_id=new.id, name=new.name)
        return new.model_copy(deep=True)

    def set_results(self, key: str, results: Sequence[SimulationResult]) -> Plan:
        """Store one result per intervention (in order) as the plan's latest scores."""
        plan = self._find(key)
        if len(results) != len(plan.interventions):
            raise ValueError(f"plan {plan.name!r} has {len(plan.interventions)} interventions, "
                             f"got {len(results)} results")
        scored = [i.with_result(r) for i, r in zip(plan.interventions, results, strict=True)]
        with self._step(f"score {plan.name}"):
            new = self._replace(plan, interventions=scored)
        self._log("score", new, {"status": [str(r.status) for r in results]})
        self.events.emit("plan_changed", plan_id=new.id, name=new.name)
        return new.model_copy(deep=True)

    # ------------------------------------------------------------------ undo / redo
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def undo(self) -> str:
        """Undo the last change; returns its label ("" when there is nothing to undo)."""
        return self._travel(self._undo, self._redo, "undo")

    def redo(self) -> str:
        return self._travel(self._redo, self._undo, "redo")

    def _travel(self, source: list[_Step], target: list[_Step], action: str) -> str:
        if not source:
            return ""
        step = source.pop()
        self._plans = [p.model_copy(deep=True) for p in
                       (step.before if action == "undo" else step.after)]
        target.append(step)
        self.audit.append(action, actor=self.actor, details={"change": step.label})
        self.events.emit("plans_reset")
        self.events.emit("history_changed")
        return step.label

    # ------------------------------------------------------------------ helpers
    def _step(self, label: str) -> _Recorder:
        return _Recorder(self, label)

    def _replace(self, plan: Plan, **changes: Any) -> Plan:
        data = {**plan.model_dump(), **changes, "modified_utc": utc_now()}
        if "interventions" in changes:
            data["interventions"] = [i.model_dump() for i in changes["interventions"]]
        new = Plan.model_validate(data)
        self._plans[self._plans.index(plan)] = new
        return new

    def _check_new_name(self, name: str) -> None:
        if not name or not name.strip():
            raise BadInputError("a plan needs a name", action="type a name")
        if name in self.names():
            raise BadInputError(f"a plan named {name!r} exists already",
                                action="choose another name")

    def _free_name(self, base: str) -> str:
        name, n = base, 2
        while name in self.names():
            name, n = f"{base} {n}", n + 1
        return name

    def _log(self, action: str, plan: Plan, details: dict[str, Any]) -> None:
        self.audit.append(action, actor=self.actor, plan_id=plan.id, plan_name=plan.name,
                          details=details)


class _Recorder:
    """Context manager snapshotting the plan list around one change (an undo step)."""

    def __init__(self, plan_set: PlanSet, label: str) -> None:
        self.plan_set, self.label = plan_set, label

    def __enter__(self) -> None:
        self.before = [p.model_copy(deep=True) for p in self.plan_set._plans]

    def __exit__(self, exc_type, *_: object) -> None:
        if exc_type is not None:
            self.plan_set._plans = self.before  # a failed change leaves nothing behind
            return
        ps = self.plan_set
        ps._undo.append(_Step(self.label, self.before,
                              [p.model_copy(deep=True) for p in ps._plans]))
        del ps._undo[:-MAX_UNDO_STEPS]
        ps._redo.clear()
        ps.events.emit("history_changed")
