"""A minimal, Qt-free event emitter for model objects.

Views and panels subscribe with ``model.events.connect(callback)``; the model calls
``emit(name, **payload)``. Callbacks run synchronously on the emitting thread; GUI code must
marshal to its own thread (the Qt layer does that with queued signals).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[..., None]


class EventEmitter:
    """Named events with a list of subscribers each; ``"*"`` subscribes to every event."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callback]] = {}
        self._blocked = 0

    def connect(self, callback: Callback, event: str = "*") -> Callback:
        """Subscribe ``callback(event_name, **payload)``; returns the callback for disconnecting."""
        self._subscribers.setdefault(event, []).append(callback)
        return callback

    def disconnect(self, callback: Callback, event: str = "*") -> None:
        subs = self._subscribers.get(event, [])
        if callback in subs:
            subs.remove(callback)

    def emit(self, event: str, **payload: Any) -> None:
        """Call every subscriber of ``event`` and of ``"*"``; a failing one is logged, not fatal."""
        if self._blocked:
            return
        for callback in [*self._subscribers.get(event, []), *self._subscribers.get("*", [])]:
            try:
                callback(event, **payload)
            except Exception:  # a broken view must not break the model
                log.exception("event subscriber %r failed on %s", callback, event)

    def blocked(self) -> _Blocker:
        """Context manager that suppresses events (for bulk changes that emit once at the end)."""
        return _Blocker(self)


class _Blocker:
    def __init__(self, emitter: EventEmitter) -> None:
        self._emitter = emitter

    def __enter__(self) -> None:
        self._emitter._blocked += 1

    def __exit__(self, *exc: object) -> None:
        self._emitter._blocked -= 1
