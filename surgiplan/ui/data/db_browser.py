"""The local DICOM database browser (a dock, like 3D Slicer's DICOM browser): patients ->
studies -> series with instance counts, origin and the importer's warnings; import a folder,
load a series into the viewer, remove a series. Work that reads files runs in the window's
job runner (progress and cancel in the status bar)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.db.database import LocalDatabase

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1


class DatabaseBrowser(QWidget):
    """Tree of the local database; ``series_load_requested(uid)`` on double-click / Load."""

    series_load_requested = Signal(str)

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_ = window
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / study / series", "Files", "Origin", "Notes"])
        self.tree.itemDoubleClicked.connect(self._activated)
        buttons = QHBoxLayout()
        for title, slot in (("Import folder…", self.choose_import), ("Load", self.load_selected),
                            ("Remove", self.remove_selected), ("Refresh", self.refresh)):
            button = QPushButton(title)
            button.setObjectName(f"db_{title.split()[0].lower().strip('…')}")
            button.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.tree)
        self.series_load_requested.connect(self.load_series)

    def database(self) -> LocalDatabase:
        return LocalDatabase()

    def refresh(self) -> None:
        """Re-read the index."""
        self.tree.clear()
        try:
            with self.database() as db:
                tree = db.tree()
        except Exception as exc:
            self.window_.load_failed.emit(exc)
            return
        for patient in tree:
            p = QTreeWidgetItem([f"{patient['patient_name'] or '(no name)'} "
                                 f"[{patient['patient_id']}]"])
            self.tree.addTopLevelItem(p)
            for study in patient["studies"]:
                s = QTreeWidgetItem([f"{study['study_date']} {study['description']}".strip()
                                     or study["study_uid"]])
                p.addChild(s)
                for se in study["series"]:
                    item = QTreeWidgetItem([f"{se['modality']} {se['description']}".strip(),
                                            str(se["instances"]), se["origin"],
                                            "; ".join(se["warnings"])])
                    item.setData(0, SERIES_ROLE, se["series_uid"])
                    item.setToolTip(3, "\n".join(se["warnings"]))
                    s.addChild(item)
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)

    def selected_series(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, SERIES_ROLE) if item is not None else None

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        uid = item.data(0, SERIES_ROLE)
        if uid:
            self.series_load_requested.emit(uid)

    def load_selected(self) -> None:
        uid = self.selected_series()
        if uid:
            self.series_load_requested.emit(uid)

    def load_series(self, uid: str) -> None:
        """Open the folder holding the series' files in the viewer (the usual checks apply)."""
        import os

        try:
            with self.database() as db:
                files = db.series_files(uid)
        except Exception as exc:
            self.window_.load_failed.emit(exc)
            return
        self.window_.open_path(os.path.commonpath([str(f.parent) for f in files]))

    def choose_import(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a DICOM folder into the "
                                                  "local database")
        if folder:
            self.import_folder(folder)

    def import_folder(self, folder: str) -> None:
        """Index ``folder`` in a worker, then refresh."""
        def job(progress=None, cancel=None):
            with self.database() as db:
                return db.import_path(folder, progress=progress, cancel=cancel)

        self.window_.runner.submit(f"Importing {folder}", job,
                                   on_done=lambda _s: self.refresh(),
                                   on_error=self.window_.load_failed.emit)

    def remove_selected(self) -> None:
        uid = self.selected_series()
        if not uid:
            return
        answer = QMessageBox.question(self, "Remove series", "Forget this series? Files the "
                                      "database retrieved are deleted; imported folders are "
                                      "left in place.")
        if answer == QMessageBox.StandardButton.Yes:
            try:
                with self.database() as db:
                    db.remove_series(uid)
            except Exception as exc:
                self.window_.load_failed.emit(exc)
            self.refresh()

