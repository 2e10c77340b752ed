"""Rendering without a display: Qt's ``offscreen`` platform for the widgets and VTK's own
offscreen render window for the 3D view.

With no X server or Wayland compositor, Qt's xcb platform cannot start (the process aborts)
and ``QOpenGLWidget`` (pyvistaqt's 3D widget) has no GL context. ``surgiplan report`` then uses
the ``offscreen`` Qt platform, and :class:`View3D` draws into a ``pyvista.Plotter(off_screen=
True)``, whose render window VTK creates with EGL (Mesa's surfaceless platform, no GPU needed)
or OSMesa when EGL is missing, chosen by VTK at run time (VTK >= 9.4 wheels).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from typing import Any

import pyvista as pv
from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication, QImage

HEADLESS_PLATFORMS = ("offscreen", "minimal")
OFFSCREEN_SIZE = (1200, 900)


def display_available() -> bool:
    """True when an X server or a Wayland compositor is named in the environment."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def choose_platform() -> str:
    """Before the QApplication exists: with no display and no explicit ``QT_QPA_PLATFORM``,
    use Qt's ``offscreen`` platform; with no display, VTK's EGL window (else OSMesa) rather
    than trying X first. Returns the platform Qt will use."""
    if not display_available():
        if not os.environ.get("QT_QPA_PLATFORM"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        window = vtk_offscreen_window()
        if window and not os.environ.get("VTK_DEFAULT_OPENGL_WINDOW"):
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = window
    platform = os.environ.get("QT_QPA_PLATFORM", "xcb")
    if platform in HEADLESS_PLATFORMS:
        qInstallMessageHandler(_quiet_offscreen)
    return platform


def vtk_offscreen_window() -> str | None:
    """The VTK render window class that works without a display here: EGL (Mesa's
    surfaceless platform) when libEGL is installed, else OSMesa, else None."""
    if ctypes.util.find_library("EGL"):
        return "vtkEGLRenderWindow"
    if ctypes.util.find_library("OSMesa"):
        return "vtkOSOpenGLRenderWindow"
    return None


def _quiet_offscreen(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    """Drop the offscreen platform's notes about window-manager hints; print the rest."""
    if "does not support propagateSizeHints" in message:
        return
    if kind != QtMsgType.QtDebugMsg:
        sys.stderr.write(f"{message}\n")


def headless() -> bool:
    """True when the running Qt platform cannot host an OpenGL widget."""
    return QGuiApplication.platformName() in HEADLESS_PLATFORMS


class OffscreenSurface:
    """What :class:`View3D` asks of its render widget, for an offscreen ``pyvista.Plotter``:
    ``update()`` renders now, ``grabFramebuffer()`` returns the image; it has no Qt context."""

    def __init__(self, plotter: Any) -> None:
        self._plotter = plotter

    def update(self) -> None:
        self._plotter.render()

    def context(self) -> None:
        return None

    def grabFramebuffer(self) -> QImage:
        self._plotter.render()
        rgb = self._plotter.screenshot(return_img=True)
        height, width = rgb.shape[:2]
        return QImage(rgb.tobytes(), width, height, 3 * width,
                      QImage.Format.Format_RGB888).copy()


class OffscreenPlotter(pv.Plotter):
    """A pyvista plotter drawing into VTK's offscreen render window (EGL or OSMesa), with the
    render-widget surface :class:`View3D` talks to as ``interactor``."""

    def __init__(self) -> None:
        super().__init__(off_screen=True, window_size=OFFSCREEN_SIZE)
        self._surface = OffscreenSurface(self)
        self.set_background("black")

    @property
    def interactor(self) -> OffscreenSurface:
        return self._surface


def offscreen_plotter() -> OffscreenPlotter:
    return OffscreenPlotter()
