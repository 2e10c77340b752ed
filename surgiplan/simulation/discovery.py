"""Find simulator plug-ins through the entry-point group ``surgiplan.simulators``.

Plug-in modules are imported only when :func:`discover` is called (never when SurgiPlan is
imported). Discovery never raises: a plug-in that fails to import, to build, or whose spec is
invalid or for another API version is listed as disabled with the reason.

Trust: the plug-ins bundled with SurgiPlan (:data:`BUNDLED_DISTRIBUTIONS`) run in the app's
process (their live re-scorers need millisecond latency). Every other plug-in is third-party:
it is imported and checked in a child process (:mod:`surgiplan.simulation.isolation`), so an
import that hangs or crashes disables only that plug-in, and its entry's ``simulator`` is an
:class:`~surgiplan.simulation.isolation.IsolatedSimulator` whose runs happen in a child with a
hard timeout. ``SURGIPLAN_PLUGIN_TRUST`` overrides this: ``bundled`` (default), ``none``
(isolate every plug-in), ``all`` (run every plug-in in-process, for plug-in developers), or a
comma-separated list of further distribution names to trust.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata as metadata
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError
from surgiplan.simulation.capabilities import capability_problems, unknown_capabilities
from surgiplan.simulation.spec import API_VERSION, SimulatorSpec, parse_spec

GROUP = "surgiplan.simulators"
TRUST_ENV = "SURGIPLAN_PLUGIN_TRUST"
BUNDLED_DISTRIBUTIONS = frozenset({"surgiplan-trajectory", "surgiplan-implant",
                                   "surgiplan-ablation", "surgiplan-resection"})


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
    isolated: bool = False  # True: a third-party plug-in run in a child process

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "entry_point": self.name, "value": self.value, "distribution": self.distribution,
            "enabled": self.enabled, "reason": self.reason, "isolated": self.isolated,
            "spec": None if spec is None else spec.model_dump(mode="json"),
        }


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def instantiate(obj: Any) -> Any:
    """A simulator object from what an entry point names (class, factory or instance)."""
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "spec")):
        obj = obj()
    return obj


def load_entry(ep: metadata.EntryPoint) -> PluginEntry:
    """Import and check one entry point; any failure becomes a disabled entry with the reason."""
    entry = PluginEntry(ep.name, ep.value, _distribution(ep))
    try:
        simulator = instantiate(ep.load())
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
    """What keeps ``simulator`` from honouring the contract (empty when it does): a declared
    capability must be implemented (:mod:`surgiplan.simulation.capabilities`)."""
    problems = spec_problems(spec)
    if not callable(getattr(simulator, "run", None)):
        problems.append("has no run() method")
    problems += capability_problems(simulator, spec)
    return problems + _profile_problems(getattr(simulator, "error_profile", None))


def spec_problems(spec: SimulatorSpec) -> list[str]:
    """What the spec alone shows is wrong (checked from a manifest without importing)."""
    problems = []
    if spec.api_version != API_VERSION:
        problems.append(f"written for simulator API v{spec.api_version}; this SurgiPlan "
                        f"implements v{API_VERSION}")
    if not spec.outputs:
        problems.append("declares no outputs")
    return problems + unknown_capabilities(spec)


MAX_PLACEMENT_SD_MM = 50.0  # the largest placement-error SD the Uncertainty forms accept


def _profile_problems(profile: Any) -> list[str]:
    """What is wrong with a declared ``error_profile`` (none declared is fine)."""
    from surgiplan.simulation.uncertainty import ErrorProfile

    if profile is None:
        return []
    if not isinstance(profile, ErrorProfile):
        return [f"error_profile is {type(profile).__name__}, not an ErrorProfile"]
    sds = (profile.entry_sd_mm, profile.target_sd_mm)
    if not all(isinstance(v, int | float) and 0 <= v <= MAX_PLACEMENT_SD_MM for v in sds):
        return [f"error_profile SDs {sds} mm are not numbers in [0, {MAX_PLACEMENT_SD_MM:g}]"]
    return []


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def trusted_distributions(setting: str | None = None) -> frozenset[str] | None:
    """Distribution names run in-process (normalised); None means every one.

    ``setting`` (default: the ``SURGIPLAN_PLUGIN_TRUST`` variable): ``bundled``, ``none``,
    ``all``, or a comma-separated list of names trusted besides the bundled ones.
    """
    setting = (os.environ.get(TRUST_ENV, "bundled") if setting is None else setting).strip()
    if setting.lower() == "all":
        return None
    if setting.lower() == "none":
        return frozenset()
    extra = {_normalise(n) for n in setting.split(",") if n.strip() and n.strip() != "bundled"}
    return BUNDLED_DISTRIBUTIONS | extra


def _is_trusted(ep: metadata.EntryPoint, trusted: frozenset[str] | None) -> bool:
    dist = getattr(ep, "dist", None)
    return trusted is None or (dist is not None and _normalise(dist.name) in trusted)


def _key(ep: metadata.EntryPoint) -> tuple[str, ...]:
    dist = getattr(ep, "dist", None)
    where = str(getattr(dist, "_path", "")) if dist is not None else ""
    return (ep.name, ep.value, _distribution(ep), where)


_PROBED: dict[tuple[str, ...], PluginEntry] = {}
_PROBE_LOCK = threading.Lock()
_MAX_FILES_FINGERPRINTED = 5000


def _probe_cache_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("surgiplan", appauthor=False)) / \
        "plugin-checks.json"


def _fingerprint(ep: metadata.EntryPoint) -> str:
    """Changes when the entry point, its distribution or its top-level module's files do
    (found on ``sys.path`` without importing anything)."""
    import importlib.machinery

    from surgiplan import __version__

    parts: list[Any] = [*_key(ep), __version__, API_VERSION, sys.version]
    top = ep.value.split(":")[0].split(".")[0]
    try:
        spec = importlib.machinery.PathFinder.find_spec(top)
        roots = [] if spec is None else \
            list(spec.submodule_search_locations or []) or [spec.origin or ""]
    except Exception:  # an odd sys.path entry: fingerprint without the files
        roots = []
    for root in roots:
        paths = [Path(root)] if Path(root).is_file() else \
            sorted(Path(root).rglob("*"))[:_MAX_FILES_FINGERPRINTED]
        parts += [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.is_file()]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _read_probe_cache() -> dict[str, Any]:
    try:
        data = json.loads(_probe_cache_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_probe_cache(cache: dict[str, Any]) -> None:
    path = _probe_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only cache folder only costs speed
        pass


def _isolated_entries(eps: list[metadata.EntryPoint], *,
                      refresh: bool = False) -> list[PluginEntry]:
    """Third-party entries, checked in a child process; the outcome is kept (in memory and in
    the user cache folder) until the plug-in's files change, or ``refresh``."""
    from surgiplan.simulation.isolation import probe_entries

    with _PROBE_LOCK:
        new = [ep for ep in eps if refresh or _key(ep) not in _PROBED]
        if new:
            disk = {} if refresh else _read_probe_cache()
            prints = {_key(ep): _fingerprint(ep) for ep in new}
            unknown = [ep for ep in new if prints[_key(ep)] not in disk]
            if unknown:
                found = probe_entries([(ep.name, ep.value) for ep in unknown])
                disk.update({prints[_key(ep)]: f for ep, f in zip(unknown, found, strict=True)})
                _write_probe_cache(disk)
            for ep in new:
                _PROBED[_key(ep)] = _isolated_entry(ep, disk[prints[_key(ep)]])
        # copies (discover() may disable one as a duplicate), sharing the warm child process
        return [dataclasses.replace(_PROBED[_key(ep)]) for ep in eps]


