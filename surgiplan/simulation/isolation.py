"""Third-party simulator plug-ins run in a child process (Qt-free).

A plug-in that is not bundled with SurgiPlan is never imported into the app's process: its
import, its spec check, ``run()`` and ``search()`` happen in a ``spawn``-ed child. A segfault,
``os._exit``, a hang that holds the GIL or an import that never returns then costs only the
child, which is killed at the deadline; the caller gets a one-line message naming the plug-in.

* :func:`probe_entries` imports entry points in one child, each within
  :data:`IMPORT_TIMEOUT_S`; one that hangs or crashes is reported and the rest probed anew.
* :class:`IsolatedSimulator` stands in for such a plug-in: same ``spec``, ``run`` and
  ``search`` as the contract, executed by a :class:`PluginHost` (one persistent child per
  plug-in, restarted after a crash or a timeout; the case data is sent once per twin version
  as read-only copies, so the child can never touch the user's twin).
* Messages from the child are bounded (:data:`MAX_MESSAGE_BYTES`) and decoded by an unpickler
  that accepts only SurgiPlan's result types, numpy arrays and plain Python values.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import io
import math
import multiprocessing
import multiprocessing.util
import os
import pickle
import signal
import threading
import time
import weakref
from dataclasses import asdict
from typing import Any, Final

from surgiplan.errors import CancelledError, SurgiPlanError
from surgiplan.progress import CancelToken, ProgressCallback, report

MAX_MESSAGE_BYTES = 64 * 2**20  # largest result a plug-in may send back
IMPORT_TIMEOUT_S = 20.0  # longest a plug-in's import (and the case hand-over) may take
IMPORT_TIMEOUT_ENV = "SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S"  # overrides IMPORT_TIMEOUT_S
DEFAULT_CALL_TIMEOUT_S = 120.0
_POLL_S = 0.01
_START_METHOD: Final = "spawn"  # never fork: the GUI process has Qt, VTK and worker threads


def import_timeout_s() -> float:
    """:data:`IMPORT_TIMEOUT_S`, or the ``SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S`` value (s)."""
    with contextlib.suppress(KeyError, ValueError):
        value = float(os.environ[IMPORT_TIMEOUT_ENV])
        if math.isfinite(value) and value > 0:
            return value
    return IMPORT_TIMEOUT_S


class PluginError(SurgiPlanError):
    """A third-party plug-in crashed, hung, raised or sent something unacceptable."""


# ---------------------------------------------------------------------------- safe decoding
_ALLOWED_CLASSES = {
    "builtins": {"tuple", "list", "dict", "set", "frozenset", "float", "int", "str", "bytes",
                 "bool", "complex", "bytearray"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.core.numeric": {"_frombuffer"},
    "surgiplan.simulation.result": {
        "Level", "Status", "IntervalKind", "Metric", "Concern", "StructureLevel", "DisplayLine",
        "DisplayPoint", "DisplayScalars", "DisplayMesh", "DisplayGeometry", "RunProvenance",
        "SimulationResult"},
    "surgiplan.simulation.path_search": {"PathSearchRequest", "PathCandidate",
                                         "PathSearchResult"},
}


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds only the allow-listed classes: a child cannot make the app run its code."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED_CLASSES.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it sent a {module}.{name}, which SurgiPlan does not "
                                     f"accept from a plug-in")


def safe_loads(data: bytes) -> Any:
    """Decode a child's message (``pickle.UnpicklingError`` for anything not allow-listed)."""
    return _SafeUnpickler(io.BytesIO(data)).load()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# ---------------------------------------------------------------------------- the child side
def _send(conn: Any, message: tuple) -> None:
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # the plug-in returned something that cannot be sent
        data = pickle.dumps(("raised", f"its result cannot be sent to SurgiPlan: "
                                       f"{_one_line(exc)}"))
    conn.send_bytes(data)


def _probe_main(conn: Any, values: list[tuple[str, str]]) -> None:
    """Child: import and check each ``(name, value)`` entry point, reporting one by one."""
    from surgiplan.simulation.discovery import GROUP, load_entry

    for n, (name, value) in enumerate(values):
        _send(conn, ("probing", n))
        entry = load_entry(metadata.EntryPoint(name, value, GROUP))
        profile = getattr(entry.simulator, "error_profile", None)
        _send(conn, ("probed", n, {
            "spec": None if entry.spec is None else entry.spec.model_dump(mode="json"),
            "reason": entry.reason, "problems": list(entry.problems),
            "error_profile": _profile_json(profile)}))
    conn.close()


