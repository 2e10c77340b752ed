"""Simulator manifests: what discovery needs to list a plug-in, without importing it.

An entry point in ``surgiplan.simulators`` may name a JSON resource of the plug-in's package
instead of its simulator class (npe2 style)::

    [project.entry-points."surgiplan.simulators"]
    trajectory = "surgiplan_trajectory:surgiplan.json"

The file holds ``{"schema": SCHEMA, "simulator": "module:Class", "spec": <SimulatorSpec>,
"error_profile": <ErrorProfile or null>, "capabilities": {name: [method, ...]}}``: the
capabilities the spec declares with the methods each provides
(:mod:`surgiplan.simulation.capabilities`; optional in older manifests, must match the spec's
list when present). It is found on ``sys.path`` without executing any
of the plug-in's code, so listing simulators costs a file read; the simulator class is imported
only when something other than ``spec``/``error_profile`` is asked of it
(:class:`LazySimulator`). Write a manifest from the real class with::

    python -m surgiplan.simulation.manifest write \
        surgiplan_trajectory.simulator:TrajectorySimulator OUT.json
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.metadata as metadata
import importlib.resources
import importlib.util
import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError, SurgiPlanError
from surgiplan.simulation.capabilities import (
    capability_problems,
    manifest_capabilities,
    unknown_capabilities,
)
from surgiplan.simulation.spec import SimulatorSpec, parse_spec

SCHEMA = "surgiplan.simulator-manifest/1"
MAX_MANIFEST_BYTES = 2 * 2**20
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Manifest:
    """A plug-in's declared simulator: ``simulator`` is its ``module:attr`` (class, factory
    or instance, as an entry point would name it)."""

    simulator: str
    spec: SimulatorSpec
    error_profile: Any = None  # an ErrorProfile or None
    capabilities: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def is_manifest_value(value: str) -> bool:
    """Whether an entry-point value (``package:file.json``) names a manifest, not a class."""
    module, _, attr = value.partition(":")
    return bool(module.strip()) and attr.strip().lower().endswith(".json")


def profile_to_json(profile: Any) -> dict[str, Any] | None:
    """An ErrorProfile as JSON (None for none)."""
    return None if profile is None else dataclasses.asdict(profile)


def profile_from_json(data: Any) -> Any:
    """The ErrorProfile of :func:`profile_to_json` output (None for none)."""
    from surgiplan.simulation.uncertainty import ErrorProfile

    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"error_profile is {type(data).__name__}, not an object")
    fields: dict[str, Any] = {k: tuple(tuple(x) for x in v) if k in ("extra", "extra_sources")
                              else v for k, v in data.items()}
    return ErrorProfile(**fields)


def _package_folders(package: str) -> list[str]:
    """The folders of ``package`` (dotted) found through the import finders, executing none of
    its modules (a package's ``__init__`` never runs)."""
    spec = importlib.util.find_spec(package.split(".")[0])
    for depth in range(1, len(package.split("."))):
        locations = [] if spec is None else list(spec.submodule_search_locations or [])
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(package.split(".")[:depth + 1]), locations)
    return [] if spec is None else list(spec.submodule_search_locations or [])


def manifest_text(package: str, name: str, *, allow_import: bool = False) -> str:
    """The text of resource ``name`` of ``package``, read from its folder without importing it;
    one not found there (a zipped or frozen package) is read through ``importlib.resources``,
    which imports the package, only when ``allow_import`` (a trusted plug-in)."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"manifest name {name!r} must be a plain file name")
    folders = _package_folders(package)
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ValueError(f"{path} is larger than {MAX_MANIFEST_BYTES // 2**20} MB")
            return path.read_text(encoding="utf-8")
    if not allow_import:
        where = ", ".join(folders) or "no package folder found on sys.path"
        raise FileNotFoundError(f"no {name} in package {package} ({where})")
    return importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")


def parse_manifest(data: Any, *, origin: str) -> Manifest:
    """A :class:`Manifest` from its JSON object; ``BadInputError`` naming ``origin``."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BadInputError(f"not a simulator manifest (schema {got!r}, expected {SCHEMA!r})",
                            path=origin, action="regenerate it with `python -m "
                                                "surgiplan.simulation.manifest write`")
    target = data.get("simulator")
    if not isinstance(target, str) or ":" not in target or is_manifest_value(target):
        raise BadInputError(f"manifest 'simulator' {target!r} is not 'module:Class'",
                            path=origin, action="name the simulator class")
    try:
        profile = profile_from_json(data.get("error_profile"))
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"manifest error_profile is invalid: {exc}", path=origin,
                            action="regenerate the manifest") from exc
    spec = parse_spec(data.get("spec"), origin=origin)
    return Manifest(target, spec, profile, _declared(data.get("capabilities"), spec, origin))


def _declared(data: Any, spec: SimulatorSpec, origin: str) -> dict[str, list[str]]:
    """The manifest's capability record; absent (an older manifest): the spec's, derived."""
    if data is None:
        return manifest_capabilities(spec)
    if not isinstance(data, dict) or \
            not all(isinstance(v, list) and all(isinstance(m, str) for m in v)
                    for v in data.values()):
        raise BadInputError("manifest 'capabilities' is not {name: [method, ...]}",
                            path=origin, action="regenerate the manifest")
    if sorted(data) != sorted(spec.capabilities):
        raise BadInputError(f"manifest 'capabilities' {sorted(data)} differ from the spec's "
                            f"{sorted(spec.capabilities)}", path=origin,
                            action="regenerate the manifest")
    return {k: list(v) for k, v in data.items()}


