"""Dock set-up shared by every room: one call adds a named dock to the main window, optionally
as a tab beside an existing dock."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

# movable and floatable, but not closable (the app's own docks stay reachable)
FIXED_DOCK = QDockWidget.DockWidgetFeature.DockWidgetMovable \
    | QDockWidget.DockWidgetFeature.DockWidgetFloatable


def add_dock(window: QMainWindow, title: str, widget: QWidget, *, name: str,
             area: Qt.DockWidgetArea = Qt.DockWidgetArea.LeftDockWidgetArea,
             features: QDockWidget.DockWidgetFeature | None = None,
             beside: tuple[str, ...] = ()) -> QDockWidget:
    """A dock titled ``title`` holding ``widget``, object name ``name``, added in ``area``
    (``features``: Qt's default when None); tabbed beside the first existing dock named in
    ``beside``."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    if features is not None:
        dock.setFeatures(features)
    window.addDockWidget(area, dock)
    anchors = [window.findChild(QDockWidget, n) for n in beside]
    anchor = next((d for d in anchors if d is not None), None)
    if anchor is not None:
        window.tabifyDockWidget(anchor, dock)
    return dock
