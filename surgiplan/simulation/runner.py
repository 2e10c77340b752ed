"""Run a simulator off the caller's thread with progress, cancel and a timeout.

Whatever the simulator does — return, raise, hang — the caller gets a
:class:`~surgiplan.simulation.result.SimulationResult`: a simulator that raises yields a
``failed`` result carrying its message; one that outlives ``timeout_s`` yields ``failed`` with
"did not finish"; a cancelled run yields ``cancelled``.

``isolation="thread"`` (default) runs in a daemon thread: cheap, shares the twin's caches; a
hung simulator is asked to stop through its cancel token and otherwise abandoned (it cannot
block exit). ``isolation="process"`` (POSIX, fork) runs in a child process that is killed on
timeout or cancel: use it for untrusted plug-ins. Progress is forwarded in both modes.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from surgiplan.errors import BadInputError, CancelledError
from surgiplan.progress import CancelToken, ProgressCallback, report
from surgiplan.simulation.context import SimulationContext
from surgiplan.simulation.inputs import INPUT_TYPES
from surgiplan.simulation.result import RunProvenance, SimulationResult, Status
from surgiplan.simulation.spec import parse_spec, validate_parameters
from surgiplan.simulation.uncertainty import UncertaintyModel

DEFAULT_TIMEOUT_S = 120.0
_POLL_S = 0.02


def _provenance(simulator: Any, context: SimulationContext, inputs: Any,
                parameters: dict[str, Any], model: UncertaintyModel) -> RunProvenance:
    spec = simulator.spec
    return RunProvenance(
        simulator_id=spec.id, simulator_version=spec.version, api_version=spec.api_version,
        parameters=dict(parameters), inputs=inputs.model_dump(mode="json"),
        input_hashes=context.input_hashes(),
        uncertainty=model.to_json(context.geometry.spacing_mm),
        samples=int(model.samples), seed=int(model.seed),
    )


def _call(simulator: Any, context: SimulationContext, inputs: Any, parameters: dict[str, Any],
          model: UncertaintyModel, progress: ProgressCallback | None,
          cancel: CancelToken) -> SimulationResult:
    """Run the simulator, mapping every outcome to a result (never raises)."""
    started = time.perf_counter()
    try:
        result = simulator.run(context, inputs, parameters, uncertainty=model,
                               progress=progress, cancel=cancel)
        if not isinstance(result, SimulationResult):
            result = SimulationResult.failed(
                f"simulator returned {type(result).__name__}, not a SimulationResult")
    except CancelledError:
        result = SimulationResult.failed("cancelled by the user", status=Status.CANCELLED)
    except Exception as exc:
        result = SimulationResult.failed(f"simulator {simulator.spec.id} failed: "
                                         f"{type(exc).__name__}: {exc}")
    if result.provenance is None:
        result.provenance = _provenance(simulator, context, inputs, parameters, model)
    result.provenance.run_time_s = time.perf_counter() - started
    return result


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
    """Start a simulation and return at once; the job ends ok, failed or cancelled."""
    inputs, params, model = prepare(simulator, inputs, parameters, uncertainty)
    job = SimulationJob(on_done)
    if isolation == "process" and "fork" in multiprocessing.get_all_start_methods():
        target = _supervise_process
    elif isolation in ("thread", "process"):
        target = _supervise_thread
    else:
        raise BadInputError(f"unknown isolation {isolation!r}", action="use thread or process")
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


def _timeout_result(simulator: Any, timeout_s: float) -> SimulationResult:
    return SimulationResult.failed(f"simulator {simulator.spec.id} did not finish within "
                                   f"{timeout_s:g} s and was stopped (timeout)")


def _supervise_thread(job: SimulationJob, simulator, context, inputs, params, model,
                      timeout_s: float, progress) -> None:
    inner = CancelToken()
    box: list[SimulationResult] = []
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
            job._finish(box[0] if box else SimulationResult.failed(
                "cancelled by the user", status=Status.CANCELLED))
            return
        worker.join(_POLL_S)
    if worker.is_alive():
        inner.cancel()  # a cooperative simulator stops; a hung one is abandoned (daemon)
        job._finish(_timeout_result(simulator, timeout_s))
        return
    job._finish(box[0])


def _child(conn, simulator, context, inputs, params, model) -> None:
    def forward(fraction: float, text: str) -> None:
        conn.send(("progress", fraction, text))

    result = _call(simulator, context, inputs, params, model, forward, CancelToken())
    conn.send(("result", result))
    conn.close()


def _supervise_process(job: SimulationJob, simulator, context, inputs, params, model,
                       timeout_s: float, progress) -> None:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, simulator, context, inputs, params, model),
                       daemon=True)
    proc.start()
    child.close()
    deadline = time.monotonic() + timeout_s
    result: SimulationResult | None = None
    try:
        while result is None:
            if job.cancel_token.cancelled:
                result = SimulationResult.failed("cancelled by the user", status=Status.CANCELLED)
            elif time.monotonic() > deadline:
                result = _timeout_result(simulator, timeout_s)
            elif parent.poll(_POLL_S):
                message = parent.recv()
                if message[0] == "progress":
                    report(progress, message[1], message[2])
                else:
                    result = message[1]
            elif not proc.is_alive():
                result = SimulationResult.failed(
                    f"simulator {simulator.spec.id} died (exit code {proc.exitcode})")
    except (EOFError, OSError) as exc:
        result = SimulationResult.failed(f"simulator {simulator.spec.id} died: {exc}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5.0)
        parent.close()
    if result.provenance is None:
        result.provenance = _provenance(simulator, context, inputs, params, model)
    job._finish(result)
