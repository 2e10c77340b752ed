"""The desktop app survives hostile third-party simulators chosen in the planning panel (its
warm-up runs them at once): a segfault and a GIL-holding hang each end in a FAILED message
naming the plug-in, the window keeps handling events, and the bundled simulator still works.

Run under a real X server: ``xvfb-run -a -s "-screen 0 1600x1000x24" pytest tests/reliability``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer

from surgiplan.simulation import discover
from surgiplan.simulation.result import Level
from surgiplan.ui.plan import planning_panel
from tests.ui.conftest import fail_on_leaked_windows, window  # noqa: F401
from tests.ui.test_planning_panel import (
    ENTRY_SAFE,
    TARGET_LPS,
    open_planning,
    place,
)

WARM_UP_S = 3.0


def test_hostile_simulators_in_the_planning_panel_leave_the_app_running(
        qtbot, window, hostile_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(planning_panel, "WARM_UP_TIMEOUT_S", WARM_UP_S)
    panel = open_planning(qtbot, window, discover())
    panel.select_simulator("hostile-segfault")
    qtbot.waitUntil(lambda: "SIGSEGV" in panel.status_label.text(), timeout=30_000)
    text = panel.status_label.text()
    assert text.startswith("FAILED") and "hostile-segfault" in text and "\n" not in text
    place(panel, ENTRY_SAFE, TARGET_LPS)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.result.ok
                    and "SIGSEGV" in panel.result.error, timeout=30_000)

    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(50)
    panel.uncertainty_form.set_values({"timeout_s": 1.0})  # for the full run after warm-up
    panel.select_simulator("hostile-gil-hang")
    qtbot.waitUntil(lambda: "did not finish" in panel.status_label.text(), timeout=30_000)
    timer.stop()
    assert "hostile-gil-hang" in panel.status_label.text()
    assert len(ticks) >= WARM_UP_S / 0.05 / 4, "the GUI froze while the plug-in hung"

    panel.select_simulator("trajectory")  # the bundled simulator still works
    qtbot.waitUntil(panel.is_prepared, timeout=30_000)
    place(panel, ENTRY_SAFE, TARGET_LPS)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.ok, timeout=30_000)
    assert panel.result.level("vessel").level is Level.SAFE
