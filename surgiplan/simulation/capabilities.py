"""Optional simulator capabilities: what the app calls on a simulator besides ``run()``.

A simulator declares the capabilities it implements in ``spec.capabilities`` (names below);
each name stands for a typed :class:`typing.Protocol` of the methods it adds, per kind
(:data:`PROTOCOLS`). Discovery checks that a declared capability's methods exist
(:func:`capability_problems`); the app offers a feature only when the loaded simulator
:func:`supports` it, so a plug-in that declares nothing still lists, runs and shows its result
(in the CLI and in the app's panel for its kind).

=============  ===========  ===================================================================
name           kinds        methods
=============  ===========  ===================================================================
search         trajectory   ``search``: automatic safest-entry path search
live           implant      ``live_scorer(context, inputs, parameters).score(pose)``
live           ablation     ``live_scorer(context, parameters).score(inputs)``
live           resection    ``prepare(context, organ, target)``; ``live(prepared, cut, ...)``
handles        implant      ``pose_from_axis``, ``screw_family``, ``screw_mesh``: what is drawn
                            and dragged
handles        ablation     ``resolve_probes(inputs)``: the zones drawn while dragging
handles        resection    ``plane_cut(point, normal)``: the dragged cutting plane
inputs         implant      ``screw_input``, ``file_input``: inputs from a library screw, a file
checks         ablation     ``check_inputs``, ``check_target``: bad input refused before a run
devices        ablation     ``devices()``: the device tables (zone size by power and time)
optimise       ablation     ``optimise(context, inputs, parameters, *, uncertainty, ...)``
suggest        implant      ``suggest``, ``suggest_input``: an automatic placement
structures     resection    ``resection_masks``, ``add_resection_structures``: structures it
                            adds to the twin
=============  ===========  ===================================================================

Coordinates are LPS mm; poses are 4x4 (implant frame -> LPS mm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from surgiplan.simulation.spec import Kind

if TYPE_CHECKING:
    import numpy as np

    from surgiplan.progress import CancelToken, ProgressCallback
    from surgiplan.simulation.context import SimulationContext
    from surgiplan.simulation.inputs import AblationInput, ImplantInput, ResectionInput
    from surgiplan.simulation.path_search import PathSearchRequest, PathSearchResult
    from surgiplan.simulation.result import SimulationResult
    from surgiplan.simulation.uncertainty import UncertaintyModel

SEARCH = "search"
LIVE = "live"
HANDLES = "handles"
INPUTS = "inputs"
CHECKS = "checks"
DEVICES = "devices"
OPTIMISE = "optimise"
SUGGEST = "suggest"
STRUCTURES = "structures"


# ---------------------------------------------------------------------------- trajectory
@runtime_checkable
class PathSearch(Protocol):
    """``search``: score a straight path from every candidate skin entry to one target."""

    def search(self, context: SimulationContext, request: PathSearchRequest,
               parameters: dict[str, Any], *, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> PathSearchResult: ...


# ---------------------------------------------------------------------------- implant
@runtime_checkable
class ImplantScorer(Protocol):
    """A live implant scorer: ``score(pose)`` in milliseconds (nominal, no intervals)."""

    def score(self, pose: np.ndarray) -> Any: ...


@runtime_checkable
class ImplantLive(Protocol):
    """``live``: a scorer for the drag loop, built once per implant and parameters."""

    def live_scorer(self, context: SimulationContext, inputs: ImplantInput,
                    parameters: dict[str, Any] | None = None) -> ImplantScorer: ...


@runtime_checkable
class ImplantHandles(Protocol):
    """``handles``: the implant's pose from its axis and the mesh drawn (implant frame mm)."""

    def pose_from_axis(self, head_lps: Any, tip_lps: Any) -> np.ndarray: ...

    def screw_family(self, name: str | None = None) -> Any: ...

    def screw_mesh(self, diameter_mm: float, length_mm: float,
                   family: Any = None) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class ImplantInputs(Protocol):
    """``inputs``: an :class:`ImplantInput` from a library screw or an implant mesh file."""

    def screw_input(self, size: str | tuple[float, float], entry_lps: Any,
                    target_lps: Any) -> ImplantInput: ...

    def file_input(self, path: Any, pose: Any, *,
                   units: str | None = None) -> tuple[ImplantInput, list[str]]: ...


@runtime_checkable
class ImplantSuggest(Protocol):
    """``suggest``: an automatic placement for a vertebra and side ("left"/"right")."""

    def suggest(self, context: SimulationContext, vertebra: str, side: str, *,
                point_lps: Any = None) -> Any: ...

    def suggest_input(self, context: SimulationContext, vertebra: str, side: str, *,
                      point_lps: Any = None) -> tuple[ImplantInput, dict[str, Any]]: ...


# ---------------------------------------------------------------------------- ablation
@runtime_checkable
class AblationScorer(Protocol):
    """A live ablation scorer: ``score(inputs)`` -> nominal metrics by key (coverage_pct,
    min_margin_mm, zone_volume_ml, volume_in_zone_ml {name: ml}, heat_sink_mm {name: mm})."""

    def score(self, inputs: AblationInput) -> dict[str, Any]: ...


@runtime_checkable
class AblationLive(Protocol):
    """``live``: a scorer for the drag loop (its first score builds the scene: seconds)."""

    def live_scorer(self, context: SimulationContext,
                    parameters: dict[str, Any] | None = None) -> AblationScorer: ...


@runtime_checkable
class AblationHandles(Protocol):
    """``handles``: every probe of an input with its zone (``probe.zone.mesh()`` -> LPS
    vertices and faces; ``probe.tip_lps``, ``probe.shaft_lps``, ``probe.diameter_mm``)."""

    def resolve_probes(self, inputs: AblationInput, *,
                       custom_modality: str = "microwave") -> list[Any]: ...


