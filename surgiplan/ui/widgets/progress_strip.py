"""A light progress bar that repaints only through the event loop.

``QProgressBar.setValue`` repaints synchronously; in a window that holds an OpenGL widget (the
3D view) every such repaint recomposes the whole window (tens of ms on a software renderer), so
frequent job progress stalled the GUI. This strip coalesces its repaints with ``update()``.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

_TRACK, _FILL, _TEXT = QColor(60, 60, 60), QColor(60, 130, 210), QColor(240, 240, 240)


class ProgressStrip(QWidget):
    """Progress from 0 to ``maximum()`` with a text; ``%p%`` in the format is the percentage."""

    def __init__(self, parent: QWidget | None = None, *, maximum_width: int | None = None) -> None:
        super().__init__(parent)
        self._value, self._maximum, self._format = 0, 1000, "%p%"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        if maximum_width is not None:
            self.setMaximumWidth(maximum_width)

    def sizeHint(self) -> QSize:
        return QSize(160, self.fontMetrics().height() + 6)

    def setRange(self, minimum: int, maximum: int) -> None:
        self._maximum = max(1, int(maximum - minimum))
        self.update()

    def maximum(self) -> int:
        return self._maximum

    def setValue(self, value: int) -> None:
        value = max(0, min(int(value), self._maximum))
        if value != self._value:
            self._value = value
            self.update()

    def value(self) -> int:
        return self._value

    def setFormat(self, text: str) -> None:
        if text != self._format:
            self._format = text
            self.update()

    def text(self) -> str:
        return self._format.replace("%p", str(round(100 * self._value / self._maximum)))

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.fillRect(rect, _TRACK)
        fill = QRectF(rect)
        fill.setWidth(rect.width() * self._value / self._maximum)
        p.fillRect(fill, _FILL)
        p.setPen(_TEXT)
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, int(rect.width()) - 4))
        p.end()
