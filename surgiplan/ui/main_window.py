"""The SurgiPlan main window: linked slice and 3D views, data and structures panels.

Opening data, meshing and saving run in workers (:mod:`surgiplan.ui.jobs`); the window applies
their results on the GUI thread. Twin events reach the views through a queued Qt signal and are
re-emitted as :attr:`MainWindow.twin_event` for panels and lists. Every path that replaces the
case asks Save / Discard / Cancel when it has unsaved changes. The window fits a 1280x800
screen: panels scroll and can be closed and restored (View > Panels); layout, splitter sizes,
docks and window geometry are remembered between runs.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from surgiplan.twin import Twin
from surgiplan.ui import case_io, pyside_guard
from surgiplan.ui.autosave import AUTOSAVE_NAME, Autosave
from surgiplan.ui.data_panel import DataPanel
from surgiplan.ui.error_dialogs import error_dialog
from surgiplan.ui.jobs import Job, JobRunner
from surgiplan.ui.layouts import LAYOUT_TITLES, ViewGrid
from surgiplan.ui.progress_strip import ProgressStrip
from surgiplan.ui.settings import app_settings
from surgiplan.ui.slice_planes import Plane
from surgiplan.ui.slice_view import HELP_TEXT, SliceView
from surgiplan.ui.structures_panel import StructuresPanel
from surgiplan.ui.view3d import STANDARD_VIEWS, View3D
from surgiplan.ui.warning_banner import WarningBanner
from surgiplan.ui.window_level_bar import WindowLevelBar
from surgiplan.ui.windowing import default_window, presets_for

MAX_RECENT = 8
AUTOSAVE_DELAY_MS = 3000
SURFACE_DELAY_MS = 300  # edits within this time (a brush stroke) share one re-meshing
DEFAULT_SIZE = (1500, 950)
DOCK_WIDTH_PX = 300  # default width of the left and right dock areas
STATE_VERSION = 2  # of QMainWindow.saveState in the settings


class TwinEventBridge(QObject):
    """Re-emits a twin's model events as a Qt signal (queued onto the GUI thread)."""

    event = Signal(str, object)

    def __init__(self, twin: Twin, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.twin = twin
        twin.events.connect(self._forward)

    def _forward(self, event_name: str, /, **payload: Any) -> None:
        self.event.emit(event_name, payload)

    def detach(self) -> None:
        self.twin.events.disconnect(self._forward)


class _UndoRouter(QObject):
    """Takes Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y away from text and number fields of the window, so
    the Edit menu's undo/redo (the document's) runs instead of the field's text undo."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, watched: QObject, event) -> bool:
        from PySide6.QtCore import QEvent
        from PySide6.QtGui import QKeyEvent
        from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit

        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        if not isinstance(watched, QLineEdit | QAbstractSpinBox):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self.window:
            return False
        if event.matches(QKeySequence.StandardKey.Undo) or event.matches(
                QKeySequence.StandardKey.Redo):
            event.ignore()  # not overridden: the window's shortcut gets the key
            return True
        return False


class MainWindow(QMainWindow):
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
        from surgiplan.ui.pacs_panel import install_pacs  # PACS + DICOM database (issue 17)

        install_pacs(self)
        self._build_measurements_dock()
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

    def _build_panels(self) -> None:
        self.data_panel = DataPanel()
        self.data_panel.open_folder_requested.connect(self.choose_folder)
        self.data_panel.open_file_requested.connect(self.choose_file)
        self.data_panel.series_activated.connect(self.load_series)
        self.data_panel.cancel_requested.connect(self.runner.cancel_all)
        self.structures_panel = StructuresPanel()
        self.structures_panel.overlay_style_changed.connect(self.set_overlay_style)
        for title, widget in (("Data", self.data_panel), ("Structures", self.structures_panel)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

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

    # ------------------------------------------------------------------ fitting the screen
    def _fit_to_screen(self) -> None:
        """Start at the default size, shrunk to the screen's available area."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        w, h = DEFAULT_SIZE
        if screen is not None:
            w, h = min(w, screen.width()), min(h, screen.height())
        self.resize(w, h)

    def docks(self) -> list[QDockWidget]:
        return self.findChildren(QDockWidget)

    def _fit_panels(self) -> None:
        """Every dock scrolls (never widens the window), can be closed, and is listed in
        View > Panels to bring it back."""
        features = (QDockWidget.DockWidgetFeature.DockWidgetMovable
                    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                    | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        for dock in self.docks():
            dock.setFeatures(features)
            widget = dock.widget()
            if widget is not None and not isinstance(widget, QScrollArea):
                widget.setMinimumWidth(0)
                scroll = QScrollArea()
                scroll.setObjectName(f"scroll_{dock.objectName()}")
                scroll.setWidgetResizable(True)
                scroll.setFrameShape(QScrollArea.Shape.NoFrame)
                scroll.setWidget(widget)
                dock.setWidget(scroll)
            self.panels_menu.addAction(dock.toggleViewAction())
            dock.visibilityChanged.connect(partial(self._dock_visibility, dock))
        self.panels_menu.addAction(self.wl_bar.toggleViewAction())
        left = [d for d in self.docks()
                if self.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        right = [d for d in self.docks()
                 if self.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea]
        for group in (left, right):
            if group:
                self.resizeDocks(group, [DOCK_WIDTH_PX] * len(group), Qt.Orientation.Horizontal)

    def _route_keys(self) -> None:
        """Undo/redo go to the document (segmentation), never to a number field's own text
        undo; after a menu closes, the keyboard returns to the view last used (so a letter key
        is a view key, not a menu mnemonic)."""
        from PySide6.QtWidgets import QApplication, QMenu

        self._key_router = _UndoRouter(self)
        QApplication.instance().installEventFilter(self._key_router)
        for menu in self.menuBar().findChildren(QMenu):
            menu.aboutToHide.connect(lambda: QTimer.singleShot(0, self._refocus_view))

    def _refocus_view(self) -> None:
        from PySide6.QtWidgets import QApplication

        focus = self.focusWidget()
        if QApplication.activeModalWidget() is None and (
                focus is None or focus is self.menuBar() or focus is self):
            self.active_view().setFocus(Qt.FocusReason.OtherFocusReason)

    @staticmethod
    def _dock_visibility(dock: QDockWidget, visible: bool) -> None:
        """A dock's tab was raised (shown) or put behind another (hidden): its panel too."""
        scroll = dock.widget()
        inner = scroll.widget() if isinstance(scroll, QScrollArea) else None
        if inner is not None and inner.isHidden() == visible:
            inner.setVisible(visible)

    def _sync_docks(self) -> None:
        """Hide the panel of a dock parked behind another dock's tab (Qt keeps such docks
        "visible" off screen), show it again when its tab is raised: panels then do their
        work (distance maps, plug-in runs) only when the user looks at them."""
        if not self.isVisible():
            return
        for dock in self.docks():
            scroll = dock.widget()
            inner = scroll.widget() if isinstance(scroll, QScrollArea) else None
            if inner is None or dock.isFloating():
                continue
            shown = dock.isVisible() and not (self.tabifiedDockWidgets(dock)
                                              and dock.visibleRegion().isEmpty())
            if inner.isHidden() == shown:
                inner.setVisible(shown)

    # ------------------------------------------------------------------ remembered state
    def _restore_window_state(self) -> None:
        """Bring back the window geometry, docks, layout and splitter sizes of the last run."""
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self._fit_into_screen()
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state, STATE_VERSION)
        raw = self.settings.value("window/views")
        try:
            views = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            views = None
        if isinstance(views, dict):
            self.view_grid.restore_state(views)
            self.set_layout(self.view_grid.layout_name)

    def _fit_into_screen(self) -> None:
        """A geometry remembered on a bigger screen is shrunk to this one."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None and (self.width() > screen.width()
                                   or self.height() > screen.height()):
            self.resize(min(self.width(), screen.width()), min(self.height(), screen.height()))
            self.move(screen.topLeft())

    def save_window_state(self) -> None:
        """Remember geometry, docks, layout and splitter sizes for the next run."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.setValue("window/views", json.dumps(self.view_grid.state()))
        self.settings.sync()

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

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

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
        self.set_twin(twin, case_path=None, window=opened.window)

    def _case_opened(self, path: Path, opened: case_io.OpenedTwin) -> None:
        self.set_twin(opened.twin, case_path=path, window=opened.window)

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

    # ------------------------------------------------------------------ the twin
    def set_twin(self, twin: Twin | None, *, case_path: Path | None = None,
                 dirty: bool = False, window: tuple[float, float] | None = None) -> None:
        """Show ``twin`` in every view and panel; build its 3D scene in a worker.

        ``window`` (centre, width) is the default display window when already computed (the
        open jobs compute it in their worker); otherwise it is computed here.
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
        for view in self.slice_views.values():
            view.set_twin(twin, window=window)
        self.wl_bar.set_volume(None if twin is None else twin.image)
        self.wl_bar.show_window(*self.slice_views["axial"].window)
        self._fill_wl_menu()
        self.warning_banner.set_warnings([] if twin is None else list(twin.image.warnings))
        self.view3d.set_image(None if twin is None else twin.image)
        self.structures_panel.set_twin(twin)
        self._update_title()
        if twin is None:
            return
        self._bridge = TwinEventBridge(twin, self)
        self._bridge.event.connect(self._twin_event)
        self._sync_docks()  # panels behind a tab stay idle on the new case
        for warning in twin.image.warnings:
            self.statusBar().showMessage(f"Import warning: {warning}", 15000)
        self.case_loaded.emit(twin)
        self._start_scene(twin)

    def _start_scene(self, twin: Twin) -> None:
        """Build the 3D display copies (volume, surfaces with normals) in one worker job."""

        def done(scene) -> None:
            if twin is self.twin:
                self.view3d.set_scene(scene, twin.structures, modality=twin.image.modality)
                self._display_made.update(scene.made)

        self.runner.submit("Preparing 3D view", partial(case_io.scene_3d, twin),
                           on_done=done, on_error=self.report_error)

    def _start_surfaces(self, names: list[str] | None) -> None:
        twin = self.twin
        if twin is None or not len(twin.segmentation):
            return
        self.runner.submit("Building surfaces",
                           partial(case_io.scene_3d, twin, names=names, with_volume=False),
                           on_done=partial(self._surfaces_ready, twin),
                           on_error=self.report_error)

    def _surfaces_ready(self, twin: Twin, scene) -> None:
        if twin is self.twin:
            self.view3d.set_surfaces(scene.surfaces, twin.structures)
            self._display_made.update(scene.made)

    def queue_surfaces(self, name: str) -> None:
        """Re-mesh only structure ``name`` in a worker soon; quick successive edits coalesce."""
        self._pending_surfaces.add(name)
        self._surface_timer.start()

    def _flush_surfaces(self) -> None:
        twin = self.twin
        names = [n for n in sorted(self._pending_surfaces)
                 if twin is not None and n in twin.segmentation.names()]
        self._pending_surfaces.clear()
        if not names:
            return
        serial = max(self._surface_serials.values(), default=0) + 1
        self._surface_serials.update(dict.fromkeys(names, serial))
        self.runner.submit("Updating surfaces",
                           partial(case_io.scene_3d, twin, names=names, with_volume=False),
                           on_done=partial(self._edited_surfaces_ready, twin, serial),
                           on_error=self.report_error)

    def _edited_surfaces_ready(self, twin: Twin, serial: int, scene) -> None:
        """Show re-meshed surfaces unless the twin changed or a newer edit superseded them."""
        if twin is not self.twin:
            return
        fresh = {n: m for n, m in scene.surfaces.items()
                 if self._surface_serials.get(n) == serial and n in twin.segmentation.names()}
        if fresh:
            self.view3d.set_surfaces(fresh, twin.structures)
            self._display_made.update({n: m for n, m in scene.made.items() if n in fresh})

    def _build_segment_dock(self) -> None:
        """The Segment dock with its Edit/Segment menus and File import/export (issue 4)."""
        from surgiplan.ui.segment_panel import install_segment_panel

        self.segment_panel = install_segment_panel(self)

    def _build_planning_dock(self) -> None:
        """The Planning dock (trajectories, issue 5) and its probe's-eye dock."""
        from surgiplan.ui.planning_panel import install_planning

        self.planning_panel = install_planning(self)

    def _build_measurements_dock(self) -> None:
        """The Measure dock: rulers, angles, ROI statistics (issue 14)."""
        from surgiplan.ui.measurements import install_measurements

        self.measurements_panel = install_measurements(self)

    def _build_report_menu(self) -> None:
        """File > Export report... (the plan report PDF, issue 7)."""
        from surgiplan.ui.report.export import install_report_action

        install_report_action(self)

    def _build_training_menu(self) -> None:
        """The Training menu and dock for residents' exercises (issue 7)."""
        from surgiplan.ui.training_mode import install_training

        install_training(self)

    def _build_rehearsal_dock(self) -> None:
        """The Rehearse dock: implant, ablation and resection panels (issue 6)."""
        from surgiplan.ui.rehearsal_panels import install_rehearsals

        install_rehearsals(self)

    def _build_plans_dock(self) -> None:
        """The Plans dock: candidate plans, comparison, OR review (issue 7)."""
        from surgiplan.ui.plans_panel import install_plans_panel

        self.plans_panel = install_plans_panel(self)

    def _finish_loading(self) -> None:
        """Every job of an open is done (image shown, surfaces and 3D volume built)."""
        if self._loading:
            self._loading = False
            QTimer.singleShot(0, self.ready.emit)

    def _twin_event(self, name: str, payload: dict) -> None:
        structure = payload.get("name")
        if name == "structure_properties_changed":
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

    # ------------------------------------------------------------------ view linking
    def _slice_image(self, plane: Plane):
        """The displayed image of a slice view (for the 3D slice planes), or None."""
        view = self.slice_views[plane.value]
        rgb = view.slice_rgb()
        return None if rgb is None else (rgb, view.mapping, view.slice_index)

    def set_cursor(self, point_lps: np.ndarray) -> None:
        """Move the linked crosshair in every view to an LPS point (mm)."""
        for view in self.slice_views.values():
            view.set_cursor(point_lps)
        self.view3d.set_cursor(point_lps)

    def set_window_level(self, center: float, width: float) -> None:
        """Show the window ``(center, width)`` (bounded to the data) in every slice view."""
        for view in self.slice_views.values():
            if view.window != (center, width):
                view.set_window(center, width)
        self.wl_bar.show_window(*self.slice_views["axial"].window)
        self.view3d.refresh_planes()

    def apply_preset(self, number: int) -> None:
        """Apply preset ``number`` of the volume's modality (0: the default window)."""
        self.slice_views["axial"].apply_preset(number)

    def set_overlay_style(self, opacity: float, outline: bool) -> None:
        for view in self.slice_views.values():
            view.set_overlay_style(opacity=opacity, outline=outline)
        self.view3d.refresh_planes()

    def set_layout(self, name: str) -> None:
        self.view_grid.set_layout(name)
        if name in self.layout_actions:
            self.layout_actions[name].setChecked(True)

    def set_slice_tool(self, tool) -> None:  # SliceTool | None (see slice_tools.py)
        """Give left-button interaction in every slice view to ``tool`` (None: window/level)."""
        for view in self.slice_views.values():
            view.set_tool(tool)

    def reset_views(self) -> None:
        for view in self.slice_views.values():
            view.reset_view()

    def active_view(self) -> QWidget:
        focus = self.focusWidget()
        for view in [*self.slice_views.values(), self.view3d]:
            if focus is not None and (focus is view or view.isAncestorOf(focus)):
                return view
        visible = self.view_grid.visible_views()
        return self.view_grid.views[visible[0]]

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
        from surgiplan.ui.save_conflict import save_failed

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
        from surgiplan.ui.display_meshes import display_cache_entries

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

    # ------------------------------------------------------------------ screenshots
    def grab_view(self, view: QWidget) -> QImage:
        if view is self.view3d:
            return self.view3d.grab_image()
        return view.grab().toImage()

    def grab_window(self) -> QImage:
        """The whole window as an image (the 3D view's OpenGL content included)."""
        self.view3d.plotter.render()
        return self.grab().toImage()

    def save_screenshot(self, path: str | Path, *, whole_window: bool = True) -> Path:
        path = Path(path)
        image = self.grab_window() if whole_window else self.grab_view(self.active_view())
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            from surgiplan.errors import BadInputError

            raise BadInputError("cannot write the screenshot", path=path,
                                action="choose a writable folder and a .png name")
        return path

    def choose_screenshot(self, *, whole_window: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "surgiplan.png",
                                              "PNG images (*.png)")
        if path:
            try:
                self.save_screenshot(path, whole_window=whole_window)
            except Exception as exc:
                self.report_error(exc)

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

    def closeEvent(self, event) -> None:
        from surgiplan.ui.rehearsal_panels import confirm_unsaved_rehearsals

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

    def _save_before_close(self) -> bool:
        from surgiplan.ui.save_conflict import save_blocking

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