def _isolated_entry(ep: metadata.EntryPoint, found: dict[str, Any]) -> PluginEntry:
    from surgiplan.simulation.isolation import IsolatedSimulator
    from surgiplan.simulation.uncertainty import ErrorProfile

    entry = PluginEntry(ep.name, ep.value, _distribution(ep), isolated=True,
                        reason=str(found.get("reason", "")))
    try:
        if found.get("spec") is None:
            return entry
        entry.spec = parse_spec(found["spec"], origin=f"plug-in {ep.name}")
        data = found.get("error_profile")
        fields: dict[str, Any] = {} if not isinstance(data, dict) else {
            k: tuple(tuple(x) for x in v) if k in ("extra", "extra_sources") else v
            for k, v in data.items()}
        profile = None if not isinstance(data, dict) else ErrorProfile(**fields)
    except Exception as exc:  # what the child sent does not fit: the plug-in is disabled
        entry.spec, entry.reason = None, f"failed to load: {_one_line(exc)}"
        return entry
    entry.problems = [str(p) for p in found.get("problems", [])]
    entry.enabled = not entry.problems
    entry.simulator = IsolatedSimulator(entry.spec, ep.value, error_profile=profile)
    return entry


def manifest_entry(ep: metadata.EntryPoint, *, isolated: bool) -> PluginEntry:
    """An entry from the manifest an entry point names (``package:file.json``): nothing of the
    plug-in is imported; its ``simulator`` imports the real class on first use, in-process
    (:class:`~surgiplan.simulation.manifest.LazySimulator`) or in its child (``isolated``)."""
    from surgiplan.simulation.isolation import IsolatedSimulator
    from surgiplan.simulation.manifest import LazySimulator, read_manifest

    entry = PluginEntry(ep.name, ep.value, _distribution(ep), isolated=isolated)
    try:
        manifest = read_manifest(ep.value, allow_import=not isolated)
    except Exception as exc:  # missing, unreadable or invalid manifest: disabled, never raised
        entry.reason = f"failed to load its manifest: {_one_line(exc)}"
        return entry
    entry.spec = manifest.spec
    entry.problems = spec_problems(manifest.spec) + _profile_problems(manifest.error_profile)
    entry.enabled = not entry.problems
    entry.reason = "; ".join(entry.problems)

    def loaded(real: Any, problems: list[str]) -> None:  # the real spec replaces a stale one
        if real is None:  # it failed to import or breaks the contract: listed disabled now
            entry.enabled = False
        entry.spec = getattr(real, "spec", entry.spec)
        entry.problems += [p for p in problems if p not in entry.problems]
        entry.reason = "; ".join(entry.problems)

    entry.simulator = IsolatedSimulator(manifest.spec, manifest.simulator,
                                        error_profile=manifest.error_profile) if isolated \
        else LazySimulator(manifest, label=f"simulator {manifest.spec.id}", on_load=loaded)
    return entry


