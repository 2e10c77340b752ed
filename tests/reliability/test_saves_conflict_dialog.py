"""The app's side of a lost update: saving a case the command line changed meanwhile opens the
"Case changed on disk" dialog (reload / save as / overwrite / cancel) instead of overwriting.
Needs a display: run under ``xvfb-run`` with QT_QPA_PLATFORM=xcb."""

from __future__ import annotations

import pytest

from surgiplan.plans.store import read_plans
from tests.reliability.savecase import add_trajectory_plan, small_case


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave=Autosave(tmp_path / "autosave"))

    def before_close(w) -> None:
        w.dirty = False
        for box in list(w.error_dialogs):
            box.close()

    qtbot.addWidget(win, before_close_func=before_close)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def _conflict_box(qtbot, win):
    qtbot.waitUntil(lambda: any(b.objectName() == "save_conflict_dialog"
                                for b in win.error_dialogs), timeout=30_000)
    return next(b for b in win.error_dialogs if b.objectName() == "save_conflict_dialog")


def test_save_after_a_cli_change_asks_and_never_drops_the_plan(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QPushButton

    case = small_case(tmp_path)
    with qtbot.waitSignal(window.ready, timeout=60_000):
        window.open_path(case)
    add_trajectory_plan(case, "from the CLI")  # another writer, meanwhile
    window.dirty = True
    window.save_case()
    box = _conflict_box(qtbot, window)
    assert {b.objectName() for b in box.findChildren(QPushButton)} >= {
        "conflict_reload", "conflict_save-as", "conflict_overwrite", "conflict_cancel"}
    box.findChild(QPushButton, "conflict_cancel").click()
    qtbot.waitUntil(lambda: box not in window.error_dialogs, timeout=10_000)
    assert [p.name for p in read_plans(case).plans] == ["from the CLI"]
    # again, and this time reload: the app now holds the CLI's plan and saves without asking
    window.save_case()
    box = _conflict_box(qtbot, window)
    with qtbot.waitSignal(window.ready, timeout=60_000):
        box.findChild(QPushButton, "conflict_reload").click()
    assert "plans/plans.json" in window.twin.bundle_extras
    window.dirty = True
    window.save_case()
    qtbot.waitUntil(lambda: not window.dirty, timeout=30_000)
    assert not any(b.objectName() == "save_conflict_dialog" for b in window.error_dialogs)
    assert [p.name for p in read_plans(case).plans] == ["from the CLI"]
