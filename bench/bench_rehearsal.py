"""Rehearsal drag latency in the app (issue 15, item 11), each with a bare-library baseline.

* ``trajectory drag re-score``: one drag frame in the Planning panel on the head phantom (the
  placement tool's ``set_point(dragging=True)``: live nominal score, tables, repaint requests,
  events processed), median over 20 frames; goal <= 30 ms. Baseline in the same run: the bare
  simulator ``run`` with 0 Monte Carlo samples on the same input.
* ``ablation drag re-score``: the same in the Ablation panel on the liver phantom (tumour 1);
  baseline: the panel's prepared live scorer alone (``live.score``). A drag frame draws the
  zone; the score runs in a worker (latest position wins), so a second row gives the time
  from the last frame to its numbers on screen.
* ``implant suggest``: the Implant panel's auto-suggest (L4 left, spine phantom) from the
  click to the suggested screw shown; baseline: the bare ``suggest_input`` call.
* ``Compare complete``: Compare of the head phantom's demo plans, from the call to every view
  holding the anatomy (surfaces reused from the main 3D view); goal <= 3 s; baseline: the bare
  ``compare_stored`` of the same plans.

Runs in-process: call under ``xvfb-run -a`` (or QT_QPA_PLATFORM=offscreen).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES = 20
GOAL_MS = 30.0
COMPARE_GOAL_MS = 3000.0


def _wait(app, condition, timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("bench: the app did not get ready in time")
        app.processEvents()
        time.sleep(0.01)


def _window(folder: Path):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, autosave=Autosave(folder / "autosave"))
    window.show()
    return app, window


def _show(app, window, twin) -> None:
    window._loading = True
    window.set_twin(twin)
    _wait(app, lambda: not window._loading)


def _frames(app, plan, which: str, base: np.ndarray, axis: np.ndarray) -> list[float]:
    times = []
    for n in range(FRAMES):
        started = time.perf_counter()
        plan.set_point(which, base + (1.0 + n % 5) * axis, dragging=True)
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def _row(name: str, times: list[float], baseline_ms: float, detail: str) -> dict:
    value = statistics.median(times)
    return {"name": name, "value": value, "unit": "ms", "goal": GOAL_MS,
            "detail": f"median of {len(times)} frames (max {max(times):.1f} ms); bare "
                      f"baseline {baseline_ms:.1f} ms ({value / max(baseline_ms, 1e-6):.1f}x); "
                      f"{detail}"}


def trajectory_row(app, window) -> dict:
    from surgiplan.phantoms import make_phantom
    from surgiplan.simulation import SimulationContext, UncertaintyModel, discover
    from surgiplan.twin import Twin

    volume, segmentation, _truth = make_phantom("head")
    _show(app, window, Twin(volume, segmentation))
    panel = window.planning_panel
    panel.set_entries(discover())
    window.planning_dock.raise_()
    _wait(app, panel.is_prepared)
    target, entry = np.array([-28.0, 20.0, 42.0]), np.array([-70.0, 12.0, 40.0])
    panel.plan.set_points(entry, target)
    _wait(app, lambda: panel._mc_job is None)
    times = _frames(app, panel.plan, "target", target, np.array([0.0, 0.0, 0.5]))
    sim, inputs = panel.entry().simulator, panel.inputs()
    context = SimulationContext(window.twin)
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        sim.run(context, inputs, panel.form.values(), uncertainty=UncertaintyModel(samples=0))
        bare.append((time.perf_counter() - started) * 1000.0)
    return _row("trajectory drag re-score (head phantom)", times, min(bare),
                "Planning panel, live nominal score per frame")


def ablation_row(app, window) -> dict:
    from surgiplan.phantoms import make_phantom
    from surgiplan.twin import Twin

    volume, segmentation, _truth = make_phantom("liver")
    _show(app, window, Twin(volume, segmentation))
    panel = window.ablation_panel
    window.rehearsal_dock.raise_()
    window.rehearsal_tabs.setCurrentWidget(panel)
    panel.ensure_simulator()
    panel.target_combo.setCurrentText("tumour 1")
    twin = window.twin
    idx = np.argwhere(twin.segmentation.mask("tumour 1")).mean(0)[::-1]
    centre = twin.geometry.index_to_lps(idx[None])[0]
    panel.set_probe(centre, centre + np.array([-60.0, 0.0, 0.0]))
    _wait(app, lambda: panel._live_ready and not panel.is_running(), timeout_s=300.0)
    times = _frames(app, panel.plan, "target", centre, np.array([-1.0, 0.0, 0.0]))
    inputs = panel.inputs()
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        panel.live.score(inputs)
        bare.append((time.perf_counter() - started) * 1000.0)
    rows = [_row("ablation drag re-score (liver phantom)", times, min(bare),
                 "Ablation panel, zone drawn per frame, score in a worker")]
    worker = getattr(panel, "_live_worker", None)
    if worker is not None:
        _wait(app, lambda: not worker.busy)
        rows.append({"name": "ablation drag: numbers after the last frame (liver phantom)",
                     "value": worker.last_ms or float("nan"), "unit": "ms", "goal": None,
                     "detail": f"worker, {worker.skipped} of {FRAMES} frames coalesced; bare "
                               f"scorer {min(bare):.1f} ms"})
    return rows


def suggest_row(app, window) -> dict:
    from surgiplan.phantoms import make_phantom
    from surgiplan.twin import Twin

    volume, segmentation, _truth = make_phantom("spine")
    _show(app, window, Twin(volume, segmentation))
    panel = window.implant_panel
    window.rehearsal_dock.raise_()
    window.rehearsal_tabs.setCurrentWidget(panel)
    panel.ensure_simulator()
    panel.vertebra_combo.setCurrentText("L4")
    panel.side_combo.setCurrentText("left")
    started = time.perf_counter()
    panel.suggest()
    _wait(app, lambda: "Suggested" in panel.suggest_label.text()
          or "FAILED" in panel.suggest_label.text(), timeout_s=300.0)
    value = (time.perf_counter() - started) * 1000.0
    bare_started = time.perf_counter()
    try:
        panel.simulator.suggest_input(panel.context, "L4", "left")
        bare = f"bare suggest_input {(time.perf_counter() - bare_started) * 1000.0:.0f} ms"
    except Exception as exc:  # the bench reports, it does not stop
        bare = f"bare suggest_input failed: {exc}"
    return {"name": "implant suggest (spine phantom, L4 left)", "value": value, "unit": "ms",
            "goal": None, "detail": f"click to screw shown ({panel.suggest_label.text()[:60]}); "
                                    f"{bare}"}


def compare_row(app, window) -> dict:
    from surgiplan.phantoms import make_phantom
    from surgiplan.plans import compare_stored
    from surgiplan.plans.demo import demo_plans
    from surgiplan.plans.store import store_in_twin
    from surgiplan.twin import Twin

    volume, segmentation, _truth = make_phantom("head")
    twin = Twin(volume, segmentation)
    plan_set, reason = demo_plans("head", twin)
    if reason:
        raise RuntimeError(f"bench: no demo plans ({reason})")
    store_in_twin(twin, plan_set)
    _show(app, window, twin)
    _wait(app, lambda: window.runner.is_idle(), timeout_s=300.0)  # the main 3D view's surfaces
    names = window.plans_panel.plans()
    started = time.perf_counter()
    compare = window.plans_panel.compare_selected([p.name for p in names[:2]])
    _wait(app, lambda: all(v._surface_actors for v in compare.views), timeout_s=300.0)
    value = (time.perf_counter() - started) * 1000.0
    compare.close()
    bare_started = time.perf_counter()
    compare_stored(names[:2])
    bare = (time.perf_counter() - bare_started) * 1000.0
    return {"name": "Compare complete (head phantom, 2 plans)", "value": value, "unit": "ms",
            "goal": COMPARE_GOAL_MS,
            "detail": f"call to every view filled; bare compare_stored {bare:.0f} ms"}


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        app, window = _window(Path(tmp))
        try:
            return [trajectory_row(app, window), *ablation_row(app, window),
                    suggest_row(app, window), compare_row(app, window)]
        finally:
            window.dirty = False
            window.ask_rehearsals_on_close = False
            window.close()


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']:.1f} {row['unit']} (goal {row['goal']}) — "
              f"{row['detail']}")