def read_manifest(value: str, *, allow_import: bool = False) -> Manifest:
    """The manifest an entry-point value ``package:file.json`` names (``BadInputError``,
    ``OSError`` or ``ValueError`` when it cannot be read; see :func:`manifest_text`)."""
    package, _, name = (part.strip() for part in value.partition(":"))
    text = manifest_text(package, name, allow_import=allow_import)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInputError(f"manifest is not JSON: {exc}", path=value,
                            action="regenerate the manifest") from exc
    return parse_manifest(data, origin=value)


def spec_json(spec: SimulatorSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def load_object(value: str) -> Any:
    """The simulator object ``module:attr`` names (imports its module)."""
    from surgiplan.simulation.discovery import GROUP, instantiate

    return instantiate(metadata.EntryPoint("simulator", value, GROUP).load())


def manifest_for(value: str) -> dict[str, Any]:
    """The manifest JSON of the real simulator ``module:attr`` (imports it); a declared
    capability it does not implement is refused (``BadInputError``)."""
    simulator = load_object(value)
    spec = parse_spec(getattr(simulator, "spec", None), origin=value)
    broken = unknown_capabilities(spec) + capability_problems(simulator, spec)
    if broken:
        raise BadInputError("; ".join(broken), path=value,
                            action="implement the capability or drop it from the spec")
    return {"schema": SCHEMA, "simulator": value, "spec": spec_json(spec),
            "error_profile": profile_to_json(getattr(simulator, "error_profile", None)),
            "capabilities": manifest_capabilities(spec)}


class PluginLoadError(SurgiPlanError):
    """A manifest's simulator class cannot be imported or does not honour the contract."""


class LazySimulator:
    """A trusted plug-in's simulator known from its manifest: ``spec`` and ``error_profile``
    come from the manifest; anything else imports the real object (once, thread-safe) and is
    answered by it. ``on_load(real, problems)`` hears of the real object and of any drift
    between the manifest and the real spec (the real spec is used then), or, with ``real``
    None, why it cannot be used."""

    isolated = False

    def __init__(self, manifest: Manifest, *, label: str = "",
                 on_load: Callable[[Any, list[str]], None] | None = None) -> None:
        self.spec = manifest.spec
        self.error_profile = manifest.error_profile
        self.simulator_value = manifest.simulator
        self._label = label or f"simulator {manifest.spec.id}"
        self._on_load = on_load
        self._real: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "loaded" if self._real is not None else "not imported"
        return f"LazySimulator({self.spec.id!r}, {self.simulator_value!r}, {state})"

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def load(self) -> Any:
        """The real simulator object, imported on first call; ``PluginLoadError`` if it cannot
        be imported or breaks the contract."""
        with self._lock:
            if self._real is None:
                self._real = self._import()
        return self._real

    def _import(self) -> Any:
        from surgiplan.simulation.discovery import _one_line, contract_problems

        try:
            real = load_object(self.simulator_value)
            spec = parse_spec(getattr(real, "spec", None), origin=self._label)
        except Exception as exc:
            raise self._unusable(f"{self._label} failed to load ({self.simulator_value}): "
                                 f"{_one_line(exc)}") from exc
        broken = contract_problems(real, spec)
        if broken:
            raise self._unusable(f"{self._label} ({self.simulator_value}): "
                                 f"{'; '.join(broken)}")
        drift = []
        if spec_json(spec) != spec_json(self.spec):
            drift.append(f"its manifest's spec differs from {self.simulator_value}'s real "
                         f"spec (the real one is used); regenerate the manifest")
            _log.warning("%s: %s", self._label, drift[0])
            self.spec = spec
        real_profile = getattr(real, "error_profile", None)
        if profile_to_json(real_profile) != profile_to_json(self.error_profile):
            drift.append("its manifest's error_profile differs from the real one (the real "
                         "one is used); regenerate the manifest")
            _log.warning("%s: %s", self._label, drift[-1])
            self.error_profile = real_profile
        if self._on_load is not None:
            self._on_load(real, drift)
        return real

    def _unusable(self, message: str) -> PluginLoadError:
        if self._on_load is not None:
            self._on_load(None, [message])
        return PluginLoadError(message)

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes this proxy lacks; never import for special names
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def write(value: str, out: Path) -> dict[str, Any]:
    """Write the manifest of the real simulator ``value`` (``module:Class``) to ``out``."""
    data = manifest_for(value)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m surgiplan.simulation.manifest write MODULE:CLASS OUT.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "write":
        print("usage: python -m surgiplan.simulation.manifest write MODULE:CLASS OUT.json",
              file=sys.stderr)
        return 2
    try:
        data = write(args[1], Path(args[2]))
    except (SurgiPlanError, ImportError, AttributeError, OSError) as exc:
        print(f"error: {args[1]}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"wrote {args[2]} ({data['spec']['id']} {data['spec']['version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
