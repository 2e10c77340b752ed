"""A slice view repaints from its cached base image (background and scaled slice) with the
pixels of painting the slice directly (issue 15, item 11: drag frames repaint only what moved);
the cache is rebuilt when the slice, window, zoom, pan or size change, and the kept text layout
is the one computed afresh."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage, QSurface

from surgiplan.ui.plan.trajectory_tools import PathDecoration, TrajectoryPlan
from surgiplan.ui.views.slice_view import SliceView
from tests.ui.conftest import MARKER_LPS, TUMOUR_LPS, make_twin, rotation_z
from tests.ui.test_main_window import show


def pixels(view: SliceView, *, cached: bool) -> np.ndarray:
    """The view as painted (RGB32 words), with or without the base cache."""
    view.cache_base = cached
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    view.cache_base = True
    return np.frombuffer(image.constBits(), np.uint32).reshape(
        image.height(), image.bytesPerLine() // 4)[:, :image.width()].copy()


def assert_same_as_direct(view: SliceView) -> None:
    cached, direct = pixels(view, cached=True), pixels(view, cached=False)
    differ = np.argwhere(cached != direct)
    assert not len(differ), f"{len(differ)} pixels differ, first at (row, col) {differ[0]}"
    assert view.label_layout() == view._label_layout()  # the kept text layout is current


@pytest.fixture(params=["axial-oblique", "coronal"])
def view(request, qtbot) -> SliceView:
    plane, _, oblique = request.param.partition("-")
    twin = make_twin(direction=rotation_z(20.0) if oblique else None)
    twin.segmentation.get("body").opacity = 0.6
    view = SliceView(plane)
    qtbot.addWidget(view)
    view.resize(437, 311)  # odd sizes: the slice lands on fractional screen coordinates
    view.set_twin(twin)
    view.set_cursor(TUMOUR_LPS)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_cached_repaint_has_the_pixels_of_a_direct_paint(view, qtbot):
    plan = TrajectoryPlan()
    plan.set_points(MARKER_LPS, TUMOUR_LPS)
    view.add_decoration(PathDecoration(plan))
    assert_same_as_direct(view)
    builds = view.base_builds
    plan.set_points(MARKER_LPS + np.array([3.0, -2.0, 1.5]), TUMOUR_LPS)  # a plan item moved
    view.set_cursor(TUMOUR_LPS + np.array([0.4, 0.3, 0.0]))  # crosshair within the slice
    assert_same_as_direct(view)
    assert view.base_builds == builds  # the slice was not scaled again
    view._update_hover(view.lps_to_screen(TUMOUR_LPS))  # the value under the cursor
    assert_same_as_direct(view)
    for change in (lambda: view.set_window(300.0, 900.0), lambda: view.step_slices(2),
                   lambda: setattr(view, "zoom", 1.7), lambda: setattr(view, "pan",
                                                                      QPointF(13.3, -7.6)),
                   lambda: setattr(view, "zoom", 4.2),  # no smoothing from zoom 3
                   lambda: view.resize(390, 402)):
        builds = view.base_builds
        change()
        assert_same_as_direct(view)
        assert view.base_builds == builds + 1  # rebuilt once, for the changed slice/screen


def test_the_cache_follows_structure_changes(view, qtbot):
    before = pixels(view, cached=True)
    view.twin.segmentation.get("body").opacity = 1.0
    view.refresh_overlays()
    after = pixels(view, cached=True)
    assert (after != before).any()  # the new overlay is shown, not the cached one
    assert_same_as_direct(view)


def test_only_the_3d_view_is_composed_in_opengl(qtbot, window, twin):
    """The 3D view (a QOpenGLWidget inside) has its own native window: the main window stays a
    raster window, so a slice repaint does not compose the whole window in OpenGL."""
    show(qtbot, window, twin)
    window.view3d.ensure_plotter()
    qtbot.wait(50)
    assert window.view3d.windowHandle().surfaceType() == QSurface.SurfaceType.OpenGLSurface
    assert window.windowHandle().surfaceType() == QSurface.SurfaceType.RasterSurface
    assert window.view3d.surface_names()  # the 3D view shows the structures
