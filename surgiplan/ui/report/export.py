"""Export a plan report from a main window (File > Export report...) or headless from a case
bundle (``surgiplan report``): views rendered in a window never shown to the user, under Xvfb or
with no display at all (Qt's offscreen platform, VTK's EGL/OSMesa render window; see
:mod:`surgiplan.ui.report.offscreen`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from surgiplan.errors import BadInputError
from surgiplan.plans.store import plan_set_of_twin
from surgiplan.ui.report.capture import capture_plan_views
from surgiplan.ui.report.content import build_content
from surgiplan.ui.report.pdf import write_pdf

if TYPE_CHECKING:
    from surgiplan.ui.main_window import MainWindow

LOAD_TIMEOUT_MS = 120_000


def selected_plan_name(window: MainWindow) -> str | None:
    """The plan selected in the Plans dock, if there is one."""
    panel = getattr(window, "plans_panel", None)
    plan = panel.selected_plan() if panel is not None and hasattr(panel, "selected_plan") \
        else None
    return None if plan is None else plan.name


def export_report(window: MainWindow, path: str | Path, *, plan: str | None = None,
                  include_identifiers: bool = False) -> Path:
    """Write the report of ``plan`` (default: selected, approved, safest) to ``path``."""
    if window.twin is None:
        raise BadInputError("no case is open", action="open a case with plans first")
    content = build_content(window.twin, plan_set_of_twin(window.twin),
                            plan or selected_plan_name(window), case_path=window.case_path,
                            include_identifiers=include_identifiers)
    return write_pdf(content, capture_plan_views(window, content.plan), path)


def choose_report(window: MainWindow) -> Path | None:
    """Ask where to save and write the report (de-identified); errors go to a dialog."""
    stem = window.case_path.stem if window.case_path else "plan"
    path, _ = QFileDialog.getSaveFileName(window, "Export report", f"{stem}-report.pdf",
                                          "PDF (*.pdf)")
    if not path:
        return None
    try:
        written = export_report(window, Path(path).with_suffix(".pdf"))
    except Exception as exc:
        window.report_error(exc)
        return None
    window.statusBar().showMessage(f"Report written to {written}", 8000)
    return written


def install_report_action(window: MainWindow) -> QAction:
    """File > Export report... (before Quit)."""
    action = QAction("Export &report…", window)
    action.setObjectName("action_export_report")
    action.triggered.connect(lambda _=False: choose_report(window))
    file_menu = window.menuBar().actions()[0].menu()
    quit_action = next((a for a in file_menu.actions() if a.text() == "&Quit"), None)
    if quit_action is None:
        file_menu.addAction(action)
    else:
        file_menu.insertAction(quit_action, action)
    window.export_report_action = action
    return action


def _wait_loaded(window: MainWindow, bundle: Path) -> None:
    loop = QEventLoop()
    failure: list[BaseException] = []
    window.ready.connect(loop.quit)
    window.load_failed.connect(lambda exc: (failure.append(exc), loop.quit()))
    QTimer.singleShot(LOAD_TIMEOUT_MS, loop.quit)
    window.open_path(bundle)
    loop.exec()
    if failure:
        raise failure[0]
    if window.twin is None:
        raise BadInputError("the case did not open in time", path=bundle,
                            action="try again, or open it in the app")
    _wait_scene(window)
    settle = QEventLoop()
    QTimer.singleShot(300, settle.quit)
    settle.exec()


def _wait_scene(window: MainWindow) -> None:
    """Until the 3D view holds the structures' surfaces and no job runs (or the timeout)."""
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000.0
    twin = window.twin
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 100)
        surfaces = twin is None or not len(twin.segmentation) or window.view3d.surface_names()
        if surfaces and window.runner.is_idle():
            return
        time.sleep(0.05)


def write_report_offscreen(bundle: Path, out: Path, *, plan: str | None = None,
                           include_identifiers: bool = False) -> Path:
    """Open ``bundle`` in a private window, render the plan's views and write the PDF."""
    from surgiplan.io.bundle import read_extras
    from surgiplan.plans.store import plan_set_from_extras
    from surgiplan.ui.app import application
    from surgiplan.ui.autosave import Autosave
    from surgiplan.ui.main_window import MainWindow
    from surgiplan.ui.report.offscreen import choose_platform, headless, offscreen_plotter
    from surgiplan.ui.view3d import View3D

    plan_set_from_extras(read_extras(bundle)).get(plan) if plan else None  # fail fast
    choose_platform()
    app = application()
    if headless():
        View3D.plotter_factory = offscreen_plotter
    with tempfile.TemporaryDirectory(prefix="surgiplan-report-") as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, autosave=Autosave(Path(tmp) / "autosave"))
        window.resize(1400, 900)
        window.show()
        try:
            _wait_loaded(window, bundle)
            return export_report(window, out, plan=plan,
                                 include_identifiers=include_identifiers)
        finally:
            window.dirty = False
            window.ask_rehearsals_on_close = False  # a headless report never asks anything
            window.close()
            window.deleteLater()
            app.processEvents()
            View3D.plotter_factory = None
