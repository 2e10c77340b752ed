"""Interactions that own the left mouse button in slice views while active.

A *tool* (paint brush, scissors, entry/target placement...) is any object with the methods of
:class:`SliceTool`. ``MainWindow.set_slice_tool(tool)`` hands it to every slice view; ``None``
gives left-drag back to window/level. Tools receive points in LPS mm (already mapped from the
screen, in the view's current slice plane) and never edit widgets directly: they call the model
(e.g. a SegmentEditor) or emit their own signals.

*Decorations* are painters that draw on top of every slice view whether or not a tool is
active (planned trajectories, entry/target markers, brush outline...): callables
``(view, painter) -> None`` registered with ``SliceView.add_decoration``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtGui import QMouseEvent, QPainter

if TYPE_CHECKING:
    from surgiplan.ui.views.slice_view import SliceView

Decoration = Callable[["SliceView", QPainter], None]


class SliceTool(Protocol):
    """What a slice-view tool implements. ``point_lps`` is the mouse position in LPS mm."""

    name: str

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None: ...

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None: ...

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None: ...

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None: ...

    def paint(self, view: SliceView, painter: QPainter) -> None: ...


class SliceToolBase:
    """A :class:`SliceTool` whose handlers do nothing: subclass it and override only the
    events the tool uses (a click tool needs just ``press``)."""

    name = "tool"

    def press(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        pass

    def drag(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        pass

    def release(self, view: SliceView, point_lps: np.ndarray, event: QMouseEvent) -> None:
        pass

    def hover(self, view: SliceView, point_lps: np.ndarray) -> None:
        pass

    def paint(self, view: SliceView, painter: QPainter) -> None:
        pass