def verify(entry: PluginEntry) -> None:
    """Import the real simulator of a manifest entry (in-process when trusted, in a child
    process when third-party) and record in ``entry.problems`` what breaks the contract or
    where the manifest differs from it (``simulators validate``); class entries were fully
    checked when discovered."""
    from surgiplan.simulation.isolation import probe_entries
    from surgiplan.simulation.manifest import LazySimulator, PluginLoadError, is_manifest_value

    if not entry.enabled or not is_manifest_value(entry.value) or entry.spec is None:
        return
    if isinstance(entry.simulator, LazySimulator):
        with contextlib.suppress(PluginLoadError):  # problems land in the entry (on_load)
            entry.simulator.load()
        return
    found = probe_entries([(entry.name, entry.simulator.value)])[0]
    problems = [str(p) for p in found.get("problems", [])]
    if found.get("spec") is None:
        problems.append(str(found.get("reason") or "its simulator did not load"))
    elif found["spec"] != entry.spec.model_dump(mode="json"):
        problems.append(f"its manifest's spec differs from {entry.simulator.value}'s real "
                        f"spec; regenerate the manifest")
    entry.problems += problems
    entry.enabled = entry.enabled and not problems
    entry.reason = "; ".join(entry.problems)


_DISCOVERED: dict[tuple[Any, ...], list[PluginEntry]] = {}
_DISCOVER_LOCK = threading.Lock()


def discover(*, group: str = GROUP, trust: str | None = None,
             refresh: bool = False) -> list[PluginEntry]:
    """Every installed simulator plug-in, listed and checked; duplicates of an id are disabled.

    An entry point naming a manifest (``package:file.json``) is listed from it without
    importing the plug-in (:mod:`surgiplan.simulation.manifest`); one naming a class is loaded
    as before. Bundled plug-ins run in-process; third-party ones are checked and run in a child
    process (see the module docstring; ``trust`` overrides ``SURGIPLAN_PLUGIN_TRUST``), the
    check's outcome cached until their files change. The list is kept per process for the same
    entry points and trust; ``refresh`` builds it (and checks third-party plug-ins) again.
    """
    try:
        eps = sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value))
    except Exception as exc:  # a corrupt installation
        return [PluginEntry("?", "?", "?", reason=f"cannot list plug-ins: {_one_line(exc)}")]
    trusted = trusted_distributions(trust)
    key = (group, trusted, tuple(_key(ep) for ep in eps))
    with _DISCOVER_LOCK:
        if refresh or key not in _DISCOVERED:
            _DISCOVERED[key] = _discover(eps, trusted, refresh=refresh)
        return list(_DISCOVERED[key])


def _discover(eps: list[metadata.EntryPoint], trusted: frozenset[str] | None, *,
              refresh: bool) -> list[PluginEntry]:
    from surgiplan.simulation.manifest import is_manifest_value

    listed = [ep for ep in eps if is_manifest_value(ep.value)]
    by_key = {_key(ep): manifest_entry(ep, isolated=not _is_trusted(ep, trusted))
              for ep in listed}
    eps_classes = [ep for ep in eps if not is_manifest_value(ep.value)]
    inside = [ep for ep in eps_classes if _is_trusted(ep, trusted)]
    outside = [ep for ep in eps_classes if not _is_trusted(ep, trusted)]
    by_key.update({_key(ep): load_entry(ep) for ep in inside})
    if outside:
        by_key.update(zip(map(_key, outside), _isolated_entries(outside, refresh=refresh),
                          strict=True))
    entries = [by_key[_key(ep)] for ep in eps]
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
    """The enabled simulator with ``simulator_id``; ``BadInputError`` saying what is available
    (a disabled plug-in is named as disabled with its reason, never as "not installed")."""
    entries = discover() if entries is None else entries
    for entry in entries:
        if entry.spec is not None and entry.spec.id == simulator_id and entry.enabled:
            return entry.simulator
    disabled = [e for e in entries if not e.enabled and (
        (e.spec is not None and e.spec.id == simulator_id) or e.name == simulator_id)]
    if disabled:
        raise BadInputError(f"simulator {simulator_id!r} is installed but disabled "
                            f"({disabled[0].distribution}): {disabled[0].reason}",
                            action="fix or reinstall the plug-in, see `surgiplan simulators "
                                   "validate`")
    available = sorted(e.spec.id for e in entries if e.enabled and e.spec is not None)
    raise BadInputError(f"no simulator {simulator_id!r} is installed (installed: "
                        f"{', '.join(available) or 'none'})",
                        action="install its plug-in, e.g. pip install -e plugins/trajectory")
