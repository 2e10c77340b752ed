"""Saving a case that someone else changed on disk meanwhile (another SurgiPlan window, or the
command line adding plans): never a silent overwrite. The save is refused by the core
(:class:`~surgiplan.io.bundle.CaseChangedError`) and the user chooses here: reload the file
(their unsaved changes are dropped), save under another name (both versions kept), or
overwrite on purpose (the other changes are dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from surgiplan.io.bundle import CaseChangedError

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

RELOAD, SAVE_AS, OVERWRITE, CANCEL = "reload", "save-as", "overwrite", "cancel"
_LABELS = {RELOAD: "&Reload from disk", SAVE_AS: "Save &as…", OVERWRITE: "&Overwrite"}


def conflict_box(parent: QWidget, exc: CaseChangedError) -> QMessageBox:
    """The question, with one button per choice (object names ``conflict_<choice>``)."""
    changed = ", ".join(exc.changed) if exc.changed else "the case"
    box = QMessageBox(QMessageBox.Icon.Warning, "Case changed on disk",
                      f"{exc.case_path.name} was changed by another SurgiPlan window or command "
                      f"since you opened it ({changed}).\n\nReload it (your unsaved changes are "
                      "lost), save your version under another name (both are kept), or "
                      "overwrite it (the other changes are lost)?",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("save_conflict_dialog")
    for choice, label in _LABELS.items():
        role = (QMessageBox.ButtonRole.DestructiveRole if choice == OVERWRITE
                else QMessageBox.ButtonRole.AcceptRole)
        box.addButton(label, role).setObjectName(f"conflict_{choice}")
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    cancel.setObjectName(f"conflict_{CANCEL}")
    box.setDefaultButton(cancel)
    return box


def choice_of(box: QMessageBox) -> str:
    button = box.clickedButton()
    name = button.objectName() if button is not None else ""
    return name.removeprefix("conflict_") or CANCEL


def _ask_path(window: MainWindow, path: Path) -> Path | None:
    name, _ = QFileDialog.getSaveFileName(window, "Save case as", str(path.with_stem(
        f"{path.stem}-mine")), "SurgiPlan cases (*.surgiplan)")
    return Path(name).with_suffix(".surgiplan") if name else None


def act(window: MainWindow, path: Path, choice: str) -> None:
    """Carry out a choice for the case at ``path`` (saves run in the window's workers)."""
    if choice == RELOAD:
        window.dirty = False
        window.open_path(path)
    elif choice == SAVE_AS:
        target = _ask_path(window, path)
        if target is not None:
            window.save_to(target)
    elif choice == OVERWRITE:
        window.save_to(path, overwrite=True)


def save_failed(window: MainWindow, path: Path, exc: BaseException) -> None:
    """``on_error`` of a save job: a changed-on-disk case asks what to do; else the error."""
    if not isinstance(exc, CaseChangedError):
        window.report_error(exc)
        return
    box = conflict_box(window, exc)
    window.error_dialogs.append(box)

    def finished(_result: int) -> None:
        if box in window.error_dialogs:
            window.error_dialogs.remove(box)
        act(window, path, choice_of(box))

    box.finished.connect(finished)
    box.open()


def save_blocking(window: MainWindow, path: Path) -> bool:
    """Save now (closing the window); on a conflict ask, modally. True when saved."""
    from surgiplan.io.bundle import save_bundle

    overwrite = False
    while True:
        try:
            save_bundle(window.twin, path, overwrite_changes=overwrite)
            return True
        except CaseChangedError as exc:
            box = conflict_box(window, exc)
            box.exec()
            choice = choice_of(box)
            if choice == OVERWRITE:
                overwrite = True
            elif choice == SAVE_AS and (target := _ask_path(window, path)) is not None:
                path = target
            else:  # reload or cancel: keep the window open
                if choice == RELOAD:
                    act(window, path, RELOAD)
                return False
        except Exception as exc:
            window.report_error(exc)
            return False
