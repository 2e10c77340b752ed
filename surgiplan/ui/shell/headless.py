"""What the command line starts without the interactive app: OR review mode on a saved case, and
the PDF report rendered in a private (possibly offscreen) window."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer

from surgiplan.errors import BadInputError
from surgiplan.ui.modes.review_mode import BANNER, ReviewWindow
from surgiplan.ui.report.export import export_report
from surgiplan.ui.shell.app import EXIT_BAD_INPUT, EXIT_OK, RENDER_SETTLE_MS, application
from surgiplan.ui.shell.autosave import Autosave
from surgiplan.ui.shell.main_window import MainWindow

LOAD_TIMEOUT_MS = 120_000


def run_review(path: str | Path, *, plan: str | None = None,
               screenshot: str | Path | None = None, exit_after: bool = False) -> int:
    """``surgiplan gui CASE --review``: open ``CASE`` read-only in review mode; exit code."""
    from surgiplan.plans import plan_set_of_twin
    from surgiplan.ui.data import case_io

    app = application()
    try:
        if path is None or not case_io.is_case_path(path):
            raise BadInputError("review mode opens a saved case (.surgiplan)", path=path,
                                action="save the case first, then open it with --review")
        opened = case_io.open_case(path)
        twin = opened.twin
        review = ReviewWindow(twin, plan_set_of_twin(twin).plans, plan=plan,
                              window=opened.window)
    except BadInputError as exc:
        print(f"surgiplan: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    review.setWindowTitle(f"SurgiPlan — {BANNER} — {Path(path).name}")
    review.showMaximized()

    def finish() -> None:
        if screenshot is not None:
            review.view3d.plotter.render()
            review.grab().save(str(screenshot))
            print(f"surgiplan: screenshot written to {screenshot}", flush=True)
        if exit_after:
            review.close()
            app.exit(EXIT_OK)

    if screenshot is not None or exit_after:
        review.runner.idle.connect(lambda: QTimer.singleShot(RENDER_SETTLE_MS, finish))
    code = app.exec()
    return EXIT_OK if exit_after else code


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
    from surgiplan.ui.report.offscreen import choose_platform, headless, offscreen_plotter
    from surgiplan.ui.shell.app import application
    from surgiplan.ui.shell.main_window import MainWindow
    from surgiplan.ui.views.view3d import View3D

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
