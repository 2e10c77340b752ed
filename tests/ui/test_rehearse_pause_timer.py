"""Drag frames that arrive slowly (a loaded machine) are no pause: the 3D scene waits for a real
pause instead of rendering (~0.5 s) in the middle of a drag (issue 15, item 11)."""

from __future__ import annotations

import time

from surgiplan.ui.plan.planning_panel import MAX_DEFER_MS, SCENE_DEFER_MS, PauseTimer


def test_pause_timer_adapts_to_the_frame_rate(qapp):
    timer = PauseTimer()
    for _ in range(4):  # fast frames (a free machine): the short pause
        timer.start()
        time.sleep(0.01)
    assert timer.interval() == SCENE_DEFER_MS
    for _ in range(6):  # a frame every 100 ms: four gaps must pass first
        timer.start()
        time.sleep(0.1)
    assert 350 <= timer.interval() <= 600
    time.sleep(MAX_DEFER_MS / 1000.0 + 0.05)  # a long pause starts afresh
    timer.start()
    assert timer.interval() == SCENE_DEFER_MS
    timer.stop()
