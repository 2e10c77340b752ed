"""Render checks on the head phantom case: the skull is bright where the phantom puts it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.ui.conftest import leaked_windows, wait_ready


@pytest.fixture(scope="session")
def head_case(tmp_path_factory, head_sample):
    """A copy of ``surgiplan sample head``'s bundle (built once per session, tests/conftest.py)
    and its truth."""
    out = tmp_path_factory.mktemp("head")
    shutil.copyfile(head_sample / "head.surgiplan", out / "head.surgiplan")
    return out / "head.surgiplan", json.loads((head_sample / "truth.json").read_text())


def _skull_points(truth: dict) -> dict[str, np.ndarray]:
    skull = next(s for s in truth["structures"] if s["name"] == "skull")["shape"]
    centre = np.asarray(skull["outer"]["centre_lps"], float)
    mid = (np.asarray(skull["outer"]["semi_axes_mm"]) + skull["inner"]["semi_axes_mm"]) / 2
    l_axis, p_axis = np.array([mid[0], 0.0, 0.0]), np.array([0.0, mid[1], 0.0])
    return {"anterior": centre - p_axis, "left": centre + l_axis, "right": centre - l_axis,
            "centre": centre}


def test_skull_is_bright_where_the_phantom_says_in_the_axial_view(qtbot, window, head_case):
    path, truth = head_case
    wait_ready(qtbot, window, lambda: window.open_path(path), timeout=60_000)
    points = _skull_points(truth)
    window.set_cursor(points["centre"])
    window.structures_panel.opacity_slider.setValue(0)
    window.slice_views["axial"].apply_preset(6)  # CT bone 2500/480
    qtbot.wait(30)
    axial = window.slice_views["axial"]
    image = axial.grab().toImage()

    def grey(name: str) -> int:
        p = axial.lps_to_screen(points[name])
        return image.pixelColor(round(p.x()), round(p.y())).red()

    assert grey("anterior") > 150 and grey("left") > 150 and grey("right") > 150
    assert grey("centre") < 100, "brain is not bone"
    c = axial.lps_to_screen(points["centre"])
    assert axial.lps_to_screen(points["anterior"]).y() < c.y()  # nose up
    assert axial.lps_to_screen(points["left"]).x() > c.x()  # patient left on screen right
    assert "skull" in window.view3d.surface_names()


def test_leak_check_sees_a_forgotten_window(qapp):
    from PySide6.QtWidgets import QWidget

    w = QWidget()
    w.show()
    try:
        assert w in leaked_windows(qapp)
    finally:
        w.close()
    assert w not in leaked_windows(qapp)
