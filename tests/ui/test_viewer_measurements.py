"""Measurements in the window: ruler and ROI drawn with the mouse in a slice view, listed with
their readings, shown in 3D, saved with the case and exported as Slicer markups."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import make_twin, wait_ready
from tests.ui.test_main_window import send_drag


def show(qtbot, window, twin) -> None:
    def action():
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action)


def test_ruler_and_roi_drawn_listed_saved_and_exported(qtbot, window, tmp_path):
    twin = make_twin()
    show(qtbot, window, twin)
    panel = window.measurements_panel
    axial = window.slice_views["axial"]
    panel.tool_buttons["ruler"].setChecked(True)
    assert axial.tool is panel.tool
    a_lps, b_lps = np.array([-10.0, 0.0, 0.0]), np.array([20.0, 0.0, 0.0])
    z = axial.mapping.pixel_to_lps(0, 0, axial.slice_index)[2]
    a_lps[2] = b_lps[2] = z
    send_drag(axial, Qt.MouseButton.LeftButton, axial.lps_to_screen(a_lps),
              axial.lps_to_screen(b_lps))
    assert len(panel.items) == 1
    ruler = panel.items[0]
    assert ruler.kind == "ruler" and ruler.readings[0].value == pytest.approx(30.0, abs=0.6)
    assert panel.table.item(0, 1).text().endswith("mm") and window.dirty
    panel.tool_buttons["roi"].setChecked(True)
    assert not panel.tool_buttons["ruler"].isChecked()
    c = axial.lps_to_screen(np.array([0.0, 0.0, z]))
    send_drag(axial, Qt.MouseButton.LeftButton, c - QPointF(15, 15), c + QPointF(15, 15))
    roi = panel.items[1]
    mean = next(r for r in roi.readings if r.key == "mean")
    assert mean.unit == "HU" and mean.value == pytest.approx(40.0)  # inside the 40 HU body
    panel.tool_buttons["roi"].setChecked(False)
    assert axial.tool is None
    assert {f"measure:{n}" for n in (0, 1)} <= set(window.view3d.plotter.actors)
    case = tmp_path / "case.surgiplan"
    from surgiplan.io.bundle import save_bundle

    save_bundle(twin, case)
    window.dirty = False
    wait_ready(qtbot, window, lambda: window.open_path(case))
    assert [m.name for m in window.measurements_panel.items] == ["Ruler 1", "ROI 1"]
    from surgiplan.plans.measurements import write_markups

    out = write_markups(window.measurements_panel.items, tmp_path / "m.mrk.json")
    assert [m["type"] for m in json.loads(out.read_text())["markups"]] == ["Line", "ROI"]
