"""Opening, recovering, saving and closing cases: the window's file side.

Mixed into :class:`MainWindow`; the heavy work runs in the window's job runner and its results
are applied here on the GUI thread. Every path that replaces the case asks Save / Discard /
Cancel when there are unsaved changes.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
)

from surgiplan.twin import Twin
from surgiplan.ui.data import case_io
from surgiplan.ui.shell.autosave import AUTOSAVE_NAME, Autosave

MAX_RECENT = 8


class CaseFilesMixin:
    """Methods of :class:`MainWindow` (see the module docstring); not usable on their own."""

    # ------------------------------------------------------------------ replacing the case
    def confirm_replace(self) -> bool:
        """Before the case is replaced: True to go on. With unsaved changes, asks Save /
        Discard / Cancel (Save saves first and goes on only when the save succeeded)."""
        if not (self.dirty and self.twin is not None):
            return True
        answer = self.ask_unsaved("Save them before opening another scan or case?")
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self._save_before_close()
        self.dirty = False
        return True

    # ------------------------------------------------------------------ opening data
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if folder:
            self.open_path(folder)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open DICOM file, DICOMDIR or case", "",
            "SurgiPlan cases (*.surgiplan);;DICOM (*.dcm DICOMDIR *);;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Open a DICOM folder/file/DICOMDIR or a ``.surgiplan`` case, in a worker (after
        asking what to do with unsaved changes)."""
        if not self.confirm_replace():
            return
        path = Path(path).expanduser()
        self._loading = True
        self._add_recent(path)
        if case_io.is_case_path(path):
            self.runner.submit(f"Opening {path.name}", partial(case_io.open_case, path),
                               on_done=partial(self._case_opened, path),
                               on_error=self._load_error, on_cancel=self._load_cancelled)
        else:
            self.data_panel.tree.clear()
            self.runner.submit(f"Scanning {path.name}", partial(case_io.scan_folder, path),
                               on_done=partial(self._scanned, path), on_error=self._load_error,
                               on_cancel=self._load_cancelled)

    def _scanned(self, path: Path, scan: Any) -> None:
        self.data_panel.show_scan(scan)
        try:
            series = case_io.choose_series(scan, path=path)
        except Exception as exc:
            self._load_error(exc)
            return
        self.load_series(series)

    def load_series(self, series: Any, *, volume: int | None = None) -> None:
        """Load one series of the browser (in a worker) and show it; a series holding several
        volumes at the same positions (echoes, phases, b-values...) asks which one."""
        if not self.confirm_replace():
            return
        if volume is None:
            volume = self.choose_volume(series)
            if volume == 0:
                return
        self._loading = True
        self.runner.submit(f"Loading {series.description or series.modality}",
                           partial(case_io.open_series, series, volume=volume),
                           on_done=self._series_loaded, on_error=self._load_error,
                           on_cancel=self._load_cancelled)

    choose_volume_hook: Any = None  # tests: a callable(volumes) -> index, instead of the dialog

    def choose_volume(self, series: Any) -> int | None:
        """The 1-based volume to load (None: the series holds one; 0: the user cancelled)."""
        volumes = case_io.series_volumes(series)
        if len(volumes) < 2:
            return None
        if self.choose_volume_hook is not None:
            return int(self.choose_volume_hook(volumes))
        from PySide6.QtWidgets import QInputDialog

        labels = [f"{v.index}: {v.label} ({v.n_slices} slices)" for v in volumes]
        text, ok = QInputDialog.getItem(
            self, "Choose a volume",
            f"This series holds {len(volumes)} volumes at the same slice positions.\n"
            "Which one should be loaded?", labels, 0, False)
        return volumes[labels.index(text)].index if ok else 0

    def _series_loaded(self, opened: case_io.OpenedTwin) -> None:
        twin = opened.twin
        uid = twin.image.series_uid or (twin.provenance.source_series_uids or [""])[0]
        self.data_panel.set_series_warnings(uid, twin.image.warnings)
        self.data_panel.mark_loaded(uid)
        self.set_twin(twin, case_path=None, window=opened.window, staged=True)

    def _case_opened(self, path: Path, opened: case_io.OpenedTwin) -> None:
        self.set_twin(opened.twin, case_path=path, window=opened.window, staged=True)

    def _load_error(self, exc: BaseException) -> None:
        self._loading = False
        self.load_failed.emit(exc)
        self.report_error(exc)

    def _load_cancelled(self) -> None:
        self._loading = False
        self.statusBar().showMessage("Cancelled", 5000)

    def recover(self, session_folder: Path) -> None:
        """Open the autosave a crashed session left in ``session_folder`` (unsaved changes)."""
        if not self.confirm_replace():
            return
        case = Autosave.case_of(session_folder)

        def recovered(opened: case_io.OpenedTwin) -> None:
            self.set_twin(opened.twin, case_path=Path(case) if case else None,
                          window=opened.window)
            self.autosave.discard(session_folder)
            self.mark_dirty()

        self._loading = True
        self.runner.submit("Recovering autosave",
                           partial(case_io.open_case, session_folder / AUTOSAVE_NAME),
                           on_done=recovered, on_error=self._load_error)

    # ------------------------------------------------------------------ saving
    def mark_dirty(self) -> None:
        self.dirty = True
        self._update_title()
        self._autosave_timer.start()

    def autosave_now(self) -> None:
        if self.twin is None:
            return
        self.autosave.start_session(str(self.case_path or ""))
        self.runner.submit("Autosaving", partial(self.autosave.save, self.twin),
                           on_done=lambda _p: self.statusBar().showMessage("Autosaved", 3000),
                           on_error=self.report_error)

    def save_case(self) -> None:
        if self.case_path is None:
            self.save_case_as()
        else:
            self.save_to(self.case_path)

    def save_case_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save case", "case.surgiplan",
                                              "SurgiPlan cases (*.surgiplan)")
        if path:
            self.save_to(Path(path).with_suffix(case_io.CASE_SUFFIX))

    def save_to(self, path: Path, *, overwrite: bool = False) -> None:
        """Save in a worker; a case changed on disk meanwhile asks reload / save as /
        overwrite (``overwrite=True``: replace it anyway)."""
        from surgiplan.io.bundle import save_bundle
        from surgiplan.ui.shell.save_conflict import save_failed

        if self.twin is None:
            return
        twin = self.twin

        def saved(result: Path) -> None:
            self.case_path = Path(result)
            self.dirty = False
            self._update_title()
            self._add_recent(self.case_path)
            self.statusBar().showMessage(f"Saved {self.case_path}", 5000)

        cache = self._display_cache_job(twin)

        def save(**_k) -> Path:
            cache()
            return save_bundle(twin, path, overwrite_changes=overwrite)

        self.runner.submit(f"Saving {path.name}", save,
                           on_done=saved, on_error=partial(save_failed, self, path))

    def _display_cache_job(self, twin: Twin):
        """A callable (for the save worker) that puts the 3D display surfaces made this
        session into ``twin.bundle_extras`` (keyed by the voxels they were made from; a
        structure with a re-mesh pending is left out)."""
        from surgiplan.ui.views.display_meshes import display_cache_entries

        made = {n: m for n, m in self._display_made.items()
                if n not in self._pending_surfaces and n in twin.segmentation.names()}

        def run() -> None:
            if made:
                twin.bundle_extras.update(display_cache_entries(twin, made))

        return run

    def _update_title(self) -> None:
        name = self.case_path.name if self.case_path else (
            self.twin.image.description or "unsaved case" if self.twin else "")
        star = " *" if self.dirty else ""
        self.setWindowTitle(f"SurgiPlan — {name}{star}" if name else "SurgiPlan")

    # ------------------------------------------------------------------ recent files
    def recent_paths(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        paths = [str(path)] + [p for p in self.recent_paths() if p != str(path)]
        self.settings.setValue("recent", paths[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent_paths():
            self._action(self.recent_menu, p, partial(self.open_path, p))
        self.recent_menu.setEnabled(bool(self.recent_paths()))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            event.acceptProposedAction()

    # ------------------------------------------------------------------ closing
    def ask_unsaved(self, question: str = "Save them before closing?"
                    ) -> QMessageBox.StandardButton:
        """Ask what to do with unsaved changes (Save, Discard or Cancel)."""
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes",
                          f"The case has unsaved changes. {question}", buttons, self)
        box.setObjectName("unsaved_changes")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        return QMessageBox.StandardButton(box.exec())

    def _save_before_close(self) -> bool:
        from surgiplan.ui.shell.save_conflict import save_blocking

        path = self.case_path
        if path is None:
            name, _ = QFileDialog.getSaveFileName(self, "Save case", "case.surgiplan",
                                                  "SurgiPlan cases (*.surgiplan)")
            if not name:
                return False
            path = Path(name).with_suffix(case_io.CASE_SUFFIX)
        self._display_cache_job(self.twin)()
        if not save_blocking(self, path):
            return False
        self.dirty = False
        return True
