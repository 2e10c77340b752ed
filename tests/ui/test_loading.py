"""Opening scans and cases in workers, error dialogs, autosave/recovery, closing, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from surgiplan.errors import BadInputError
from tests.conftest import PROJECT_ROOT, real_scan
from tests.ui.conftest import make_twin, wait_ready


def wait_dialog(qtbot, window):
    qtbot.waitUntil(lambda: bool(window.error_dialogs), timeout=20_000)
    return window.error_dialogs[-1]


def test_open_real_feet_first_ct_in_a_worker(qtbot, window):
    folder = real_scan("liver-ct-3slice-seg")
    wait_ready(qtbot, window, lambda: window.open_path(folder))
    twin = window.twin
    assert twin is not None and twin.image.modality == "CT"
    items = window.data_panel.series_items()
    assert len(items) == 1 and items[0].text(1) == "CT"
    axial = window.slice_views["axial"]
    assert axial.mapping.edge_labels() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert axial.window == (40.0, 400.0)  # the file's WindowCenter/Width
    assert not window.error_dialogs
    assert window.recent_paths()[0] == str(folder)


def test_import_warnings_are_shown_next_to_the_series(qtbot, window):
    folder = real_scan("head-ct-gantry-tilt")
    wait_ready(qtbot, window, lambda: window.open_path(folder))
    item = window.data_panel.series_items()[0]
    assert "⚠" in item.text(3)
    assert "tilt" in item.toolTip(3).lower()
    labels = window.slice_views["sagittal"].mapping.edge_labels()
    assert labels["left"].startswith("A") and labels["top"].startswith("S")


def test_broken_series_shows_the_core_message(qtbot, window, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for n in range(3):
        (broken / f"{n}.dcm").write_bytes(b"DICM? no, just bytes" * 20)
    with qtbot.waitSignal(window.load_failed, timeout=20_000) as blocker:
        window.open_path(broken)
    assert isinstance(blocker.args[0], BadInputError)
    box = wait_dialog(qtbot, window)
    assert box.isVisible() and str(broken) in box.text()
    assert window.twin is None  # nothing half-loaded
    box.close()


def test_missing_path_and_unexpected_errors_keep_the_app_running(qtbot, window, tmp_path,
                                                                 monkeypatch):
    window.open_path(tmp_path / "nope")
    box = wait_dialog(qtbot, window)
    assert "does not exist" in box.text()
    box.close()
    import surgiplan.crash_log as crash_log

    monkeypatch.setattr(crash_log, "log_dir", lambda: tmp_path / "logs")
    from surgiplan.ui.shell.error_dialogs import install_excepthook

    previous = install_excepthook(window.report_error)
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        sys.excepthook = previous
    box = window.error_dialogs[-1]
    assert "RuntimeError: boom in a slot" in box.text()
    assert "boom in a slot" in box.detailedText()
    logs = list((tmp_path / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in box.text()
    assert window.isVisible()
    box.close()


def test_open_case_shows_structures_and_surfaces(qtbot, window, tmp_path):
    from surgiplan.io.bundle import save_bundle

    path = save_bundle(make_twin(), tmp_path / "demo.surgiplan")
    wait_ready(qtbot, window, lambda: window.open_path(path))
    assert window.case_path == path and "demo.surgiplan" in window.windowTitle()
    assert window.structures_panel.table.rowCount() == 2
    assert sorted(window.view3d.surface_names()) == ["body", "tumour"]
    assert not window.dirty


def test_cancel_an_import(qtbot, window):
    folder = real_scan("abdomen-ct-contrast")
    window.open_path(folder)
    qtbot.waitUntil(lambda: window.data_panel.cancel_button.isVisible(), timeout=5000)
    window.data_panel.cancel_button.click()
    qtbot.waitUntil(lambda: window.runner.is_idle(), timeout=30_000)
    assert window.twin is None and not window.error_dialogs


def test_autosave_and_recovery_after_a_crash(qtbot, window, tmp_path):
    from surgiplan.ui.shell.app import offer_recovery
    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    twin = make_twin()
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    twin.set_structure_properties("tumour", opacity=0.3, margin_mm=4.0)
    assert window.dirty and window._autosave_timer.isActive()
    with qtbot.waitSignal(window.runner.idle, timeout=20_000):
        window.autosave_now()
    assert window.autosave.bundle_path.is_file()
    # simulate a crash: the session folder now belongs to a process that is gone
    crashed = window.autosave.root / "session-999999999"
    window.autosave.folder.rename(crashed)
    (crashed / "session.json").write_text('{"pid": 999999999, "case": ""}')

    second = MainWindow(settings=window.settings, autosave=Autosave(window.autosave.root))
    qtbot.addWidget(second, before_close_func=lambda w: setattr(w, "dirty", False))
    second.show()
    box = offer_recovery(second)
    assert box is not None and box.isVisible()
    with qtbot.waitSignal(second.ready, timeout=20_000):
        box.button(QMessageBox.StandardButton.Yes).click()
    recovered = second.twin.structure("tumour")
    assert recovered.opacity == pytest.approx(0.3) and recovered.margin_mm == 4.0
    assert second.dirty and not crashed.exists()
    assert offer_recovery(second) is None


def test_closing_with_unsaved_changes_asks(qtbot, window, twin, monkeypatch):
    wait_ready(qtbot, window, lambda: (setattr(window, "_loading", True), window.set_twin(twin)))
    twin.set_structure_properties("body", visible=False)
    asked = []
    answer = QMessageBox.StandardButton.Cancel
    monkeypatch.setattr(window, "ask_unsaved", lambda: asked.append(1) or answer)
    window.close()
    assert asked and window.isVisible()
    answer = QMessageBox.StandardButton.Discard
    window.close()
    assert len(asked) == 2 and not window.isVisible()


def _run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=os.environ.get("XDG_DATA_HOME", "/tmp"))
    return subprocess.run([sys.executable, "-m", "surgiplan", "gui", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_scripted_screenshot_and_bad_input_exit_codes(tmp_path):
    from surgiplan.io.bundle import save_bundle

    case = save_bundle(make_twin(), tmp_path / "demo.surgiplan")
    out = tmp_path / "shot.png"
    done = _run_cli(str(case), "--layout", "3d", "--screenshot", str(out), "--exit")
    assert done.returncode == 0, done.stderr
    image = QImage(str(out))
    assert image.width() > 800
    arr = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(0, image.width(), 16)]
                    for y in range(0, image.height(), 16)])
    assert arr.std() > 10, "screenshot is blank"
    bad = _run_cli(str(tmp_path / "missing"), "--screenshot", str(tmp_path / "x.png"), "--exit")
    assert bad.returncode == 2
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    assert not Path(tmp_path / "x.png").exists()
