"""A twin's model events as a Qt signal, so views and panels update on the GUI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from surgiplan.twin import Twin


class TwinEventBridge(QObject):
    """Re-emits a twin's model events as a Qt signal (queued onto the GUI thread)."""

    event = Signal(str, object)

    def __init__(self, twin: Twin, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.twin = twin
        twin.events.connect(self._forward)

    def _forward(self, event_name: str, /, **payload: Any) -> None:
        self.event.emit(event_name, payload)

    def detach(self) -> None:
        self.twin.events.disconnect(self._forward)
