"""Four-up on real scans at 1280x800 and 1600x1000: equal views, nothing off screen, no
overlapping texts in the views; splitters resize; layout and sizes are remembered."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtWidgets import QAbstractScrollArea, QDockWidget, QMenu, QSplitter, QWidget

from tests.ui.conftest import wait_ready
from tests.ui.viewer_scans import load_scan_twin

SIZES = [(1280, 800), (1600, 1000)]
SCANS = ["abdomen-ct-contrast", "head-mr-t1-mprage"]


@pytest.fixture(scope="module")
def main(qapp, tmp_path_factory):
    """One main window for the module (hidden between tests), private settings."""
    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    folder = tmp_path_factory.mktemp("layout")
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave=Autosave(folder / "autosave"))
    yield win
    win.dirty = False
    win.close()
    win.deleteLater()


@pytest.fixture
def shown(main, qtbot):
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.hide()


def outside(win: QWidget, screen: QRect) -> list[str]:
    """Visible widgets (not scrolled content) that reach outside ``screen``."""
    bad = []
    behind_tabs = [d for d in win.findChildren(QDockWidget)
                   if win.tabifiedDockWidgets(d) and d.visibleRegion().isEmpty()]
    for w in win.findChildren(QWidget):
        if not w.isVisible() or isinstance(w, QMenu) or QWidget.window(w) is not win:
            continue
        chain = [w, *_ancestors(w, win)]
        if any(isinstance(p, QAbstractScrollArea) for p in chain[1:]):
            continue  # inside a scroll area: reachable by scrolling
        if any(p in behind_tabs for p in chain):
            continue  # a dock behind another dock's tab
        top_left = w.mapTo(win, QPoint(0, 0)) + win.geometry().topLeft()
        rect = QRect(top_left, w.size())
        if not rect.intersects(screen) and w.visibleRegion().isEmpty():
            continue  # parked off-window by Qt (an unused dock tab bar)
        if not screen.adjusted(-1, -1, 1, 1).contains(rect):
            bad.append(f"{type(w).__name__} {w.objectName()!r} {rect.getRect()}")
    return bad


def _ancestors(w: QWidget, stop: QWidget):
    p = w.parentWidget()
    while p is not None and p is not stop:
        yield p
        p = p.parentWidget()


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_four_up_equal_fitting_and_readable(qtbot, shown, scan, size):
    win = shown
    twin = load_scan_twin(scan)
    if win.twin is not twin:
        win.dirty = False

        def action():
            win._loading = True
            win.set_twin(twin)

        wait_ready(qtbot, win, action, timeout=120_000)
    win.set_layout("four-up")
    win.view_grid.equalize()
    win.move(0, 0)
    win.resize(*size)
    qtbot.waitUntil(lambda: win.width() == size[0] and win.height() == size[1], timeout=5000)
    qtbot.wait(50)
    hint = win.minimumSizeHint()
    assert hint.width() <= size[0] and hint.height() <= size[1], f"minimum size {hint}"
    views = {n: win.view_grid.views[n] for n in ("axial", "coronal", "sagittal", "3d")}
    widths = {n: v.width() for n, v in views.items()}
    heights = {n: v.height() for n, v in views.items()}
    for dims in (widths, heights):
        assert max(dims.values()) <= 1.10 * min(dims.values()), (size, widths, heights)
    screen = QRect(0, 0, *size)
    assert not outside(win, screen), outside(win, screen)
    for name in ("axial", "coronal", "sagittal"):
        rects = list(win.slice_views[name].label_rects().items())
        for i, (key_a, a) in enumerate(rects):
            assert win.slice_views[name].rect().contains(a.toRect()) or key_a == "scale_bar"
            for key_b, b in rects[i + 1:]:
                assert not a.intersects(b), f"{scan} {size} {name}: {key_a} overlaps {key_b}"
    shots = os.environ.get("SURGIPLAN_SHOTS")  # a folder: keep screenshots to look at
    if shots:
        print(f"\n{scan} {size}: widths {widths} heights {heights}")
        win.save_screenshot(f"{shots}/four-up-{scan}-{size[0]}x{size[1]}.png")


def test_splitters_drag_and_are_remembered(qtbot, shown, tmp_path):
    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    win = shown
    win.set_layout("four-up")
    win.resize(1400, 900)
    qtbot.wait(20)
    columns: QSplitter = win.view_grid.columns
    total = sum(columns.sizes())
    columns.moveSplitter(int(total * 0.3), 1)
    left_w = win.slice_views["axial"].width()
    assert left_w < 0.4 * total
    win.view_grid.left.moveSplitter(150, 1)
    qtbot.wait(10)
    assert win.view_grid.right.sizes()[0] == win.view_grid.left.sizes()[0]  # rows move together
    win.toggle_maximize = None
    win.view_grid.toggle_maximize("coronal")
    assert win.view_grid.visible_views() == ["coronal"]
    win.view_grid.toggle_maximize("coronal")
    assert set(win.view_grid.visible_views()) == {"axial", "coronal", "sagittal", "3d"}
    assert abs(win.slice_views["axial"].width() - left_w) <= 2  # sizes kept across maximise
    win.set_layout("slices+3d")
    win.save_window_state()
    other = MainWindow(settings=win.settings, autosave=Autosave(tmp_path / "a"))
    qtbot.addWidget(other)
    assert other.view_grid.layout_name == "slices+3d"
    assert other.view_grid._sizes["four-up"]["columns"] == win.view_grid._sizes["four-up"][
        "columns"]
    assert other.layout_actions["slices+3d"].isChecked()
    win.set_layout("four-up")


def test_docks_close_and_come_back_from_the_view_menu(shown):
    win = shown
    titles = {a.text(): a for a in win.panels_menu.actions()}
    assert {"Data", "Structures", "Segment"} <= set(titles)
    dock = next(d for d in win.docks() if d.windowTitle() == "Segment")
    dock.close()
    assert not dock.isVisible()
    titles["Segment"].trigger()
    assert dock.isVisible()


def test_segment_dock_is_not_clipped_at_1280(qtbot, shown):
    win = shown
    win.move(0, 0)
    win.resize(1280, 800)
    qtbot.waitUntil(lambda: win.width() == 1280, timeout=5000)
    win.set_layout("four-up")
    win.view_grid.equalize()  # an earlier test dragged the dividers
    dock = next(d for d in win.docks() if d.objectName() == "dock_segment")
    dock.raise_()
    qtbot.wait(50)
    scroll = dock.widget()
    assert isinstance(scroll, QAbstractScrollArea)
    panel = scroll.widget()
    assert scroll.viewport().width() >= panel.sizeHint().width(), (
        scroll.viewport().width(), panel.sizeHint().width())
    views = [win.view_grid.views[n].width() for n in ("axial", "coronal", "sagittal", "3d")]
    assert min(views) >= 200, views  # the views stay usable beside it
