"""Export a plan report from a main window (File > Export report...) or headless from a case
bundle (``surgiplan report``): views rendered in a window never shown to the user, under Xvfb or
with no display at all (Qt's offscreen platform, VTK's EGL/OSMesa render window; see
:mod:`surgiplan.ui.report.offscreen`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from surgiplan.errors import BadInputError
from surgiplan.plans.store import plan_set_of_twin
from surgiplan.ui.report.capture import capture_plan_views
from surgiplan.ui.report.content import build_content
from surgiplan.ui.report.pdf import write_pdf

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow



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
