"""Start the desktop app: ``surgiplan`` (no arguments) and ``surgiplan gui ...``.

Scripted capture: ``surgiplan gui PATH --screenshot OUT.png --exit`` loads, renders, writes the
PNG and exits 0; on bad input it prints the one-line message and exits 2; on an internal error
it exits 1 after writing a crash log.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from surgiplan.errors import BadInputError
from surgiplan.ui.shell.autosave import Autosave
from surgiplan.ui.shell.error_dialogs import install_excepthook
from surgiplan.ui.shell.main_window import MainWindow

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
RENDER_SETTLE_MS = 300


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "surgiplan"])
    app.setApplicationName("SurgiPlan")
    app.setOrganizationName("SurgiPlan")
    return app


def run_app(path: str | Path | None, *, layout: str = "four-up",
            screenshot: str | Path | None = None, exit_after: bool = False,
            review: bool = False, plan: str | None = None) -> int:
    """Open the main window (on ``path`` if given) and run the event loop; returns exit code.
    ``review``: open the case read-only in OR review mode instead (``plan`` to review)."""
    if review:
        from surgiplan.ui.shell.headless import run_review

        return run_review(path, plan=plan, screenshot=screenshot, exit_after=exit_after)
    app = application()
    window = MainWindow()
    previous_hook = install_excepthook(window.report_error)
    window.set_layout(layout)
    window.show()
    outcome = {"code": EXIT_OK}
    scripted = exit_after or screenshot is not None

    def finish() -> None:
        if screenshot is not None:
            try:
                written = window.save_screenshot(screenshot, whole_window=True)
            except Exception as exc:  # scripted runs must end, never hang on a dialog
                if exit_after:
                    failed(exc)
                    return
                raise
            print(f"surgiplan: screenshot written to {written}", flush=True)
        if exit_after:
            window.dirty = False
            window.close()
            app.exit(outcome["code"])

    def failed(exc: BaseException) -> None:
        if not exit_after:
            return
        if isinstance(exc, BadInputError):
            print(f"surgiplan: {exc}", file=sys.stderr, flush=True)
            outcome["code"] = EXIT_BAD_INPUT
        else:
            print(f"surgiplan: internal error: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)
            outcome["code"] = EXIT_INTERNAL
        window.dirty = False
        window.close()
        app.exit(outcome["code"])

    window.ready.connect(lambda: QTimer.singleShot(RENDER_SETTLE_MS, finish))
    window.load_failed.connect(failed)
    if path is not None:
        QTimer.singleShot(0, lambda: window.open_path(path))
    elif scripted:
        QTimer.singleShot(RENDER_SETTLE_MS, finish)
    if not scripted:
        QTimer.singleShot(0, lambda: offer_recovery(window))
    try:
        code = app.exec()
    finally:
        sys.excepthook = previous_hook
    return outcome["code"] if scripted else code


def offer_recovery(window: MainWindow, autosave: Autosave | None = None) -> QMessageBox | None:
    """If a crashed session left an autosave, ask (non-blocking) whether to recover it."""
    autosave = autosave or window.autosave
    found = autosave.recoverable()
    if not found:
        return None
    folder = found[0]
    case = Autosave.case_of(folder) or "an unsaved case"
    box = QMessageBox(QMessageBox.Icon.Question, "Recover work?",
                      f"SurgiPlan did not close properly. Recover the autosaved copy of {case}?",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, window)
    box.setObjectName("recovery_dialog")

    def answered(button: int) -> None:
        if button == QMessageBox.StandardButton.Yes:
            window.recover(folder)
        else:
            autosave.discard(folder)

    box.finished.connect(answered)
    box.open()
    return box
