"""Error dialogs: bad input shows the core's one-line message; anything else shows details.

Dialogs are window-modal but opened without a nested event loop (``open()``), so the app keeps
running and worker results keep arriving. Unexpected exceptions are also written to a log file
(``surgiplan.crash_log.write_crash_log``) whose path the dialog names.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from surgiplan.errors import BadInputError

log = logging.getLogger(__name__)


def error_dialog(parent: QWidget | None, exc: BaseException, *, title: str = "") -> QMessageBox:
    """Open (non-blocking) and return the dialog describing ``exc``."""
    box = QMessageBox(parent)
    box.setObjectName("error_dialog")
    if isinstance(exc, BadInputError):
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(title or "Cannot use this input")
        box.setText(str(exc))
    else:
        from surgiplan.crash_log import write_crash_log

        path = write_crash_log(exc)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(title or "Unexpected error")
        where = f"\nA log was written to {path}" if path else ""
        box.setText(f"Something went wrong: {type(exc).__name__}: {exc}\n"
                    f"SurgiPlan keeps running; your case is kept.{where}")
        box.setDetailedText("".join(traceback.format_exception(exc)))
        log.error("unexpected error", exc_info=exc)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


def install_excepthook(report: Callable[[BaseException], None]) -> Callable:
    """Route uncaught exceptions (e.g. raised in Qt slots) to ``report``; returns the old hook."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            report(exc)
        except Exception:  # reporting must never take the app down
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return previous
