"""The SurgiPlan main window: linked slice and 3D views, data and structures panels.

Opening data, meshing and saving run in workers (:mod:`surgiplan.ui.widgets.jobs`); the window
applies their results on the GUI thread. The file side, the dock layout and the scene on screen
live in the mixins of :mod:`.case_files`, :mod:`.window_layout` and :mod:`.scene`. Twin events
reach the views through a queued Qt signal and are re-emitted as :attr:`MainWindow.twin_event`
for panels and lists. Every path that replaces the case asks Save / Discard / Cancel when it has
unsaved changes. The window fits a 1280x800 screen: panels scroll and can be closed and restored
(View > Panels); layout, splitter sizes, docks and window geometry are remembered between runs.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from surgiplan.twin import Twin
from surgiplan.ui.data import case_io
from surgiplan.ui.data.data_panel import DataPanel
from surgiplan.ui.segment.structures_panel import StructuresPanel
from surgiplan.ui.shell.autosave import Autosave
from surgiplan.ui.shell.case_files import CaseFilesMixin
from surgiplan.ui.shell.error_dialogs import error_dialog
from surgiplan.ui.shell.layouts import LAYOUT_TITLES, ViewGrid
from surgiplan.ui.shell.scene import SceneMixin
from surgiplan.ui.shell.settings import app_settings
from surgiplan.ui.shell.window_layout import WindowLayoutMixin
from surgiplan.ui.views.slice_planes import Plane
from surgiplan.ui.views.slice_view import HELP_TEXT, SliceView
from surgiplan.ui.views.view3d import STANDARD_VIEWS, View3D
from surgiplan.ui.views.window_level_bar import WindowLevelBar
from surgiplan.ui.views.windowing import default_window, presets_for
from surgiplan.ui.widgets import pyside_guard
from surgiplan.ui.widgets.docks import add_dock
from surgiplan.ui.widgets.jobs import Job, JobRunner
from surgiplan.ui.widgets.progress_strip import ProgressStrip
from surgiplan.ui.widgets.twin_bridge import TwinEventBridge
from surgiplan.ui.widgets.warning_banner import WarningBanner

AUTOSAVE_DELAY_MS = 3000
SURFACE_DELAY_MS = 300  # edits within this time (a brush stroke) share one re-meshing




class MainWindow(CaseFilesMixin, WindowLayoutMixin, SceneMixin, QMainWindow):
    """The workstation window. ``settings`` and ``autosave`` are injectable for tests."""

    case_loaded = Signal(object)  # Twin
    load_failed = Signal(object)  # exception
    ready = Signal()  # a load (and its surfaces) finished and the views are drawn
    twin_event = Signal(str, object)  # a model event of the current twin (name, payload)

    def __init__(self, *, settings: QSettings | None = None, autosave: Autosave | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("SurgiPlan")
        self._fit_to_screen()
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else app_settings()
        self.autosave = autosave if autosave is not None else Autosave()
        self.twin: Twin | None = None
        self.case_path: Path | None = None
        self.dirty = False
        self.error_dialogs: list[QMessageBox] = []
        self._bridge: TwinEventBridge | None = None
        self._loading = False
        self._shown_once = False
        self._later_steps: list = []  # the rest of a staged set_twin, one step per turn
        self._ready_waiting = False
        self.runner = JobRunner(self)
        self._build_views()
        self._build_panels()
        self._build_status()
        self._build_menus()
        self._build_segment_dock()
        self._build_planning_dock()
        self._build_rehearsal_dock()
        self._build_plans_dock()
        self._build_report_menu()
        self._build_training_menu()
        from surgiplan.ui.data.pacs_panel import install_pacs  # PACS + DICOM database (issue 17)

        install_pacs(self)
        self._build_measurements_dock()
        from surgiplan.ui.views.fusion import install_fusion  # several series fused (issue 18)

        self.fusion_panel = install_fusion(self)
        from surgiplan.ui.modes.cohort_window import install_cohort  # cohort results (issue 19)

        install_cohort(self)
        self._fit_panels()
        self._route_keys()
        self._restore_window_state()
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._pending_surfaces: set[str] = set()
        self._display_made: dict = {}
        self._surface_serials: dict[str, int] = {}
        self._surface_timer = QTimer(self, singleShot=True, interval=SURFACE_DELAY_MS)
        self._surface_timer.timeout.connect(self._flush_surfaces)
        self.runner.started.connect(self._job_started)
        self.runner.progressed.connect(self._job_progressed)
        self.runner.ended.connect(self._job_ended)
        self.runner.idle.connect(self._finish_loading)
        self._guard_timer = QTimer(self, interval=2000)
        self._guard_timer.timeout.connect(pyside_guard.top_up)
        self._guard_timer.start()

    # ------------------------------------------------------------------ construction
    def _build_views(self) -> None:
        self.slice_views = {p.value: SliceView(p) for p in Plane}
        self.view3d = View3D()
        self.view3d.slice_source = self._slice_image
        views: dict[str, QWidget] = {**self.slice_views, "3d": self.view3d}
        self.view_grid = ViewGrid(views)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.warning_banner = WarningBanner()
        column.addWidget(self.warning_banner)
        column.addWidget(self.view_grid, 1)
        self.setCentralWidget(central)
        self.wl_bar = WindowLevelBar(self)
        self.wl_bar.window_edited.connect(self.set_window_level)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.wl_bar)
        for name, view in self.slice_views.items():
            view.cursor_moved.connect(self.set_cursor)
            view.window_changed.connect(self.set_window_level)
            view.maximize_requested.connect(partial(self.view_grid.toggle_maximize, name))
        self.view3d.maximize_requested.connect(partial(self.view_grid.toggle_maximize, "3d"))
        self.view3d.point_picked.connect(self.place_from_3d)

    def _build_panels(self) -> None:
        self.data_panel = DataPanel()
        self.data_panel.open_folder_requested.connect(self.choose_folder)
        self.data_panel.open_file_requested.connect(self.choose_file)
        self.data_panel.series_activated.connect(self.load_series)
        self.data_panel.cancel_requested.connect(self.runner.cancel_all)
        self.structures_panel = StructuresPanel()
        self.structures_panel.overlay_style_changed.connect(self.set_overlay_style)
        for title, widget in (("Data", self.data_panel), ("Structures", self.structures_panel)):
            add_dock(self, title, widget, name=f"dock_{title.lower()}")

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.job_label = QLabel("")
        self.job_progress = ProgressStrip(maximum_width=220)
        self.job_progress.setRange(0, 1000)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(self.runner.cancel_all)
        for w in (self.job_label, self.job_progress, self.job_cancel):
            bar.addPermanentWidget(w)
            w.setVisible(False)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file = menu.addMenu("&File")
        self._action(file, "Open &folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(file, "Open file or &case…", self.choose_file, "Ctrl+Shift+O")
        self.recent_menu = file.addMenu("Open &recent")
        self._fill_recent()
        file.addSeparator()
        self._action(file, "&Save case", self.save_case, QKeySequence.StandardKey.Save)
        self._action(file, "Save case &as…", self.save_case_as, "Ctrl+Shift+S")
        file.addSeparator()
        self._action(file, "Save screenshot of active &view…",
                     partial(self.choose_screenshot, whole_window=False), "Ctrl+P")
        self._action(file, "Save screenshot of &window…",
                     partial(self.choose_screenshot, whole_window=True), "Ctrl+Shift+P")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view = menu.addMenu("&View")
        group = QActionGroup(self)
        self.layout_actions = {}
        for name, title in LAYOUT_TITLES.items():
            act = self._action(view, title, partial(self.set_layout, name))
            act.setCheckable(True)
            act.setChecked(name == "four-up")
            group.addAction(act)
            self.layout_actions[name] = act
        view.addSeparator()
        self.wl_menu = view.addMenu("Window/level")
        self._fill_wl_menu()
        self._action(view, "Reset slice views", self.reset_views)
        self.panels_menu = view.addMenu("&Panels")
        three = menu.addMenu("&3D")
        for name in STANDARD_VIEWS:
            self._action(three, f"{name.capitalize()} view",
                         partial(self.view3d.set_standard_view, name))
        help_menu = menu.addMenu("&Help")
        self._action(help_menu, "Mouse and keys", self.show_help,
                     QKeySequence.StandardKey.HelpContents)

    def _fill_wl_menu(self) -> None:
        """View > Window/level: the presets of the open volume's modality (keys 1..n)."""
        self.wl_menu.clear()
        presets = [] if self.twin is None else presets_for(self.twin.image)
        for n, preset in enumerate(presets, start=1):
            key = f"{n}  " if n <= 9 else ""
            self._action(self.wl_menu, f"{key}{preset.name} ({preset.width:g}/{preset.center:g})",
                         partial(self.apply_preset, n))
        self._action(self.wl_menu, "0  Default (file or histogram)", partial(self.apply_preset, 0))

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

    # ------------------------------------------------------------------ the twin
    def set_twin(self, twin: Twin | None, *, case_path: Path | None = None,
                 dirty: bool = False, window: tuple[float, float] | None = None,
                 staged: bool = False) -> None:
        """Show ``twin`` in every view and panel; build its 3D scene in a worker.

        ``window`` (centre, width) is the default display window when already computed (the
        open jobs compute it in their worker); otherwise it is computed here. ``staged`` (the
        open jobs): the axial and 3D views show the case in this event-loop turn, the coronal
        and sagittal views, the Structures list and the other panels (``case_loaded``) in the
        next turns, one per turn, so no single turn stalls the GUI; :attr:`ready` waits.
        """
        if self._bridge is not None:
            self._bridge.detach()
            self._bridge.deleteLater()
            self._bridge = None
        self.twin = twin
        self.case_path = case_path
        self.dirty = dirty
        self._display_made: dict = {}  # display surfaces made this session (name -> mesh)
        if twin is not None and window is None:
            window = default_window(twin.image)
        for name, view in self.slice_views.items():  # staged: the axial view first
            view.set_twin(twin if not staged or name == "axial" else None, window=window)
        self.wl_bar.set_volume(None if twin is None else twin.image)
        self.wl_bar.show_window(*self.slice_views["axial"].window)
        self._fill_wl_menu()
        self.warning_banner.set_warnings([] if twin is None else list(twin.image.warnings))
        self.view3d.set_image(None if twin is None else twin.image)
        self._update_title()
        self._later_steps = []  # a staged show of an earlier twin stops here
        if twin is None:
            self.structures_panel.set_twin(None)
            return
        self._bridge = TwinEventBridge(twin, self)
        self._bridge.event.connect(self._twin_event)
        steps = [partial(self.structures_panel.set_twin, twin), partial(self._twin_shown, twin)]
        if not staged:
            for step in steps:
                step()
            self._start_scene(twin)
            return
        self._start_scene(twin)  # the worker meshes while the panels fill
        later_views = [partial(self._show_in_view, view, twin)
                       for name, view in self.slice_views.items() if name != "axial"]
        self._later_steps = [*later_views, *steps]
        QTimer.singleShot(1, self, self._next_step)  # a timer: paints and input run between

    def _show_in_view(self, view: SliceView, twin: Twin) -> None:
        """A staged slice view shows ``twin`` at the axial view's current window and cursor
        (the user may have changed them since the first turn)."""
        axial = self.slice_views["axial"]
        view.set_twin(twin, window=axial.window)
        if axial.cursor_lps is not None:
            view.set_cursor(axial.cursor_lps)

    def _twin_shown(self, twin: Twin) -> None:
        """The panels' part of :meth:`set_twin`: docks, import warnings, ``case_loaded``."""
        self._sync_docks()  # panels behind a tab stay idle on the new case
        for warning in twin.image.warnings:
            self.statusBar().showMessage(f"Import warning: {warning}", 15000)
        self.case_loaded.emit(twin)

    def _next_step(self) -> None:
        """Run the next step of a staged :meth:`set_twin`, the following one a turn later."""
        if self._later_steps:
            self._later_steps.pop(0)()
        if self._later_steps:
            QTimer.singleShot(1, self, self._next_step)
        elif self._ready_waiting:
            self._ready_waiting = False
            QTimer.singleShot(0, self, self.ready.emit)  # not after the window is gone

    def _build_segment_dock(self) -> None:
        """The Segment dock with its Edit/Segment menus and File import/export (issue 4)."""
        from surgiplan.ui.segment.segment_panel import install_segment_panel

        self.segment_panel = install_segment_panel(self)

    def _build_planning_dock(self) -> None:
        """The Planning dock (trajectories, issue 5) and its probe's-eye dock."""
        from surgiplan.ui.plan.planning_panel import install_planning

        self.planning_panel = install_planning(self)

    def _build_measurements_dock(self) -> None:
        """The Measure dock: rulers, angles, ROI statistics (issue 14)."""
        from surgiplan.ui.views.measurements import install_measurements

        self.measurements_panel = install_measurements(self)

    def _build_report_menu(self) -> None:
        """File > Export report... (the plan report PDF, issue 7)."""
        from surgiplan.ui.report.export import install_report_action

        install_report_action(self)

    def _build_training_menu(self) -> None:
        """The Training menu and dock for residents' exercises (issue 7)."""
        from surgiplan.ui.modes.training_mode import install_training

        install_training(self)

    def open_review(self, plans: list, *, plan: str | None = None) -> QWidget:
        """Open OR review mode (read-only) on ``plans`` of the current twin, at ``plan``."""
        from surgiplan.ui.modes.review_mode import ReviewWindow

        review = ReviewWindow(self.twin, plans, plan=plan,
                              window=self.slice_views["axial"].window)
        review.showMaximized()
        return review

    def _build_rehearsal_dock(self) -> None:
        """The Rehearse dock: implant, ablation and resection panels (issue 6)."""
        from surgiplan.ui.rehearse.rehearsal_panels import install_rehearsals

        install_rehearsals(self)

    def _build_plans_dock(self) -> None:
        """The Plans dock: candidate plans, comparison, OR review (issue 7)."""
        from surgiplan.ui.plan.plans_panel import install_plans_panel

        self.plans_panel = install_plans_panel(self)

    def _finish_loading(self) -> None:
        """Every job of an open is done (image shown, surfaces and 3D volume built)."""
        if self._loading:
            self._loading = False
            if self._later_steps:  # a staged show is still filling the panels
                self._ready_waiting = True
            else:
                QTimer.singleShot(0, self, self.ready.emit)  # not after the window is gone

    def _twin_event(self, name: str, payload: dict) -> None:
        structure = payload.get("name")
        if name == "structure_reviewed":
            self.structures_panel.update_row(structure)
        elif name == "structure_properties_changed":
            for view in self.slice_views.values():
                view.refresh_overlays()
            self.view3d.update_structure(self.twin.structure(structure))
            self.view3d.refresh_planes()
            self.structures_panel.update_row(structure)
        elif name in ("structure_added", "structure_changed", "structure_removed"):
            self.structures_panel.refresh()
            for view in self.slice_views.values():
                view.refresh_overlays()
            if name == "structure_removed":
                self.view3d.remove_surface(structure)
            else:
                self.queue_surfaces(structure)
        elif name == "structure_renamed":
            self.structures_panel.refresh()
            self.view3d.remove_surface(payload.get("old_name"))
            self.queue_surfaces(structure)
        elif name == "image_changed":
            for view in self.slice_views.values():
                view.set_twin(self.twin)
        self.mark_dirty()
        self.twin_event.emit(name, payload)

    # ------------------------------------------------------------------ jobs and errors
    def _job_started(self, job: Job) -> None:
        for w in (self.job_label, self.job_progress, self.job_cancel):
            w.setVisible(True)
        self.job_label.setText(job.name)
        self.job_progress.setValue(0)
        self.data_panel.set_busy(True, job.name)

    def _job_progressed(self, job: Job) -> None:
        self.job_label.setText(f"{job.name}: {job.text}" if job.text else job.name)
        self.job_progress.setValue(round(job.fraction * 1000))
        self.data_panel.set_progress(job.fraction, job.text or job.name)

    def _job_ended(self, _job: Job) -> None:
        if self.runner.is_idle():
            for w in (self.job_label, self.job_progress, self.job_cancel):
                w.setVisible(False)
            self.data_panel.set_busy(False)

    def report_error(self, exc: BaseException) -> QMessageBox:
        """Show ``exc`` in a dialog (bad input: its message; otherwise details + log)."""
        box = error_dialog(self, exc)
        self.error_dialogs.append(box)
        box.finished.connect(lambda _r, b=box: self.error_dialogs.remove(b)
                             if b in self.error_dialogs else None)
        return box

    def show_help(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Mouse and keys", HELP_TEXT,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("help_dialog")
        box.open()

    def showEvent(self, event) -> None:
        """Create the 3D render window just after the first paint (keeps start-up fast)."""
        super().showEvent(event)
        QTimer.singleShot(0, self._sync_docks)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(150, self, self.view3d.ensure_plotter)
            QTimer.singleShot(300, self, self._warm_up)

    def _warm_up(self) -> None:
        """Import the I/O and 3D modules in a worker while the user picks something to open."""
        if self.isVisible():
            self.runner.submit_quiet(case_io.warm_up)

    def closeEvent(self, event) -> None:
        from surgiplan.ui.rehearse.rehearsal_panels import confirm_unsaved_rehearsals

        if self.twin is not None and not confirm_unsaved_rehearsals(self):
            event.ignore()  # unsaved rehearsals: Cancel (Save made them plans: case dirty)
            return
        if self.dirty and self.twin is not None:
            answer = self.ask_unsaved()
            if answer == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Save and not self._save_before_close():
                event.ignore()
                return
        self._autosave_timer.stop()
        self.save_window_state()
        self.runner.wait_for_threads()
        self.autosave.discard()
        self.view3d.close_renderer()
        super().closeEvent(event)
