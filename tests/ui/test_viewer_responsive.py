"""The GUI thread stays responsive while a saved case reopens (issue 14, the stall benchmark's
CI check).

A 5 ms heartbeat timer ticks on the GUI thread while the head phantom case (180x220x190, eight
structures, surfaces meshed in a worker) opens until its 3D view has drawn every surface. What
is bounded is the GUI thread's own CPU time between two ticks (``time.thread_time``): the work
the app does in one event-loop turn. Waiting for a core (other jobs on the machine) or for the
GIL is not counted, so the check holds on a loaded machine. Drawing 3D frames (VTK's render,
timed by its Start/End events) is left out: on a software OpenGL its first frames compile
shaders, whose cost depends on Mesa's shader cache (the tests' cache folder starts empty). The
wall-clock stall on the abdomen CT, 3D frames included, is ``bench/bench_gui.py --reopen``
(goal 100 ms, reported with the load average).
"""

from __future__ import annotations

import shutil
import sys
import time

from PySide6.QtCore import QTimer

from tests.ui.conftest import wait_ready

# Loose: one slice-view paint is a few ms, the busiest turn (the case shown in every view and
# panel) ~20-60 ms; a whole-volume pass, a meshing step or a first import of a big module
# on the GUI thread costs hundreds.
GUI_TURN_CPU_MS = 150.0
WARM_MODULES = ("pyvista", "surgiplan.io.bundle", "surgiplan.segmentation.editor")


def _idle(qtbot, window) -> None:
    """As a user finds it: window shown, 3D render window made, warm-up imports done."""
    qtbot.waitUntil(lambda: window.view3d._plotter is not None, timeout=20_000)
    qtbot.waitUntil(lambda: all(m in sys.modules for m in WARM_MODULES) and window.runner
                    .is_idle(), timeout=60_000)
    qtbot.wait(200)


def test_reopening_a_case_keeps_every_gui_turn_short(qtbot, window, head_sample, tmp_path):
    case = tmp_path / "head.surgiplan"
    shutil.copyfile(head_sample / "head.surgiplan", case)
    _idle(qtbot, window)
    turns: list[tuple[float, float, float]] = []  # per gap: work ms, 3D drawing ms, wall ms
    last = [time.thread_time(), time.perf_counter(), 0.0]
    drawing = [0.0, None]  # CPU s spent drawing 3D frames so far, start of the current one

    def tick() -> None:
        cpu, now = time.thread_time(), time.perf_counter()
        frames = drawing[0] - last[2]
        turns.append((1000 * (cpu - last[0] - frames), 1000 * frames, 1000 * (now - last[1])))
        last[:] = [cpu, now, drawing[0]]

    drawn: list[bool] = []

    def frame_start(*_args) -> None:
        drawing[1] = time.thread_time()

    def frame_end(*_args) -> None:
        if drawing[1] is not None:
            drawing[0] += time.thread_time() - drawing[1]
            drawing[1] = None
        twin = window.twin
        if twin is not None and set(window.view3d.surface_names()) >= set(
                twin.segmentation.names()):
            drawn.append(True)

    render_window = window.view3d.plotter.render_window
    observers = [render_window.AddObserver("StartEvent", frame_start),
                 render_window.AddObserver("EndEvent", frame_end)]
    timer = QTimer(interval=5)
    timer.timeout.connect(tick)
    last[:] = [time.thread_time(), time.perf_counter(), 0.0]
    timer.start()
    try:
        wait_ready(qtbot, window, lambda: window.open_path(case), timeout=120_000)
        qtbot.waitUntil(lambda: bool(drawn), timeout=30_000)  # 3D drawn with every surface
        qtbot.wait(100)
    finally:
        timer.stop()
        for observer in observers:
            render_window.RemoveObserver(observer)
    assert len(turns) > 20, "the heartbeat never ran"
    assert drawing[0] > 0, "no 3D frame was timed"
    busiest = sorted(turns, reverse=True)[:5]
    assert busiest[0][0] < GUI_TURN_CPU_MS, (
        f"GUI-thread work per event-loop turn while reopening, busiest [work CPU ms, 3D frame "
        f"CPU ms, wall ms]: {[tuple(round(x) for x in t) for t in busiest]}")
