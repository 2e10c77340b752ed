"""The data browser: patient -> study -> series tree with each series' import warnings.

The tree is filled from a header scan (``surgiplan.io.dicom_scan.ScanResult``) that the main
window runs in a worker; warnings are shown in their own column next to the series (and in the
tooltip), never only logged. Non-image objects (SR, RTSTRUCT, SEG...) are listed greyed with
their type, and unreadable files with the reason.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.ui.widgets.progress_strip import ProgressStrip

_WARN_BRUSH = QBrush(QColor(230, 140, 30))
SERIES_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1  # "non_image" or "problem" rows


class DataPanel(QWidget):
    """Open buttons, a progress bar with Cancel, and the patient/study/series browser."""

    open_folder_requested = Signal()
    open_file_requested = Signal()
    series_activated = Signal(object)  # SeriesInfo
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("data_panel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        buttons = QHBoxLayout()
        folder = QPushButton("Open folder…")
        folder.clicked.connect(self.open_folder_requested)
        buttons.addWidget(folder)
        file = QPushButton("Open file / case…")
        file.clicked.connect(self.open_file_requested)
        buttons.addWidget(file)
        layout.addLayout(buttons)
        progress_row = QHBoxLayout()
        self.progress = ProgressStrip()
        self.progress.setRange(0, 1000)
        progress_row.addWidget(self.progress, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / study / series", "Modality", "Files", "Warnings"])
        self.tree.itemDoubleClicked.connect(self._activated)
        layout.addWidget(self.tree, 1)
        self.set_busy(False)

    # ------------------------------------------------------------------ progress
    def set_busy(self, busy: bool, text: str = "") -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
        self.progress.setFormat(f"{text} %p%" if text else "%p%")

    def set_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(fraction * 1000))
        self.progress.setFormat(f"{text} %p%" if text else "%p%")

    # ------------------------------------------------------------------ browser
    def show_scan(self, scan: Any) -> None:
        """Fill the tree from a ScanResult (``.series`` of SeriesInfo, ``.problems``)."""
        self.tree.clear()
        patients: dict[str, QTreeWidgetItem] = {}
        studies: dict[str, QTreeWidgetItem] = {}
        for s in scan.series:
            pkey = f"{s.patient_name}|{s.patient_id}"
            if pkey not in patients:
                label = str(s.patient_name or "(no name)")
                if s.patient_id:
                    label += f"  [{s.patient_id}]"
                patients[pkey] = QTreeWidgetItem(self.tree, [label])
            if s.study_uid not in studies:
                text = " ".join(str(t) for t in (s.study_date, s.study_description) if t)
                studies[s.study_uid] = QTreeWidgetItem(patients[pkey], [text or "(study)"])
            item = QTreeWidgetItem(studies[s.study_uid], [
                s.description or s.series_uid, s.modality, str(s.n_files), ""])
            item.setData(0, SERIES_ROLE, s)
            self.set_series_warnings(s.series_uid, list(s.warnings), item=item)
        self._add_non_image(list(getattr(scan, "non_image", []) or []))
        all_problems = list(getattr(scan, "problems", []) or [])
        problems = [p for p in all_problems if not p.plainly_not_dicom]
        self._add_problems(problems)
        self._add_other_files([p for p in all_problems if p.plainly_not_dicom])
        self.tree.expandAll()
        for c in range(3):
            self.tree.resizeColumnToContents(c)
        self.status.setText(f"{len(problems)} file(s) could not be read: see Problems below"
                            if problems else "")

    def _add_other_files(self, files: list[Any]) -> None:
        """Non-DICOM files beside the series (label maps, notes): listed, not alarming."""
        if not files:
            return
        top = QTreeWidgetItem(self.tree, [f"Other files (not DICOM): {len(files)}"])
        top.setData(0, KIND_ROLE, "other_file")
        for f in files:
            item = QTreeWidgetItem(top, [f.path.name, "", "", "not DICOM (e.g. a label map: "
                                         "File > Import segmentation)"])
            item.setData(0, KIND_ROLE, "other_file")
            item.setToolTip(0, str(f.path))
            item.setDisabled(True)

    def _add_non_image(self, objects: list[Any]) -> None:
        """List non-image objects (SR, RTSTRUCT, SEG...) greyed, one row per kind and series."""
        if not objects:
            return
        groups: dict[tuple[str, str], list[Any]] = {}
        for o in objects:
            groups.setdefault((o.kind, o.series_uid), []).append(o)
        top = QTreeWidgetItem(self.tree, [f"Other objects (not images): {len(objects)}"])
        top.setData(0, KIND_ROLE, "non_image")
        for (kind, _uid), members in sorted(groups.items()):
            first = members[0]
            item = QTreeWidgetItem(top, [first.description or first.path.name, kind,
                                         str(len(members)), "cannot be shown as an image"])
            item.setData(0, KIND_ROLE, "non_image")
            item.setToolTip(0, f"{first.sop_class}\n{first.path}")
            item.setDisabled(True)

    def _add_problems(self, problems: list[Any]) -> None:
        """List unreadable files with their reasons (greyed, the reason in the warnings column)."""
        if not problems:
            return
        top = QTreeWidgetItem(self.tree, [f"Problems: {len(problems)} unreadable file(s)"])
        top.setData(0, KIND_ROLE, "problem")
        top.setForeground(0, _WARN_BRUSH)
        for problem in problems:
            item = QTreeWidgetItem(top, [problem.path.name, "", "", problem.reason])
            item.setData(0, KIND_ROLE, "problem")
            item.setToolTip(0, str(problem.path))
            item.setToolTip(3, problem.reason)
            item.setForeground(3, _WARN_BRUSH)
            item.setDisabled(True)

    def items_of_kind(self, kind: str) -> list[QTreeWidgetItem]:
        """Rows of non-image objects (``"non_image"``), unreadable files (``"problem"``) or
        non-DICOM files beside the series (``"other_file"``)."""
        found = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.data(0, KIND_ROLE) == kind:
                found.extend(top.child(n) for n in range(top.childCount()))
        return found

    def series_items(self) -> list[QTreeWidgetItem]:
        found = []
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            if item.data(0, SERIES_ROLE) is not None:
                found.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return found

    def set_series_warnings(self, series_uid: str, warnings: list[str], *,
                            item: QTreeWidgetItem | None = None) -> None:
        """Show warnings (human sentences) next to a series; merges with those shown."""
        items = [item] if item is not None else [
            i for i in self.series_items() if i.data(0, SERIES_ROLE).series_uid == series_uid]
        for it in items:
            old = [w for w in it.toolTip(3).split("\n") if w]
            merged = old + [w for w in warnings if w not in old]
            it.setText(3, f"⚠ {len(merged)}: {merged[0]}" if merged else "")
            it.setToolTip(3, "\n".join(merged))
            it.setForeground(3, _WARN_BRUSH)

    def mark_loaded(self, series_uid: str) -> None:
        for it in self.series_items():
            font = it.font(0)
            font.setBold(it.data(0, SERIES_ROLE).series_uid == series_uid)
            it.setFont(0, font)

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        series = item.data(0, SERIES_ROLE)
        if series is not None:
            self.series_activated.emit(series)