def _profile_json(profile: Any) -> dict[str, Any] | None:
    from surgiplan.simulation.uncertainty import ErrorProfile

    return asdict(profile) if isinstance(profile, ErrorProfile) else None


def _host_main(conn: Any, value: str) -> None:
    """Child: import one plug-in, then serve snapshots and calls until the pipe closes."""
    from surgiplan.simulation.discovery import GROUP, instantiate

    try:
        simulator = instantiate(metadata.EntryPoint("plugin", value, GROUP).load())
    except BaseException as exc:
        _send(conn, ("error", _one_line(exc)))
        return
    _send(conn, ("ready",))
    context = None

    def forward(fraction: float, text: str = "") -> None:
        _send(conn, ("progress", float(fraction), str(text)))

    while True:
        try:
            message = _receive_from_app(conn)
        except (EOFError, OSError):
            return
        if message[0] == "snapshot":
            context = _context_from_snapshot(message[1])
            _send(conn, ("ok",))
            continue
        _, method, args, kwargs = message
        try:
            out = getattr(simulator, method)(context, *args, progress=forward,
                                             cancel=CancelToken(), **kwargs)
            _send(conn, ("result", out))
        except BaseException as exc:
            _send(conn, ("raised", _one_line(exc)))


def _receive_from_app(conn: Any) -> Any:
    """One message from the app (trusted): a pickle whose arrays follow out of band, each
    received once into immutable bytes (read-only arrays, no further copy)."""
    n_buffers = int.from_bytes(conn.recv_bytes(), "little")
    data = conn.recv_bytes()
    buffers = [conn.recv_bytes() for _ in range(n_buffers)]
    return pickle.loads(data, buffers=buffers)


def _context_from_snapshot(snapshot: dict[str, Any]) -> Any:
    from surgiplan.model.structures import Segmentation
    from surgiplan.model.volume import ImageVolume
    from surgiplan.simulation.context import SimulationContext
    from surgiplan.twin import Twin

    image = ImageVolume(**snapshot["image"])
    seg = Segmentation(geometry=image.geometry, layers=snapshot["layers"],
                       structures=snapshot["structures"])
    twin = Twin(image, seg)
    twin.set_cached_surfaces(snapshot["surfaces"])
    return SimulationContext(twin, distance_maps=snapshot.get("distances"))


# ---------------------------------------------------------------------------- the app side
_LIVE: weakref.WeakSet[_Channel] = weakref.WeakSet()


def _kill_children() -> None:
    """SIGKILL every plug-in child at exit: multiprocessing's own clean-up sends SIGTERM and
    then waits without limit, so a child that ignores SIGTERM would keep the app alive."""
    for channel in list(_LIVE):
        with contextlib.suppress(Exception):
            channel.kill()


# runs in multiprocessing's exit handler before it terminates and joins the children
multiprocessing.util.Finalize(None, _kill_children, exitpriority=100)


