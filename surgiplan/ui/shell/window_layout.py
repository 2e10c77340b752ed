"""Where the window's docks and views sit: fitting a 1280x800 screen, key routing, and the
layout, splitter sizes, docks and geometry remembered between runs.

Mixed into :class:`MainWindow`.
"""

from __future__ import annotations

import json
from functools import partial

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QLineEdit,
    QMainWindow,
    QScrollArea,
    QStyle,
    QWidget,
)

DEFAULT_SIZE = (1500, 950)
DOCK_WIDTH_PX = 300  # default width of the left and right dock areas
MIN_DOCK_PX = 240
RIGHT_DOCK_SHARE = 0.36  # the right (Segment) dock area's widest default share of the window
STATE_VERSION = 3  # of QMainWindow.saveState in the settings (3: dock widths fit Segment)


class _UndoRouter(QObject):
    """Takes Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y away from text and number fields of the window, so
    the Edit menu's undo/redo (the document's) runs instead of the field's text undo.

    Filters only the focused field (moved along on focus changes), not every event of the
    application: an application-wide Python filter costs each Qt event a call into Python,
    ~10 ms per panel refill on the GUI thread."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._watched: QWidget | None = None
        QApplication.instance().focusChanged.connect(self._focus_changed)

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if self._watched is not None and shiboken6.isValid(self._watched):
            self._watched.removeEventFilter(self)
        self._watched = None
        if (isinstance(new, QLineEdit | QAbstractSpinBox) and shiboken6.isValid(new)
                and new.window() is self.window):
            new.installEventFilter(self)
            self._watched = new

    def eventFilter(self, watched: QObject, event) -> bool:
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        if not isinstance(watched, QLineEdit | QAbstractSpinBox):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self.window:
            return False
        if event.matches(QKeySequence.StandardKey.Undo) or event.matches(
                QKeySequence.StandardKey.Redo):
            event.ignore()  # not overridden: the window's shortcut gets the key
            return True
        return False


class WindowLayoutMixin:
    """Methods of :class:`MainWindow` (see the module docstring); not usable on their own."""

    # ------------------------------------------------------------------ fitting the screen
    def _fit_to_screen(self) -> None:
        """Start at the default size, shrunk to the screen's available area."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        w, h = DEFAULT_SIZE
        if screen is not None:
            w, h = min(w, screen.width()), min(h, screen.height())
        self.resize(w, h)

    def docks(self) -> list[QDockWidget]:
        return self.findChildren(QDockWidget)

    def _fit_panels(self) -> None:
        """Every dock scrolls (never widens the window), can be closed, and is listed in
        View > Panels to bring it back."""
        features = (QDockWidget.DockWidgetFeature.DockWidgetMovable
                    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                    | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        for dock in self.docks():
            dock.setFeatures(features)
            widget = dock.widget()
            if widget is not None and not isinstance(widget, QScrollArea):
                widget.setMinimumWidth(0)
                scroll = QScrollArea()
                scroll.setObjectName(f"scroll_{dock.objectName()}")
                scroll.setWidgetResizable(True)
                scroll.setFrameShape(QScrollArea.Shape.NoFrame)
                scroll.setWidget(widget)
                dock.setWidget(scroll)
            self.panels_menu.addAction(dock.toggleViewAction())
            dock.visibilityChanged.connect(partial(self._dock_visibility, dock))
        self.panels_menu.addAction(self.wl_bar.toggleViewAction())
        left = [d for d in self.docks()
                if self.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        right = [d for d in self.docks()
                 if self.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        left_px, right_px = self._dock_widths()
        for group, px in ((left, left_px), (right, right_px)):
            if group:
                self.resizeDocks(group, [px] * len(group), Qt.Orientation.Horizontal)

    def _dock_widths(self) -> tuple[int, int]:
        """Default widths (px) of the left and right dock areas: the right one as wide as the
        Segment panel wants (its controls are not clipped), at most RIGHT_DOCK_SHARE of the
        window; the left one DOCK_WIDTH_PX, narrowed (not below MIN_DOCK_PX) so the views
        keep what is left (1280 px: 240 + 460, views 580)."""
        width = self.width()
        segment = self.findChild(QDockWidget, "dock_segment")
        want = DOCK_WIDTH_PX
        if segment is not None:
            scroll = segment.widget()
            inner = scroll.widget() if isinstance(scroll, QScrollArea) else scroll
            bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
            want = max(want, inner.sizeHint().width() + 2 * bar + 8)  # its own scroll bar too
        right = int(min(want, RIGHT_DOCK_SHARE * width))
        left = int(max(MIN_DOCK_PX, min(DOCK_WIDTH_PX, width / 2 - right)))
        return left, right

    def _route_keys(self) -> None:
        """Undo/redo go to the document (segmentation), never to a number field's own text
        undo; after a menu closes, the keyboard returns to the view last used (so a letter key
        is a view key, not a menu mnemonic)."""
        from PySide6.QtWidgets import QMenu

        self._key_router = _UndoRouter(self)
        for menu in self.menuBar().findChildren(QMenu):
            menu.aboutToHide.connect(lambda: QTimer.singleShot(0, self._refocus_view))

    def _refocus_view(self) -> None:
        focus = self.focusWidget()
        if QApplication.activeModalWidget() is None and (
                focus is None or focus is self.menuBar() or focus is self):
            self.active_view().setFocus(Qt.FocusReason.OtherFocusReason)

    @staticmethod
    def _dock_visibility(dock: QDockWidget, visible: bool) -> None:
        """A dock's tab was raised (shown) or put behind another (hidden): its panel too."""
        scroll = dock.widget()
        inner = scroll.widget() if isinstance(scroll, QScrollArea) else None
        if inner is not None and inner.isHidden() == visible:
            inner.setVisible(visible)

    def _sync_docks(self) -> None:
        """Hide the panel of a dock parked behind another dock's tab (Qt keeps such docks
        "visible" off screen), show it again when its tab is raised: panels then do their
        work (distance maps, plug-in runs) only when the user looks at them."""
        if not self.isVisible():
            return
        for dock in self.docks():
            scroll = dock.widget()
            inner = scroll.widget() if isinstance(scroll, QScrollArea) else None
            if inner is None or dock.isFloating():
                continue
            shown = dock.isVisible() and not (self.tabifiedDockWidgets(dock)
                                              and dock.visibleRegion().isEmpty())
            if inner.isHidden() == shown:
                inner.setVisible(shown)

    # ------------------------------------------------------------------ remembered state
    def _restore_window_state(self) -> None:
        """Bring back the window geometry, docks, layout and splitter sizes of the last run."""
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self._fit_into_screen()
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state, STATE_VERSION)
        raw = self.settings.value("window/views")
        try:
            views = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            views = None
        if isinstance(views, dict):
            self.view_grid.restore_state(views)
            self.set_layout(self.view_grid.layout_name)

    def _fit_into_screen(self) -> None:
        """A geometry remembered on a bigger screen is shrunk to this one."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None and (self.width() > screen.width()
                                   or self.height() > screen.height()):
            self.resize(min(self.width(), screen.width()), min(self.height(), screen.height()))
            self.move(screen.topLeft())

    def save_window_state(self) -> None:
        """Remember geometry, docks, layout and splitter sizes for the next run."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.setValue("window/views", json.dumps(self.view_grid.state()))
        self.settings.sync()
