"""Live re-scoring off the GUI thread while dragging (issue 15, item 11).

A drag frame must cost only the cheap preview (the moved object redrawn in the slices, its
numbers marked as updating); the live score (hundreds of milliseconds for an ablation on a
loaded machine) runs in a worker. :class:`CoalescingScorer` runs one score at a time: a
request made while one runs replaces any request already waiting (the latest position wins,
stale ones are never scored), and the answer comes back on the GUI thread with the time it
took from request to answer (``last_ms``). An answer is handed on unless a newer one already
was or it was cancelled: while a drag outpaces a slow scorer (every answer is for a position
already left), the numbers follow with that lag instead of only once the drag pauses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject


class CoalescingScorer(QObject):
    """One live score at a time in ``runner``'s pool, latest request wins (see the module)."""

    def __init__(self, runner: Any, title: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner, self.title = runner, title
        self._busy = False
        self._pending: tuple | None = None
        self.generation = 0
        self._shown = 0  # generation of the last answer handed on
        self._dropped = 0  # answers up to this generation are dropped (cancelled)
        self.last_ms: float | None = None  # request -> answer of the last shown score
        self.skipped = 0  # requests replaced before they ran (coalesced)

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None

    def request(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
                on_error: Callable[[BaseException], None]) -> int:
        """Score ``fn()`` in a worker, then ``on_done(out)`` on this thread unless a newer
        answer was handed on or the request was cancelled; returns its generation."""
        self.generation += 1
        job = (self.generation, time.perf_counter(), fn, on_done, on_error)
        if self._busy:
            self.skipped += self._pending is not None
            self._pending = job
        else:
            self._start(job)
        return self.generation

    def cancel(self) -> None:
        """Drop the waiting request; an answer still running is ignored."""
        self._pending = None
        self._dropped = self.generation

    def _start(self, job: tuple) -> None:
        generation, asked, fn, on_done, on_error = job
        self._busy = True

        def done(out: Any) -> None:
            self._busy = False
            if self._current(generation):
                self.last_ms = (time.perf_counter() - asked) * 1000.0
                on_done(out)
            self._next()

        def failed(exc: BaseException) -> None:
            self._busy = False
            if self._current(generation):
                on_error(exc)
            self._next()

        self.runner.submit(self.title, lambda **_k: fn(), on_done=done, on_error=failed)

    def _current(self, generation: int) -> bool:
        """Whether the answer of ``generation`` is handed on (and is then the last one)."""
        if generation <= max(self._shown, self._dropped):
            return False
        self._shown = generation
        return True

    def _next(self) -> None:
        job, self._pending = self._pending, None
        if job is not None:
            self._start(job)