class _Channel:
    """The app's end of one child: bounded, safely decoded receives with a deadline."""

    def __init__(self, target: Any, args: tuple, label: str) -> None:
        ctx = multiprocessing.get_context(_START_METHOD)
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True,
                                name=f"surgiplan plug-in {label}")
        self.proc.start()
        child.close()
        self.label = label
        _LIVE.add(self)

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5.0)
        self.conn.close()
        _LIVE.discard(self)

    def send(self, message: tuple, deadline: float) -> None:
        """Send ``message`` (app data); kill the child if it will not take it.

        Arrays go out of band (pickle protocol 5) straight from their memory: sending a case
        costs no second copy of it in the app.
        """
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        failed: list[BaseException] = []

        def push() -> None:
            try:
                self.conn.send_bytes(len(buffers).to_bytes(4, "little"))
                self.conn.send_bytes(data)
                for buffer in buffers:
                    self.conn.send_bytes(buffer.raw())
            except (OSError, ValueError, BufferError) as exc:
                failed.append(exc)

        sender = threading.Thread(target=push, daemon=True, name="plug-in send")
        sender.start()
        sender.join(max(0.0, deadline - time.monotonic()))
        if sender.is_alive() or failed:
            code = self._stop_for_exit_code()
            raise PluginError(f"{self.label} stopped taking data ({code})")

    def receive(self, deadline: float, *, what: str, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None, limit_s: float | None = None) -> tuple:
        """The child's next answer (progress messages forwarded); kills it on any failure."""
        while True:
            if cancel is not None and cancel.cancelled:
                self.kill()
                raise CancelledError("cancelled by the user")
            if time.monotonic() > deadline:
                self.kill()
                limit = f" within {limit_s:g} s" if limit_s is not None else ""
                raise PluginError(f"{self.label} did not finish{limit} ({what}) and was "
                                  f"stopped: its process was killed")
            if not self.conn.poll(_POLL_S):
                continue
            message = self._read(what)
            if message[0] == "progress":
                with contextlib.suppress(Exception):
                    report(progress, message[1], message[2])
                continue
            return message

    def _read(self, what: str) -> tuple:
        try:
            data = self.conn.recv_bytes(MAX_MESSAGE_BYTES)
            message = safe_loads(data)
        except EOFError:
            raise PluginError(f"{self.label} crashed during {what} "
                              f"({self._stop_for_exit_code()})") from None
        except OSError as exc:
            if "bad message length" not in str(exc):  # the pipe broke: it died
                raise PluginError(f"{self.label} crashed during {what} "
                                  f"({self._stop_for_exit_code()})") from None
            self.kill()
            raise PluginError(f"{self.label} sent back more than "
                              f"{MAX_MESSAGE_BYTES // 2**20} MB during {what}; refused") from None
        except Exception as exc:  # not allow-listed, truncated, garbage
            self.kill()
            raise PluginError(f"{self.label} sent back an unusable answer during "
                              f"{what}: {_one_line(exc)}") from None
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            self.kill()
            raise PluginError(f"{self.label} sent back an unusable answer during {what}")
        return message

    def _stop_for_exit_code(self) -> str:
        self.proc.join(1.0)
        self.kill()
        return _exit_text(self.proc.exitcode)


