"""Fixtures for the desktop-app tests: in-memory twins, a main window, a window-leak check.

Run under a real X server: ``xvfb-run -a -s "-screen 0 1600x1000x24" pytest tests/ui``.
"""

from __future__ import annotations

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin

# Where the test twin's bright marker and structures sit (LPS mm).
MARKER_LPS = np.array([20.0, -15.0, 25.0])  # patient left, anterior, superior of centre
TUMOUR_LPS = np.array([-15.0, 10.0, -10.0])  # right, posterior, inferior
BODY_HU, MARKER_HU = 40.0, 1500.0


def rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def make_twin(*, direction: np.ndarray | None = None, size=(72, 64, 40),
              spacing=(1.0, 1.25, 2.5), modality: str = "CT") -> Twin:
    """A CT-like twin centred at LPS (0, 0, 0) on an anisotropic (optionally oblique) grid.

    Body ellipsoid 40 HU in air (-1000), a 1500 HU marker ball at MARKER_LPS, and two
    structures: "tumour" (target, ball at TUMOUR_LPS) and "body" (skin, the ellipsoid).
    """
    direction = np.eye(3) if direction is None else np.asarray(direction, float)
    size = tuple(size)
    centre_index = (np.asarray(size) - 1) / 2.0
    origin = -(direction * np.asarray(spacing)) @ centre_index
    geo = ImageGeometry(size, spacing, tuple(origin), direction)
    k, j, i = np.indices(geo.shape_zyx)
    lps = geo.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    body = ((lps[..., 0] / 34) ** 2 + (lps[..., 1] / 38) ** 2 + (lps[..., 2] / 45) ** 2) <= 1
    array = np.where(body, BODY_HU, -1000.0).astype(np.int16)
    marker = np.linalg.norm(lps - MARKER_LPS, axis=-1) <= 6.0
    array[marker] = MARKER_HU
    image = ImageVolume(array, geo, modality=modality, description="test phantom",
                        series_uid="1.2.3.4", window_center=40.0, window_width=400.0)
    twin = Twin(image)
    tumour = np.linalg.norm(lps - TUMOUR_LPS, axis=-1) <= 8.0
    twin.add_structure("tumour", tumour, role=Role.TARGET, color=(1.0, 1.0, 0.0))
    twin.add_structure("body", body & ~tumour, role=Role.SKIN, color=(0.0, 0.4, 1.0))
    return twin


@pytest.fixture
def twin() -> Twin:
    return make_twin()


@pytest.fixture
def oblique_twin() -> Twin:
    return make_twin(direction=rotation_z(20.0))


def leaked_windows(qapp) -> list:
    """Visible top-level windows (after pending events): a finished test must leave none."""
    qapp.processEvents()
    return [w for w in qapp.topLevelWidgets() if w.isVisible()]


@pytest.fixture(autouse=True)
def fail_on_leaked_windows(request):
    """Fail a test that leaves a visible top-level window behind (and close it)."""
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        yield
        return
    qapp = request.getfixturevalue("qapp")
    yield
    leaked = leaked_windows(qapp)
    for w in leaked:
        w.close()
    assert not leaked, f"test leaked windows: {[type(w).__name__ for w in leaked]}"


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown main window with private settings and autosave folder; closed after the test."""
    from PySide6.QtCore import QSettings

    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave=Autosave(tmp_path / "autosave"))

    def before_close(w) -> None:
        w.dirty = False
        w.ask_rehearsals_on_close = False  # unsaved rehearsals would ask (a modal box)
        for box in list(w.error_dialogs):
            box.close()

    qtbot.addWidget(win, before_close_func=before_close)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    return win


def wait_ready(qtbot, win, action, timeout: int = 30_000) -> None:
    """Run ``action`` and wait until the window reports the load finished."""
    with qtbot.waitSignal(win.ready, timeout=timeout):
        action()
