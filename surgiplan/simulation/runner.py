"""Run a simulator off the caller's thread with progress, cancel and a timeout.

Whatever the simulator does — return, raise, hang, crash, return garbage — the caller gets a
:class:`~surgiplan.simulation.result.SimulationResult`: a simulator that raises yields a
``failed`` result carrying its message; one that outlives ``timeout_s`` yields ``failed`` with
"did not finish"; a cancelled run yields ``cancelled``. Every result is checked with
:func:`~surgiplan.simulation.result.validate_result` before anyone sees it: one with NaN
values not marked "not assessable", wrong types or disordered intervals becomes ``failed``,
naming the simulator and the first problems. The input hashes of the provenance are taken
before the run.

Isolation: a third-party plug-in (an
:class:`~surgiplan.simulation.isolation.IsolatedSimulator`, see
:mod:`~surgiplan.simulation.discovery`) always runs in its child process, which is killed at
the timeout. ``isolation="process"`` runs a bundled simulator that way too. ``"thread"`` (the
default for bundled plug-ins) runs in a daemon thread: at the timeout it is asked to stop
through its cancel token, then interrupted with an exception; if it still runs (stuck in C
code) the message says so instead of claiming it stopped.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from surgiplan.errors import BadInputError, CancelledError, SurgiPlanError
from surgiplan.progress import CancelToken, ProgressCallback
from surgiplan.simulation.context import SimulationContext
from surgiplan.simulation.inputs import INPUT_TYPES
from surgiplan.simulation.path_search import PathCandidate, PathSearchResult
from surgiplan.simulation.result import (
    DisplayGeometry,
    IntervalKind,
    Metric,
    RunProvenance,
    SimulationResult,
    Status,
    validate_result,
)
from surgiplan.simulation.spec import parse_spec, validate_parameters
from surgiplan.simulation.uncertainty import UncertaintyModel

DEFAULT_TIMEOUT_S = 120.0
STOP_GRACE_S = 0.5  # how long a timed-out thread gets to stop before it is interrupted
_POLL_S = 0.02
_MAX_PROBLEMS_SHOWN = 3
NOMINAL_REASON = "nominal value only: Monte Carlo off (samples=0)"


class SimulatorTimeout(BaseException):
    """Raised inside a timed-out simulator thread to stop it (not an ``Exception``, so a
    plug-in's ``except Exception`` does not swallow it)."""


def _provenance(simulator: Any, context: SimulationContext, inputs: Any,
                parameters: dict[str, Any], model: UncertaintyModel,
                hashes: dict[str, str]) -> RunProvenance:
    spec = simulator.spec
    return RunProvenance(
        simulator_id=spec.id, simulator_version=spec.version, api_version=spec.api_version,
        parameters=dict(parameters), inputs=inputs.model_dump(mode="json"),
        input_hashes=dict(hashes),
        uncertainty=model.to_json(context.geometry.spacing_mm),
        samples=int(model.samples), seed=int(model.seed),
    )


def result_problems(result: Any) -> list[str]:
    """:func:`validate_result` plus what the app needs to show and save a result (text
    warnings, JSON-ready details, display geometry)."""
    problems = validate_result(result)
    if problems or not isinstance(result, SimulationResult):
        return problems
    if not isinstance(result.warnings, list) or \
            not all(isinstance(w, str) for w in result.warnings):
        problems.append("warnings must be a list of text")
    if not isinstance(result.geometry, DisplayGeometry):
        problems.append(f"geometry is {type(result.geometry).__name__}, not DisplayGeometry")
    try:
        json.dumps(result.details, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"details are not plain JSON ({exc})")
    if not isinstance(result.error, str):
        problems.append("error must be text")
    return problems


def checked(result: Any, simulator_id: str) -> SimulationResult:
    """``result`` if it is fit to show, else a failed result naming the simulator and the
    first problems."""
    try:
        problems = result_problems(result)
    except Exception as exc:  # a result so broken that checking it fails
        problems = [f"cannot be checked: {type(exc).__name__}: {exc}"]
    if not problems:
        return result
    more = len(problems) - _MAX_PROBLEMS_SHOWN
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
    return SimulationResult.failed(f"simulator {simulator_id} returned an invalid result: "
                                   f"{shown}")


def _finalise(result: Any, simulator: Any, context: SimulationContext, inputs: Any,
              parameters: dict[str, Any], model: UncertaintyModel, hashes: dict[str, str],
              started: float) -> SimulationResult:
    """Validated result with the runner's provenance (pre-run input hashes, run time)."""
    if model.samples == 0 and isinstance(result, SimulationResult):
        result.metrics = [_nominal(m) for m in result.metrics]
    result = checked(result, simulator.spec.id)
    if not isinstance(result.provenance, RunProvenance):
        result.provenance = _provenance(simulator, context, inputs, parameters, model, hashes)
    result.provenance.input_hashes = dict(hashes)
    result.provenance.run_time_s = time.perf_counter() - started
    return result


def _nominal(metric: Any) -> Any:
    """A metric of a run with Monte Carlo off (``samples=0``) that has no interval: say why."""
    if isinstance(metric, Metric) and metric.ci95 is None and metric.interval is None \
            and not metric.no_interval_reason:
        return dataclasses.replace(metric, interval=IntervalKind.NONE,
                                   no_interval_reason=NOMINAL_REASON)
    return metric


def _call(simulator: Any, context: SimulationContext, inputs: Any, parameters: dict[str, Any],
          model: UncertaintyModel, progress: ProgressCallback | None,
          cancel: CancelToken) -> Any:
    """Run the simulator in this thread, mapping every outcome to a result (never raises)."""
    try:
        return simulator.run(context, inputs, parameters, uncertainty=model,
                             progress=progress, cancel=cancel)
    except CancelledError:
        return SimulationResult.failed("cancelled by the user", status=Status.CANCELLED)
    except SimulatorTimeout:
        return SimulationResult.failed("stopped at its timeout")
    except BaseException as exc:  # SystemExit from a plug-in must not escape
        return SimulationResult.failed(f"simulator {simulator.spec.id} failed: "
                                       f"{type(exc).__name__}: {exc}")


class SimulationJob:
    """A running simulation. ``wait()`` blocks for the result; ``cancel()`` asks it to stop.

    ``on_done(result)`` (optional) is called once from a worker thread when the result exists.
    """

    def __init__(self, on_done: Callable[[SimulationResult], None] | None = None) -> None:
        self.cancel_token = CancelToken()
        self._done = threading.Event()
        self._result: SimulationResult | None = None
        self._on_done = on_done

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> SimulationResult | None:
        """The result, or None if ``timeout`` (s) passed first."""
        self._done.wait(timeout)
        return self._result

    def _finish(self, result: SimulationResult) -> None:
        if self._done.is_set():
            return
        self._result = result
        self._done.set()
        if self._on_done is not None:
            self._on_done(result)


def prepare(simulator: Any, inputs: Any, parameters: dict[str, Any] | None,
            uncertainty: UncertaintyModel | None) -> tuple[Any, dict[str, Any], UncertaintyModel]:
    """Check inputs and parameters against the spec (``BadInputError`` if they do not fit).

    Placement-error SDs left unset take the simulator's own ``error_profile``.
    """
    spec = parse_spec(simulator.spec, origin=f"simulator {getattr(simulator.spec, 'id', '?')}")
    expected = INPUT_TYPES[spec.kind]
    if not isinstance(inputs, expected):
        raise BadInputError(f"simulator {spec.id} ({spec.kind}) needs {expected.__name__}, "
                            f"got {type(inputs).__name__}", action="pass the matching input")
    model = (uncertainty or UncertaintyModel()).resolved_for(simulator)
    return inputs, validate_parameters(spec, parameters), model


def check_required_roles(spec: Any, context: SimulationContext) -> None:
    """``BadInputError`` naming the first role in ``spec.required_roles`` that no structure of
    the case has (a simulator is never run without the structures it needs)."""
    for role in spec.required_roles:
        if not context.by_role(role):
            have = ", ".join(sorted({str(s.role) for s in context.structures})) or "none"
            raise BadInputError(
                f"simulator {spec.id} needs a structure with the role {role}; the case has "
                f"none (roles present: {have})",
                action=f"give a structure the role {role} (Structures panel, or "
                       f"`surgiplan twin build --labels`), or choose another simulator")


def submit(
    simulator: Any,
    context: SimulationContext,
    inputs: Any,
    *,
    parameters: dict[str, Any] | None = None,
    uncertainty: UncertaintyModel | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    isolation: str = "thread",
    progress: ProgressCallback | None = None,
    on_done: Callable[[SimulationResult], None] | None = None,
) -> SimulationJob:
    """Start a simulation and return at once; the job ends ok, failed or cancelled.

    A third-party (isolated) simulator always runs in its child process, whatever
    ``isolation`` says; ``isolation="process"`` sends a bundled one there too.
    """
    from surgiplan.simulation.isolation import isolated_twin_of

    if isolation not in ("thread", "process"):
        raise BadInputError(f"unknown isolation {isolation!r}", action="use thread or process")
    inputs, params, model = prepare(simulator, inputs, parameters, uncertainty)
    check_required_roles(simulator.spec, context)
    if isolation == "process":
        simulator = isolated_twin_of(simulator)
    job = SimulationJob(on_done)
    target = _supervise_isolated if getattr(simulator, "isolated", False) else _supervise_thread
    args = (job, simulator, context, inputs, params, model, timeout_s, progress)
    threading.Thread(target=target, args=args, daemon=True, name="simulation").start()
    return job


def run_simulation(simulator: Any, context: SimulationContext, inputs: Any, *,
                   cancel: CancelToken | None = None, **kwargs: Any) -> SimulationResult:
    """Blocking form of :func:`submit` (same keywords); ``cancel`` is forwarded to the job."""
    job = submit(simulator, context, inputs, **kwargs)
    while not job.done():
        if cancel is not None and cancel.cancelled:
            job.cancel()
        job.wait(_POLL_S)
    result = job.wait()
    assert result is not None
    return result


def _supervise_isolated(job: SimulationJob, simulator, context, inputs, params, model,
                        timeout_s: float, progress) -> None:
    """Run an isolated simulator: its child is killed at the timeout or on cancel."""
    started = time.perf_counter()
    hashes = context.input_hashes()
    try:
        result = simulator.run(context, inputs, params, uncertainty=model, progress=progress,
                               cancel=job.cancel_token, timeout_s=timeout_s)
    except Exception as exc:  # the job must end whatever happens
        result = SimulationResult.failed(f"simulator {simulator.spec.id} could not be run: "
                                         f"{type(exc).__name__}: {exc}")
    job._finish(_finalise(result, simulator, context, inputs, params, model, hashes, started))


def _supervise_thread(job: SimulationJob, simulator, context, inputs, params, model,
                      timeout_s: float, progress) -> None:
    started = time.perf_counter()
    hashes = context.input_hashes()  # before the run: what it was given, not what it left
    inner = CancelToken()
    box: list[Any] = []
    worker = threading.Thread(
        target=lambda: box.append(_call(simulator, context, inputs, params, model, progress,
                                        inner)),
        daemon=True, name=f"simulator {simulator.spec.id}")
    worker.start()
    deadline = time.monotonic() + timeout_s
    while worker.is_alive() and time.monotonic() < deadline:
        if job.cancel_token.cancelled:
            inner.cancel()
            worker.join(1.0)
            result = box[0] if box else SimulationResult.failed(
                "cancelled by the user", status=Status.CANCELLED)
            job._finish(_finalise(result, simulator, context, inputs, params, model, hashes,
                                  started))
            return
        worker.join(_POLL_S)
    if worker.is_alive():
        result = _timeout_result(simulator, timeout_s, stop_thread(worker, inner))
    elif box:
        result = box[0]
    else:
        result = SimulationResult.failed(f"simulator {simulator.spec.id} ended without a result")
    job._finish(_finalise(result, simulator, context, inputs, params, model, hashes, started))


def stop_thread(worker: threading.Thread, cancel: CancelToken,
                grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a timed-out worker: cancel token first, then an exception raised inside it.

    True if it ended. Code stuck in C (a sleep, a native loop) cannot be interrupted so.
    """
    cancel.cancel()
    worker.join(grace_s)
    if worker.is_alive() and worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident),
                                                   ctypes.py_object(SimulatorTimeout))
        worker.join(grace_s)
    return not worker.is_alive()


def _timeout_text(sim_id: str, timeout_s: float, stopped: bool, task: str = "") -> str:
    what = "was stopped (timeout)" if stopped else \
        "could not be stopped: it may keep running in the background until SurgiPlan exits"
    return f"simulator {sim_id}{task} did not finish within {timeout_s:g} s and {what}"


def _timeout_result(simulator: Any, timeout_s: float, stopped: bool) -> SimulationResult:
    return SimulationResult.failed(_timeout_text(simulator.spec.id, timeout_s, stopped))


class SimulationFailedError(SurgiPlanError):
    """A simulator's search failed, hung or returned garbage (one line naming it)."""


def run_search(simulator: Any, context: SimulationContext, request: Any,
               parameters: dict[str, Any] | None = None, *,
               timeout_s: float = DEFAULT_TIMEOUT_S, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> PathSearchResult:
    """``simulator.search`` within ``timeout_s`` (s), its result checked.

    An isolated plug-in searches in its child (killed at the timeout); a bundled one in a
    thread stopped as in :func:`submit`. ``SimulationFailedError`` when it raises, hangs or
    returns something that is not a sound :class:`PathSearchResult`; ``CancelledError`` when
    ``cancel`` fires.
    """
    from surgiplan.simulation.isolation import PluginError

    spec = parse_spec(simulator.spec, origin="simulator")
    if "search" not in spec.capabilities:
        raise BadInputError(f"simulator {spec.id} cannot search paths",
                            action="use --simulator trajectory")
    params = validate_parameters(spec, parameters)
    check_required_roles(spec, context)
    cancel = cancel or CancelToken()
    if getattr(simulator, "isolated", False):
        try:
            out = simulator.search(context, request, params, progress=progress, cancel=cancel,
                                   timeout_s=timeout_s)
        except PluginError as exc:
            raise SimulationFailedError(str(exc)) from None
    else:
        out = _search_in_thread(simulator, spec.id, context, request, params, timeout_s,
                                progress, cancel)
    problems = search_problems(out)
    if problems:
        raise SimulationFailedError(f"simulator {spec.id} returned an invalid search result: "
                                    + "; ".join(problems[:_MAX_PROBLEMS_SHOWN]))
    return out


def _search_in_thread(simulator: Any, sim_id: str, context: SimulationContext, request: Any,
                      params: dict[str, Any], timeout_s: float,
                      progress: ProgressCallback | None, cancel: CancelToken) -> Any:
    inner = CancelToken()
    box: list[tuple[str, Any]] = []

    def work() -> None:
        try:
            box.append(("ok", simulator.search(context, request, params, progress=progress,
                                               cancel=inner)))
        except BaseException as exc:  # SystemExit from a plug-in must not escape
            box.append(("raised", exc))

    worker = threading.Thread(target=work, daemon=True, name=f"search {sim_id}")
    worker.start()
    deadline = time.monotonic() + timeout_s
    while worker.is_alive() and time.monotonic() < deadline:
        if cancel.cancelled:
            stop_thread(worker, inner)
            raise CancelledError("cancelled by the user")
        worker.join(_POLL_S)
    if worker.is_alive() or not box:
        stopped = stop_thread(worker, inner)
        raise SimulationFailedError(_timeout_text(sim_id, timeout_s, stopped, "'s search"))
    kind, value = box[0]
    if kind == "raised":
        if isinstance(value, CancelledError):
            raise value
        raise SimulationFailedError(f"simulator {sim_id} search failed: "
                                    f"{type(value).__name__}: {value}")
    return value


def search_problems(result: Any) -> list[str]:
    """What makes a path-search result unfit to show (empty: fit)."""
    if not isinstance(result, PathSearchResult):
        return [f"not a PathSearchResult but {type(result).__name__}"]
    problems = []
    for c in list(result.candidates) + list(result.pareto):
        if not isinstance(c, PathCandidate):
            problems.append(f"a candidate is {type(c).__name__}, not a PathCandidate")
            continue
        numbers = (c.length_mm, c.angle_deg, *c.entry_lps, *c.target_lps)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
            problems.append(f"candidate #{c.rank}: entry, length or angle is not a finite number")
        if not isinstance(c.clearance_mm, (int, float)) or math.isnan(c.clearance_mm):
            problems.append(f"candidate #{c.rank}: clearance is not a number")
    if not all(isinstance(w, str) for w in result.warnings):
        problems.append("warnings must be text")
    return problems