@runtime_checkable
class AblationChecks(Protocol):
    """``checks``: ``BadInputError`` for a bad device/setting or a tumour that is no target."""

    def check_inputs(self, inputs: AblationInput,
                     parameters: dict[str, Any] | None = None) -> None: ...

    def check_target(self, context: SimulationContext, inputs: AblationInput) -> str: ...


@runtime_checkable
class AblationDevices(Protocol):
    """``devices``: device tables by id (``title``, ``probe_diameter_mm``, ``settings`` with
    ``power_w``, ``time_min`` and ``zone.long_mm``/``zone.short_mm``)."""

    def devices(self) -> Mapping[str, Any]: ...


@runtime_checkable
class AblationOptimise(Protocol):
    """``optimise``: ranked probe placements/settings (``candidates``, ``n_evaluated``...)."""

    def optimise(self, context: SimulationContext, inputs: AblationInput,
                 parameters: dict[str, Any] | None = None, *,
                 uncertainty: UncertaintyModel | None = None, **kwargs: Any) -> Any: ...


# ---------------------------------------------------------------------------- resection
@runtime_checkable
class ResectionLive(Protocol):
    """``live``: the organ gathered once (seconds), then nominal re-scores of a cut (ms)."""

    def prepare(self, context: SimulationContext, organ: str | None = None,
                target: str | None = None, *, sd_mm: float | None = None) -> Any: ...

    def live(self, prepared: Any, cut: Any, *, margin_mm: float = 0.0,
             parameters: dict[str, Any] | None = None) -> SimulationResult: ...


@runtime_checkable
class ResectionHandles(Protocol):
    """``handles``: the cut of a plane through ``point_lps`` removing the side ``normal_lps``
    points to (``cut.surface_mesh(bounds_lps, spacing_mm=...)`` -> its LPS mesh)."""

    def plane_cut(self, point_lps: Any, normal_lps: Any) -> Any: ...


@runtime_checkable
class ResectionStructures(Protocol):
    """``structures``: specimen and remnant masks, added to a twin as structures."""

    def resection_masks(self, context: SimulationContext, inputs: ResectionInput,
                        parameters: dict[str, Any] | None = None) -> Any: ...

    def add_resection_structures(self, twin: Any, masks: Any, *,
                                 editor: Any = None) -> tuple[Any, ...]: ...


# the protocol of each capability, per kind
PROTOCOLS: dict[Kind, dict[str, type]] = {
    Kind.TRAJECTORY: {SEARCH: PathSearch},
    Kind.IMPLANT: {LIVE: ImplantLive, HANDLES: ImplantHandles, INPUTS: ImplantInputs,
                   SUGGEST: ImplantSuggest},
    Kind.ABLATION: {LIVE: AblationLive, HANDLES: AblationHandles, CHECKS: AblationChecks,
                    DEVICES: AblationDevices, OPTIMISE: AblationOptimise},
    Kind.RESECTION: {LIVE: ResectionLive, HANDLES: ResectionHandles,
                     STRUCTURES: ResectionStructures},
}


def protocol_for(kind: Kind | str, capability: str) -> type | None:
    """The protocol of ``capability`` for simulators of ``kind`` (None: not a known one)."""
    return PROTOCOLS.get(Kind(kind), {}).get(capability)


def methods_of(protocol: type) -> tuple[str, ...]:
    """The method names a capability protocol asks for."""
    return tuple(sorted(n for n, v in vars(protocol).items()
                        if callable(v) and not n.startswith("_")))


def unknown_capabilities(spec: Any) -> list[str]:
    """A problem for each capability ``spec`` declares that is not known for its kind (read
    from the spec alone, as from a manifest)."""
    known = PROTOCOLS.get(Kind(spec.kind), {})
    return [f"declares the capability {name!r}, unknown for {spec.kind} simulators (known: "
            f"{', '.join(sorted(known)) or 'none'})"
            for name in spec.capabilities if name not in known]


def capability_problems(simulator: Any, spec: Any) -> list[str]:
    """A problem for each capability ``spec`` declares (and knows, see
    :func:`unknown_capabilities`) whose methods ``simulator`` lacks (empty: all fine)."""
    problems = []
    for name in spec.capabilities:
        protocol = protocol_for(spec.kind, name)
        if protocol is None:
            continue
        missing = [m for m in methods_of(protocol)
                   if not callable(getattr(simulator, m, None))]
        if missing:
            problems.append(f"declares the {name!r} capability but has no "
                            f"{', '.join(m + '()' for m in missing)}")
    return problems


def declared(spec: Any, capability: str) -> bool:
    """Whether ``spec`` declares ``capability`` (read from the spec: nothing is imported)."""
    return spec is not None and capability in spec.capabilities


def supports(simulator: Any, capability: str) -> bool:
    """Whether the app can call ``capability`` on ``simulator`` in this process: declared in
    its spec and its object implements the protocol (a third-party plug-in run in a child
    process only runs and searches there, so its other capabilities are not offered)."""
    spec = getattr(simulator, "spec", None)
    if spec is None or not declared(spec, capability):
        return False
    if capability != SEARCH and getattr(simulator, "isolated", False):
        return False
    protocol = protocol_for(spec.kind, capability)
    return protocol is not None and isinstance(simulator, protocol)


def manifest_capabilities(spec: Any) -> dict[str, list[str]]:
    """The manifest's record of the declared capabilities: name -> the methods it provides."""
    out: dict[str, list[str]] = {}
    for name in spec.capabilities:
        protocol = protocol_for(spec.kind, name)
        out[name] = list(methods_of(protocol)) if protocol is not None else []
    return out
