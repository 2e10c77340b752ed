"""An active slice tool owns left-drag (points arrive in LPS mm); decorations draw on top."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import MARKER_LPS, TUMOUR_LPS
from tests.ui.test_main_window import pixel, send_drag, show


class RecordingTool:
    name = "record"

    def __init__(self) -> None:
        self.events: list[tuple[str, np.ndarray]] = []

    def press(self, view, point_lps, event) -> None:
        self.events.append(("press", point_lps))

    def drag(self, view, point_lps, event) -> None:
        self.events.append(("drag", point_lps))

    def release(self, view, point_lps, event) -> None:
        self.events.append(("release", point_lps))

    def hover(self, view, point_lps) -> None:
        self.events.append(("hover", point_lps))

    def paint(self, view, painter) -> None:
        pass


def test_tool_receives_lps_points_and_window_level_stays_put(qtbot, window, twin):
    show(qtbot, window, twin)
    axial = window.slice_views["axial"]
    tool = RecordingTool()
    window.set_slice_tool(tool)
    level_before = axial.window
    start, end = axial.lps_to_screen(TUMOUR_LPS), axial.lps_to_screen(MARKER_LPS)
    send_drag(axial, Qt.MouseButton.LeftButton, start, end)
    kinds = [k for k, _ in tool.events]
    assert kinds[0] == "press" and kinds[-1] == "release" and "drag" in kinds
    np.testing.assert_allclose(tool.events[0][1][:2], TUMOUR_LPS[:2], atol=1.5)
    np.testing.assert_allclose(tool.events[-1][1][:2], MARKER_LPS[:2], atol=1.5)
    assert axial.window == level_before  # left-drag went to the tool, not to W/L
    window.set_slice_tool(None)
    send_drag(axial, Qt.MouseButton.LeftButton, start, start + QPointF(80, 40))
    assert axial.window != level_before  # W/L is back


def test_decoration_draws_on_every_repaint(qtbot, window, twin):
    show(qtbot, window, twin)
    axial = window.slice_views["axial"]
    spot = axial.lps_to_screen(TUMOUR_LPS)

    def magenta_dot(view, painter) -> None:
        painter.fillRect(int(spot.x()) - 4, int(spot.y()) - 4, 9, 9, Qt.GlobalColor.magenta)

    axial.add_decoration(magenta_dot)
    qtbot.wait(30)
    assert pixel(axial, spot) == (255, 0, 255)
    axial.remove_decoration(magenta_dot)
    qtbot.wait(30)
    assert pixel(axial, spot) != (255, 0, 255)
