"""Scrolling follows the patient: wheel up / Up / PageUp move superior (axial), anterior
(coronal) and left (sagittal) on head-first and feet-first axial, sagittal and coronal
acquisitions; the value under the cursor follows the slice; window/level stays bounded."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from surgiplan.ui.views.slice_planes import FORWARD_LPS, Plane
from surgiplan.ui.views.slice_view import SliceView
from tests.ui.conftest import make_twin
from tests.ui.viewer_scans import load_scan_twin

# acquisitions: slice axis along S (HFS/FFS axial), L (sagittal) or P (coronal), both orders
_FFS = np.diag([-1.0, 1.0, -1.0])  # feet first: k runs inferior, i runs right
_CORONAL = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # k runs anterior
_CORONAL_BACK = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # k runs posterior
_SAGITTAL = np.array([[0, 0, -1.0], [1.0, 0, 0], [0, -1.0, 0]])  # k runs right


def wheel(view: SliceView, delta: int) -> None:
    centre = QPointF(view.width() / 2, view.height() / 2)
    event = QWheelEvent(centre, view.mapToGlobal(centre), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def slice_lps(view: SliceView) -> np.ndarray:
    """LPS (mm) of the centre pixel of the displayed slice."""
    rows, cols = view.mapping.shape_rows_cols
    return view.mapping.pixel_to_lps((cols - 1) / 2, (rows - 1) / 2, view.slice_index)


def assert_forward(qtbot, twin, plane: Plane) -> None:
    """Wheel up, Up arrow and PageUp move along FORWARD_LPS; wheel down comes back."""
    view = SliceView(plane)
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.set_twin(twin)
    if view.mapping.n_slices < 3:
        view.set_slice(1)
    forward = np.asarray(FORWARD_LPS[plane])
    before = slice_lps(view) @ forward
    wheel(view, 120)
    after_wheel = slice_lps(view) @ forward
    assert after_wheel > before, f"{plane}: wheel up did not move {plane} forward"
    wheel(view, -120)
    assert slice_lps(view) @ forward == pytest.approx(before)
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert slice_lps(view) @ forward == pytest.approx(after_wheel)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert slice_lps(view) @ forward > before


@pytest.mark.parametrize("direction", [np.eye(3), _FFS, _CORONAL, _CORONAL_BACK, _SAGITTAL],
                         ids=["axial-HFS", "axial-FFS", "coronal", "coronal-reversed",
                              "sagittal"])
@pytest.mark.parametrize("plane", list(Plane))
def test_wheel_moves_the_same_patient_way_on_every_acquisition(qtbot, direction, plane):
    assert_forward(qtbot, make_twin(direction=direction, size=(24, 20, 18)), plane)


@pytest.mark.parametrize("scan", ["abdomen-ct-contrast", "liver-ct-3slice-seg",
                                  "head-mr-t1-mprage"])
def test_wheel_direction_on_real_scans(qtbot, scan):
    """Abdomen CT (axial HFS), liver CT (axial, feet first), head MR (sagittal)."""
    twin = load_scan_twin(scan)
    for plane in Plane:
        if twin.geometry.size[plane_axis(twin, plane)] >= 3:
            assert_forward(qtbot, twin, plane)


def plane_axis(twin, plane: Plane) -> int:
    from surgiplan.ui.views.slice_planes import plane_mapping

    return plane_mapping(twin.geometry, plane).slice_axis


def test_liver_ct_is_feet_first_and_still_scrolls_superior(qtbot):
    import pydicom

    from tests.ui.viewer_scans import scan_folder

    first = sorted((scan_folder("liver-ct-3slice-seg") / "dicom").glob("*.dcm"))[0]
    assert pydicom.dcmread(first, stop_before_pixels=True).PatientPosition == "FFS"
    twin = load_scan_twin("liver-ct-3slice-seg")
    view = SliceView(Plane.AXIAL)
    qtbot.addWidget(view)
    view.set_twin(twin)
    view.set_slice(0)
    wheel(view, 120)
    wheel(view, 120)
    assert slice_lps(view)[2] == pytest.approx(twin.geometry.bounds_lps()[:, 2].max(), abs=0.6)


def shown_axial_view(qtbot, twin) -> SliceView:
    """A 300x300 axial slice view on screen showing ``twin``."""
    view = SliceView(Plane.AXIAL)
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_twin(twin)
    return view


def test_value_under_the_cursor_follows_the_slice(qtbot):
    twin = make_twin(size=(24, 20, 18))
    twin.image.array[:] = np.arange(18, dtype=np.int16)[:, None, None] * 10  # value = 10 * k
    view = shown_axial_view(qtbot, twin)
    centre = QPointF(150, 150)
    move = QMouseEvent(QMouseEvent.Type.MouseMove, centre, view.mapToGlobal(centre),
                       Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, move)
    first = view._hover_text
    assert "\n" in first, first
    wheel(view, 120)
    assert view._hover_text != first, (first, view._hover_text)
    assert view._hover_text.split("\n")[1].startswith(f"{10 * view.slice_index}")


def test_window_drag_and_typed_values_stay_within_the_data(qtbot):
    twin = make_twin()  # values -1000..1500 HU
    view = SliceView(Plane.AXIAL)
    qtbot.addWidget(view)
    view.set_twin(twin)
    assert view.value_range == (-1000.0, 1500.0)
    for _ in range(200):
        view.drag_window(400.0, -400.0)
    center, width = view.window
    assert -1000.0 - width / 2 <= center <= 1500.0 + width / 2 and width <= 2 * 2500.0
    view.set_window(-1e9, 1e9)
    assert view.window == (-1000.0 - 2500.0, 5000.0)  # still overlapping the data
    view.set_window(float("nan"), 0.0)
    assert view.window == (250.0, pytest.approx(2.5))


def test_hover_position_reads_in_patient_directions(qtbot):
    """The corner text names the patient's side: a point right of the patient (LPS x < 0)
    reads 'R', never 'L -…'."""
    from surgiplan.model.frames import format_lps

    assert format_lps([-174.54, 12.0, -3.0]) == "R 174.5  P 12.0  I 3.0 mm"
    assert format_lps([27.7, -12.0, 40.1]) == "L 27.7  A 12.0  S 40.1 mm"
    view = shown_axial_view(qtbot, make_twin(size=(24, 20, 18)))
    checked = 0
    for x in (120, 180):  # either side of the image centre
        at = QPointF(x, 150)
        QApplication.sendEvent(view, QMouseEvent(
            QMouseEvent.Type.MouseMove, at, view.mapToGlobal(at), Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
        lps = view.screen_to_lps(at)
        if view.value_at(at) is not None:
            assert view._hover_text.split("\n")[0] == format_lps(lps)
            assert "-" not in view._hover_text.split("\n")[0], view._hover_text
            checked += 1
    assert checked == 2, "both points are on the image"
