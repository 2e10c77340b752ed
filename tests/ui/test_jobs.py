"""Background jobs: results arrive on the GUI thread; workers yield the CPU to the GUI."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from surgiplan.ui.widgets.jobs import WORKER_NICE, JobRunner


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux")
def test_worker_threads_run_at_lower_priority_and_report_on_the_gui_thread(qtbot):
    runner = JobRunner(max_threads=1)
    gui_thread = threading.get_ident()
    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    results: list[tuple[int, int]] = []

    def work(progress=None, cancel=None) -> int:
        assert threading.get_ident() != gui_thread
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    for _ in range(2):  # the second job reuses the thread: niced once, not twice
        runner.submit("nice", work, on_done=lambda nice: results.append(
            (nice, threading.get_ident())), on_error=pytest.fail)
        qtbot.waitUntil(runner.is_idle, timeout=5000)
    expected = min(gui_nice + WORKER_NICE, 19)
    assert [n for n, _ in results] == [expected, expected]
    assert all(t == gui_thread for _, t in results), "callbacks run on the GUI thread"
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui_nice