class PluginHost:
    """One persistent child process running one plug-in (``value`` = ``module:attr``).

    Calls are serialised. The child is started on first use and again after it was killed
    (crash, timeout, cancel); the case is re-sent whenever the context's snapshot key changes.
    """

    def __init__(self, value: str, label: str) -> None:
        self.value, self.label = value, label
        self._lock = threading.Lock()
        self._channel: _Channel | None = None
        self._snapshot_key: Any = None

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.kill()
        self._channel, self._snapshot_key = None, None

    def call(self, method: str, context: Any, args: tuple, kwargs: dict[str, Any], *,
             timeout_s: float, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> Any:
        """``simulator.<method>(context, *args, **kwargs)`` in the child, killed after
        ``timeout_s`` (s) of running; ``PluginError``/``CancelledError`` otherwise."""
        if not self._lock.acquire(timeout=max(0.0, timeout_s)):
            raise PluginError(f"{self.label} is still busy with an earlier run")
        try:
            channel = self._ready(context, cancel)
            channel.send(("call", method, args, kwargs), time.monotonic() + import_timeout_s())
            answer = channel.receive(time.monotonic() + timeout_s, what=method,
                                     progress=progress, cancel=cancel, limit_s=timeout_s)
        except BaseException:  # the child's state is unknown: start afresh next time
            self.stop()
            raise
        finally:
            self._lock.release()
        if answer[0] == "raised":
            raise PluginError(f"{self.label} failed: {answer[1]}")
        if answer[0] != "result" or len(answer) != 2:
            self.stop()
            raise PluginError(f"{self.label} sent back an unusable answer")
        return answer[1]

    def _ready(self, context: Any, cancel: CancelToken | None) -> _Channel:
        """A running child with the plug-in imported and the current case loaded."""
        if self._channel is not None and not self._channel.alive():
            self.stop()
        if self._channel is None:
            channel = self._channel = _Channel(_host_main, (self.value,), self.label)
            first = channel.receive(time.monotonic() + import_timeout_s(), what="import",
                                    cancel=cancel, limit_s=import_timeout_s())
            if first[0] != "ready":
                raise PluginError(f"{self.label} failed to load: "
                                  f"{first[1] if len(first) > 1 else first[0]}")
        key = context.snapshot_key()
        if key != self._snapshot_key:
            deadline = time.monotonic() + import_timeout_s()
            self._channel.send(("snapshot", context.snapshot()), deadline)
            self._channel.receive(deadline, what="loading the case", cancel=cancel,
                                  limit_s=import_timeout_s())
            self._snapshot_key = key
        return self._channel


class IsolatedSimulator:
    """A third-party plug-in's stand-in: its ``spec`` and ``error_profile``, and ``run`` /
    ``search`` executed in its :class:`PluginHost` child with a hard timeout."""

    isolated = True

    def __init__(self, spec: Any, value: str, *, label: str = "",
                 error_profile: Any = None) -> None:
        self.spec = spec
        self.value = value
        self.error_profile = error_profile
        self.host = PluginHost(value, label or f"simulator {spec.id}")

    def __repr__(self) -> str:
        return f"IsolatedSimulator({self.spec.id!r}, {self.value!r})"

    def run(self, context: Any, inputs: Any, parameters: dict[str, Any], *, uncertainty: Any,
            progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
            timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> Any:
        """The plug-in's result, or a failed/cancelled result saying what went wrong."""
        from surgiplan.simulation.result import SimulationResult, Status

        try:
            return self.host.call("run", context, (inputs, dict(parameters)),
                                  {"uncertainty": uncertainty}, timeout_s=timeout_s,
                                  progress=progress, cancel=cancel)
        except CancelledError:
            return SimulationResult.failed("cancelled by the user", status=Status.CANCELLED)
        except PluginError as exc:
            return SimulationResult.failed(str(exc))
        except Exception as exc:  # e.g. inputs that cannot be sent
            return SimulationResult.failed(f"{self.host.label} could not be run: "
                                           f"{_one_line(exc)}")

    def search(self, context: Any, request: Any, parameters: dict[str, Any], *,
               progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
               timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> Any:
        """The plug-in's path search; ``PluginError`` (one line) when it fails or hangs."""
        return self.host.call("search", context, (request, dict(parameters)), {},
                              timeout_s=timeout_s, progress=progress, cancel=cancel)


_HOSTS: dict[str, IsolatedSimulator] = {}
_HOSTS_LOCK = threading.Lock()


def isolated_twin_of(simulator: Any) -> IsolatedSimulator:
    """An isolated stand-in for an in-process simulator object (its class re-imported in a
    child): ``isolation="process"`` for a plug-in that is otherwise trusted."""
    if getattr(simulator, "isolated", False):
        return simulator
    cls = type(simulator)  # a manifest's lazy stand-in names the real class itself
    value = getattr(simulator, "simulator_value", None) or f"{cls.__module__}:{cls.__qualname__}"
    with _HOSTS_LOCK:
        if value not in _HOSTS:
            _HOSTS[value] = IsolatedSimulator(simulator.spec, value,
                                              error_profile=getattr(simulator, "error_profile",
                                                                    None))
        return _HOSTS[value]


def probe_entries(values: list[tuple[str, str]],
                  timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Import and check entry points ``(name, value)`` in a child process, each within
    ``timeout_s``; one dict per entry (``spec`` JSON or None, ``reason``, ``problems``,
    ``error_profile``). A hang or crash disables only the entry it happened in."""
    timeout_s = import_timeout_s() if timeout_s is None else timeout_s
    results: list[dict[str, Any] | None] = [None] * len(values)
    start = 0
    while start < len(values):
        channel = _Channel(_probe_main, (values[start:],), "discovery")
        current = start
        try:
            while current < len(values):
                label = f"plug-in {values[current][0]} ({values[current][1]})"
                channel.label = label
                message = channel.receive(time.monotonic() + timeout_s, what="import",
                                          limit_s=timeout_s)
                if message[0] == "probed" and message[1] + start == current:
                    results[current] = message[2] if isinstance(message[2], dict) else \
                        {"reason": "its check sent back an unusable answer"}
                    current += 1
        except PluginError as exc:
            results[current] = {"reason": f"failed to load in isolation: {exc}"}
            current += 1
        finally:
            channel.kill()
        start = current
    return [r or {"reason": "not checked"} for r in results]
