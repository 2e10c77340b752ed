"""Background jobs: the work runs in a worker thread, its result and errors come back on the
GUI thread, and a job whose window is gone ends quietly."""

from __future__ import annotations

import threading

import pytest

from surgiplan.ui.widgets.jobs import JobRunner


def test_work_runs_in_a_worker_and_reports_on_the_gui_thread(qtbot):
    runner = JobRunner(max_threads=1)
    gui_thread = threading.get_ident()
    seen: list[tuple[str, int, int]] = []

    def work(progress=None, cancel=None) -> int:
        progress(0.5, "half")
        return threading.get_ident()

    def fail(progress=None, cancel=None) -> None:
        raise ValueError("bad input")

    runner.submit("ok", work, on_done=lambda worker: seen.append(
        ("done", worker, threading.get_ident())), on_error=pytest.fail)
    runner.submit("fails", fail, on_done=pytest.fail, on_error=lambda exc: seen.append(
        (str(exc), 0, threading.get_ident())))
    qtbot.waitUntil(runner.is_idle, timeout=5000)
    assert [s[0] for s in seen] == ["done", "bad input"]
    assert seen[0][1] != gui_thread, "the work ran in a worker thread"
    assert all(s[2] == gui_thread for s in seen), "callbacks run on the GUI thread"
