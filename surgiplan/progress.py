"""Progress reporting and cancellation for long operations (Qt-free).

Long functions take ``progress: ProgressCallback | None`` and ``cancel: CancelToken | None``.
The callback receives a fraction in [0, 1] and a short text; it must be cheap and may be
called from a worker thread (the GUI marshals it to its own thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from surgiplan.errors import CancelledError

ProgressCallback = Callable[[float, str], None]


class CancelToken:
    """Thread-safe cancellation flag checked by long operations between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("cancelled by the user")


def report(progress: ProgressCallback | None, fraction: float, text: str = "") -> None:
    """Call ``progress`` if given, clamping the fraction to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), text)


def check(cancel: CancelToken | None) -> None:
    """Raise ``CancelledError`` if the token was cancelled."""
    if cancel is not None:
        cancel.raise_if_cancelled()
