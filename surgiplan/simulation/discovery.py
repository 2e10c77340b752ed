"""Find simulator plug-ins through the entry-point group ``surgiplan.simulators``.

Plug-in modules are imported only when :func:`discover` is called (never when SurgiPlan is
imported). Discovery never raises: a plug-in that fails to import, to build, or whose spec is
invalid or for another API version is listed as disabled with the reason.
"""

from __future__ import annotations

import importlib.metadata as metadata
from dataclasses import dataclass, field
from typing import Any

from surgiplan.errors import BadInputError
from surgiplan.simulation.spec import API_VERSION, SimulatorSpec, parse_spec

GROUP = "surgiplan.simulators"


@dataclass
class PluginEntry:
    """One entry point and what became of it."""

    name: str
    value: str
    distribution: str
    enabled: bool = False
    reason: str = ""
    spec: SimulatorSpec | None = None
    simulator: Any = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "entry_point": self.name, "value": self.value, "distribution": self.distribution,
            "enabled": self.enabled, "reason": self.reason,
            "spec": None if spec is None else spec.model_dump(mode="json"),
        }


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _instantiate(obj: Any) -> Any:
    """A simulator object from what an entry point names (class, factory or instance)."""
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "spec")):
        obj = obj()
    return obj


def load_entry(ep: metadata.EntryPoint) -> PluginEntry:
    """Import and check one entry point; any failure becomes a disabled entry with the reason."""
    entry = PluginEntry(ep.name, ep.value, _distribution(ep))
    try:
        simulator = _instantiate(ep.load())
        spec = parse_spec(getattr(simulator, "spec", None), origin=f"plug-in {ep.name}")
    except Exception as exc:  # a broken plug-in must never break discovery
        entry.reason = f"failed to load: {_one_line(exc)}"
        return entry
    entry.spec, entry.simulator = spec, simulator
    entry.problems = contract_problems(simulator, spec)
    entry.enabled = not entry.problems
    entry.reason = "; ".join(entry.problems)
    return entry


def contract_problems(simulator: Any, spec: SimulatorSpec) -> list[str]:
    """What keeps ``simulator`` from honouring the contract (empty when it does)."""
    problems = []
    if spec.api_version != API_VERSION:
        problems.append(f"written for simulator API v{spec.api_version}; this SurgiPlan "
                        f"implements v{API_VERSION}")
    if not callable(getattr(simulator, "run", None)):
        problems.append("has no run() method")
    if "search" in spec.capabilities and not callable(getattr(simulator, "search", None)):
        problems.append("declares the 'search' capability but has no search() method")
    if not spec.outputs:
        problems.append("declares no outputs")
    return problems


def discover(*, group: str = GROUP) -> list[PluginEntry]:
    """Every installed simulator plug-in, loaded and checked; duplicates of an id are disabled."""
    try:
        eps = sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value))
    except Exception as exc:  # a corrupt installation
        return [PluginEntry("?", "?", "?", reason=f"cannot list plug-ins: {_one_line(exc)}")]
    entries = [load_entry(ep) for ep in eps]
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.enabled and entry.spec is not None:
            if entry.spec.id in seen:
                entry.enabled = False
                entry.reason = f"simulator id {entry.spec.id!r} is already provided by " \
                               f"{seen[entry.spec.id]}"
            else:
                seen[entry.spec.id] = entry.distribution
    return entries


def load_simulator(simulator_id: str, *, entries: list[PluginEntry] | None = None) -> Any:
    """The enabled simulator with ``simulator_id``; ``BadInputError`` saying what is available."""
    entries = discover() if entries is None else entries
    for entry in entries:
        if entry.spec is not None and entry.spec.id == simulator_id and entry.enabled:
            return entry.simulator
    disabled = [e for e in entries if e.spec is not None and e.spec.id == simulator_id]
    if disabled:
        raise BadInputError(f"simulator {simulator_id!r} is disabled: {disabled[0].reason}",
                            action="fix or reinstall the plug-in")
    available = sorted(e.spec.id for e in entries if e.enabled and e.spec is not None)
    raise BadInputError(f"no simulator {simulator_id!r} is installed (installed: "
                        f"{', '.join(available) or 'none'})",
                        action="install its plug-in, e.g. pip install -e plugins/trajectory")
