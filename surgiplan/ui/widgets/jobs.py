"""Background jobs: heavy work runs in a QThreadPool; results come back on the GUI thread.

A job is a callable ``fn(progress=..., cancel=...) -> result`` (the core's long-operation
signature). It never touches widgets; its progress, result or exception are delivered through
queued Qt signals, so the callbacks given to :meth:`JobRunner.submit` run on the GUI thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from surgiplan.errors import CancelledError
from surgiplan.progress import CancelToken

JobFn = Callable[..., Any]


class _JobSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, fn: JobFn, signals: _JobSignals, cancel: CancelToken) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._signals = signals
        self._cancel = cancel
        self._last_emit = 0.0

    def _progress(self, fraction: float, text: str = "") -> None:
        now = time.monotonic()
        if now - self._last_emit >= 0.05 or fraction >= 1.0:  # at most 20 updates per second
            self._last_emit = now
            self._emit(self._signals.progress, float(fraction), str(text))

    def _emit(self, signal: Any, *args: Any) -> None:
        """Emit to the GUI thread; when the window that asked is gone (the app is closing),
        stop the job quietly instead of printing a traceback."""
        try:
            signal.emit(*args)
        except RuntimeError:  # "Signal source has been deleted": nobody left to tell
            self._cancel.cancel()

    def run(self) -> None:
        try:
            result = self._fn(progress=self._progress, cancel=self._cancel)
        except BaseException as exc:  # delivered to the GUI thread, never lost
            self._emit(self._signals.failed, exc)
        else:
            self._emit(self._signals.finished, result)


@dataclass
class Job:
    """A submitted job: its name, cancel token and the last progress it reported."""

    name: str
    cancel_token: CancelToken = field(default_factory=CancelToken)
    fraction: float = 0.0
    text: str = ""
    signals: _JobSignals | None = None

    def cancel(self) -> None:
        self.cancel_token.cancel()


class JobRunner(QObject):
    """Runs jobs on a private thread pool and reports them with signals (GUI thread)."""

    started = Signal(object)  # Job
    progressed = Signal(object)  # Job
    ended = Signal(object)  # Job
    idle = Signal()

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._jobs: list[Job] = []
        self._closed = False

    def _alive(self) -> bool:
        """False once the runner was shut down or its window deleted: results still queued
        then are dropped instead of reaching widgets that no longer exist."""
        return not self._closed and shiboken6.isValid(self)

    @property
    def running(self) -> list[Job]:
        return list(self._jobs)

    def is_idle(self) -> bool:
        return not self._jobs

    def submit(
        self,
        name: str,
        fn: JobFn,
        *,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_cancel: Callable[[], None] | None = None,
    ) -> Job:
        """Start ``fn`` in a worker; call ``on_done(result)`` or ``on_error(exc)`` on this thread.

        A :class:`CancelledError` goes to ``on_cancel`` (default: nothing), not ``on_error``.
        """
        job = Job(name=name, signals=_JobSignals())
        signals = job.signals

        def progressed(fraction: float, text: str) -> None:
            if not self._alive():
                return
            job.fraction, job.text = fraction, text
            self.progressed.emit(job)

        def finished(result: Any) -> None:
            if not self._alive():
                return
            try:
                on_done(result)
            finally:  # after on_done, so a follow-up job it submits keeps the runner busy
                self._end(job)

        def failed(exc: BaseException) -> None:
            if not self._alive():
                return
            try:
                if not isinstance(exc, CancelledError):
                    on_error(exc)
                elif on_cancel is not None:
                    on_cancel()
            finally:
                self._end(job)

        signals.progress.connect(progressed)
        signals.finished.connect(finished)
        signals.failed.connect(failed)
        self._jobs.append(job)
        self.started.emit(job)
        self._pool.start(_Runnable(fn, signals, job.cancel_token))
        return job

    def submit_quiet(self, fn: JobFn) -> None:
        """Run ``fn`` in the pool without reporting it (warm-up work); its errors are dropped.

        Quiet jobs do not count for :meth:`is_idle`; :meth:`wait_for_threads` still waits.
        """
        self._pool.start(_Runnable(fn, _JobSignals(), CancelToken()))

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def wait_for_threads(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker threads finish (used on exit); queued results are dropped."""
        self.cancel_all()
        self._closed = True
        return self._pool.waitForDone(timeout_ms)

    def _end(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        self.ended.emit(job)
        if not self._jobs:
            self.idle.emit()
