"""The main window on in-memory twins: linked slice views, mouse/keys, structures, layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import MARKER_LPS, TUMOUR_LPS, make_twin, rotation_z, wait_ready


def show(qtbot, window, twin):
    def action():
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action)
    qtbot.wait(50)


def pixel(view, point) -> tuple[int, int, int]:
    image = view.grab().toImage()
    c = image.pixelColor(round(point.x()), round(point.y()))
    return c.red(), c.green(), c.blue()


def send_drag(view, button, start: QPointF, end: QPointF, steps: int = 5, *,
              between=None) -> None:
    """Press, move with the button held, release: real QMouseEvents through the event loop.
    ``between()`` (e.g. ``lambda: qtbot.wait(5)``) runs after each move, as a hand's moves
    arrive over several event-loop turns."""
    press = QMouseEvent(QMouseEvent.Type.MouseButtonPress, start, view.mapToGlobal(start),
                        button, button, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, press)
    for n in range(1, steps + 1):
        p = start + (end - start) * (n / steps)
        move = QMouseEvent(QMouseEvent.Type.MouseMove, p, view.mapToGlobal(p),
                           Qt.MouseButton.NoButton, button, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(view, move)
        if between is not None:
            between()
    release = QMouseEvent(QMouseEvent.Type.MouseButtonRelease, end, view.mapToGlobal(end),
                          button, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, release)


def test_four_up_shows_the_marker_where_the_patient_has_it(qtbot, window):
    twin = make_twin(direction=rotation_z(20.0))
    show(qtbot, window, twin)
    assert window.view_grid.layout_name == "four-up"
    assert set(window.view_grid.visible_views()) == {"axial", "coronal", "sagittal", "3d"}
    window.set_cursor(MARKER_LPS)
    window.structures_panel.opacity_slider.setValue(0)  # grey only
    qtbot.wait(20)
    for name, view in window.slice_views.items():
        at = view.lps_to_screen(MARKER_LPS)
        assert pixel(view, at)[0] > 200, f"{name}: marker not bright at its LPS position"
        centre = view.image_rect().center()
        assert at.y() < centre.y(), f"{name}: marker (superior/anterior) must be up"
        if name == "sagittal":
            assert at.x() < centre.x(), "sagittal: anterior must be on the left"
        else:
            assert at.x() > centre.x(), f"{name}: patient left must be on screen right"


def test_true_aspect_with_anisotropic_voxels(qtbot, window, twin):
    show(qtbot, window, twin)
    coronal = window.slice_views["coronal"]
    rect = coronal.image_rect()
    rows, cols = coronal.mapping.shape_rows_cols
    cw, rh = coronal.mapping.pixel_mm  # 1.0 mm wide, 2.5 mm slices
    assert rect.width() / rect.height() == pytest.approx(cols * cw / (rows * rh), rel=1e-6)


def test_wheel_and_keys_scroll_and_move_the_linked_crosshair(qtbot, window, twin):
    show(qtbot, window, twin)
    axial, coronal = window.slice_views["axial"], window.slice_views["coronal"]
    start = axial.slice_index
    centre = QPointF(axial.width() / 2, axial.height() / 2)
    wheel = QWheelEvent(centre, axial.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(axial, wheel)
    assert axial.slice_index == start + 1
    # the crosshair moved up by one slice: the coronal view draws it 2.5 mm higher
    assert coronal.cursor_lps[2] == pytest.approx(axial.cursor_lps[2])
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_Down)
    qtbot.keyClick(axial, Qt.Key.Key_Down)
    assert axial.slice_index == start - 1
    qtbot.keyClick(axial, Qt.Key.Key_PageUp)
    assert axial.slice_index == min(start + 9, axial.mapping.n_slices - 1)
    for _ in range(10):
        qtbot.keyClick(axial, Qt.Key.Key_PageUp)
    assert axial.slice_index == axial.mapping.n_slices - 1  # clamped


def test_shift_move_sets_the_crosshair_in_every_view(qtbot, window, twin):
    show(qtbot, window, twin)
    axial = window.slice_views["axial"]
    target = axial.lps_to_screen(TUMOUR_LPS)
    move = QMouseEvent(QMouseEvent.Type.MouseMove, target, axial.mapToGlobal(target),
                       Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.ShiftModifier)
    QApplication.sendEvent(axial, move)
    point = axial.cursor_lps
    assert np.allclose(point[:2], TUMOUR_LPS[:2], atol=1.5)
    for name in ("coronal", "sagittal"):
        view = window.slice_views[name]
        assert np.allclose(view.cursor_lps, point)
        assert view.slice_index == view.mapping.slice_index_of(TUMOUR_LPS)
    assert "HU" in axial._hover_text


def test_window_level_drag_presets_zoom_pan_and_reset(qtbot, window, twin):
    show(qtbot, window, twin)
    axial, sagittal = window.slice_views["axial"], window.slice_views["sagittal"]
    assert axial.window == (40.0, 400.0)  # from the file's WindowCenter/Width
    c = QPointF(axial.width() / 2, axial.height() / 2)
    send_drag(axial, Qt.MouseButton.LeftButton, c, c + QPointF(100, 50))
    center, width = axial.window
    assert width > 400 and center > 40
    assert sagittal.window == axial.window  # linked
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_5)  # lung
    assert axial.window == (-600.0, 1500.0) and sagittal.window == (-600.0, 1500.0)
    qtbot.keyClick(axial, Qt.Key.Key_1)  # brain
    assert axial.window == (40.0, 80.0)
    before = axial.image_rect()
    send_drag(axial, Qt.MouseButton.RightButton, c, c - QPointF(0, 80))
    assert axial.image_rect().width() > before.width() * 1.3  # zoomed in
    send_drag(axial, Qt.MouseButton.MiddleButton, c, c + QPointF(40, 0))
    assert axial.image_rect().center().x() == pytest.approx(before.center().x() + 40)
    qtbot.keyClick(axial, Qt.Key.Key_R)
    assert axial.image_rect() == before


def test_structure_toggle_colour_and_outline(qtbot, window, twin):
    show(qtbot, window, twin)
    axial = window.slice_views["axial"]
    window.set_cursor(TUMOUR_LPS)
    qtbot.wait(20)
    at = axial.lps_to_screen(TUMOUR_LPS)
    r, g, b = pixel(axial, at)
    assert r > 120 and g > 120 and b < 100, "tumour overlay should be yellow"
    box = window.structures_panel.visibility_box("tumour")
    box.setChecked(False)
    qtbot.waitUntil(lambda: not twin.structure("tumour").visible, timeout=2000)
    qtbot.wait(20)
    r, g, b = pixel(axial, at)
    assert abs(r - g) < 10 and abs(g - b) < 10, "hidden structure must not tint the slice"
    assert window.dirty  # a property edit is a change to the case
    box.setChecked(True)
    window.structures_panel.outline_box.setChecked(True)
    qtbot.wait(20)
    assert axial.outline
    assert max(pixel(axial, at)) - min(pixel(axial, at)) < 10, "outline mode leaves inside grey"


def test_layouts_and_double_click_maximise(qtbot, window, twin):
    show(qtbot, window, twin)
    grid = window.view_grid
    for name, shown in (("axial", {"axial"}), ("3d", {"3d"}), ("four-up", None),
                        ("slices+3d", None), ("sagittal", {"sagittal"})):
        window.set_layout(name)
        qtbot.wait(10)
        assert set(grid.visible_views()) == (shown or {"axial", "coronal", "sagittal", "3d"})
    window.set_layout("slices+3d")
    assert abs(grid.views["3d"].width() - grid.views["axial"].width()) <= 0.1 * grid.views[
        "3d"].width()  # equal columns (issue 14)
    coronal = window.slice_views["coronal"]
    qtbot.mouseDClick(coronal, Qt.MouseButton.LeftButton)
    assert grid.visible_views() == ["coronal"]
    qtbot.mouseDClick(coronal, Qt.MouseButton.LeftButton)
    assert grid.layout_name == "slices+3d"
    with pytest.raises(ValueError, match="unknown layout"):
        grid.set_layout("nine-up")


def test_3d_view_shows_structure_colours(qtbot, window, twin):
    show(qtbot, window, twin)
    view = window.view3d
    assert sorted(view.surface_names()) == ["body", "tumour"]
    twin.set_structure_properties("body", visible=False)
    qtbot.wait(50)

    def yellow_pixels() -> int:
        img = view.grab_image().convertToFormat(view.grab_image().Format.Format_RGB888)
        arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(),
                                                               img.bytesPerLine())
        rgb = arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(int)
        return int(np.count_nonzero((rgb[..., 0] > 90) & (rgb[..., 1] > 90)
                                    & (rgb[..., 2] < 0.4 * rgb[..., 0])))

    assert yellow_pixels() > 200, "the yellow tumour surface is not in the 3D view"
    twin.set_structure_properties("tumour", visible=False)
    qtbot.wait(50)
    assert yellow_pixels() < 20
    view.set_standard_view("superior")
    assert view.plotter.camera.position[2] > view.plotter.camera.focal_point[2]


def test_help_overlay_and_dialog(qtbot, window, twin):
    show(qtbot, window, twin)
    axial = window.slice_views["axial"]
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_H)
    assert axial.show_help
    window.show_help()
    box = window.findChild(type(window.report_error(ValueError("x"))), "help_dialog")
    assert box is not None and "Radiological convention" in box.text()
    box.close()
    for d in list(window.error_dialogs):
        d.close()
