"""Acceptance screenshot of issue 5 on the real head MR: a deep target gets ranked entries and a
skin risk heat-map in the app.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/screenshot_planning_mr.py \
        [--out DIR]

Steps: open /work/shared/scans/head-mr-t1-mprage; the "mr-head" preset gives head (skin) and
brain; the lateral ventricles are the two largest dark (< 0.6 x the brain's Otsu level)
components of the brain shrunk by 15 mm, marked critical with a 2 mm margin; the target is a
point deep in the brain (nearest the brain's centroid, 5-7 mm off the ventricles).
The app then searches the safest entries, previews the best one (full Monte Carlo) and saves
``planning_mr_window.png`` (whole window) and ``planning_mr_3d.png`` (3D view) in DIR.
Prints the search figures. Not a ``bench_*`` module: it measures nothing against a baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SCAN = Path("/work/shared/scans/head-mr-t1-mprage")


def build_twin():
    """The MR twin with head (skin), brain (organ) and ventricles (critical, 2 mm margin)."""
    from surgiplan.segmentation.morphology import shrink_mask
    from surgiplan.segmentation.presets import apply_preset
    from surgiplan.segmentation.threshold import otsu_threshold
    from surgiplan.ui.data import case_io

    scan = case_io.scan_folder(SCAN)
    opened = case_io.open_series(case_io.choose_series(scan, path=SCAN))
    twin = opened.twin
    apply_preset(twin, "mr-head")
    image, geometry = twin.image.array, twin.geometry
    brain = twin.segmentation.mask("brain")
    dark = shrink_mask(brain, geometry, 15.0) & (image < 0.6 * otsu_threshold(image,
                                                                              within=brain))
    labels, n = ndimage.label(dark)
    sizes = ndimage.sum(dark, labels, range(1, n + 1))
    keep = [int(i) + 1 for i in np.argsort(sizes)[::-1][:2] if sizes[i] > 500]
    ventricles = np.isin(labels, keep)
    twin.add_structure("ventricles", ventricles, role="critical", margin_mm=2.0,
                       color=(0.2, 0.5, 1.0))
    return twin, opened.window


def deep_target(twin) -> np.ndarray:
    """The point 5-7 mm off the ventricles nearest the brain's centroid (LPS mm)."""
    geometry = twin.geometry
    brain = twin.segmentation.mask("brain")
    centre = geometry.index_to_lps(np.array(ndimage.center_of_mass(brain)[::-1]))
    dist = twin.signed_distance_mm("ventricles")
    ok = (dist >= 5.0) & (dist <= 7.0) & brain
    k, j, i = np.nonzero(ok)
    points = geometry.index_to_lps(np.stack([i, j, k], axis=1).astype(float))
    return points[np.argmin(np.linalg.norm(points - centre, axis=1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/surgiplan-planning-mr"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QDockWidget, QScrollArea

    from surgiplan.simulation import discover
    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    twin, window_level = build_twin()
    target = deep_target(twin)
    print(f"twin built in {time.perf_counter() - t0:.1f} s; ventricles "
          f"{twin.volume_ml('ventricles'):.1f} ml; target LPS {np.round(target, 1)}")
    app = QApplication.instance() or QApplication([])
    win = MainWindow(settings=QSettings(str(args.out / "settings.ini"),
                                        QSettings.Format.IniFormat),
                     autosave=Autosave(args.out / "autosave"))
    win.resize(1600, 1000)
    win.show()

    def wait(condition, timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while not condition():
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what}")

    win._loading = True
    win.set_twin(twin, window=window_level)
    wait(lambda: win.runner.is_idle() and not win._loading, 120, "the case to load")
    panel = win.planning_panel
    panel.set_entries(discover())
    panel.select_simulator("trajectory")
    win.planning_dock.raise_()
    wait(panel.is_prepared, 120, "the distance maps")
    panel.plan.set_point("target", target)
    panel.search_form.set_values({"max_length_mm": 100.0, "max_angle_deg": 30.0, "top_k": 8})
    panel.start_search()
    wait(lambda: panel.search_result is not None, 120, "the search")
    result = panel.search_result
    print(f"search: {result.n_candidates} entries in {result.time_s:.2f} s, "
          f"{result.n_feasible} feasible, Pareto front {len(result.pareto)}, rejected "
          f"{result.rejected}")
    for c in result.candidates:
        print(f"  #{c.rank} entry {np.round(c.entry_lps, 1)} clearance {c.clearance_mm:.1f} mm "
              f"risk {c.risk:.3f} length {c.length_mm:.1f} mm angle {c.angle_deg:.1f} deg"
              f"{' pareto' if c.pareto else ''}")
    if not result.candidates:
        print("no feasible candidate")
        return 1
    panel.candidates_table.selectRow(0)
    panel.pin_selected()
    wait(lambda: panel._mc_job is None and panel.result is not None
         and panel.result.provenance is not None and panel.result.provenance.samples > 0,
         60, "the Monte Carlo run")
    lv = panel.result.level("ventricles")
    print(f"best entry: ventricles {lv.level}, min distance {lv.min_distance_mm:.1f} mm, "
          f"P(breach) {lv.breach_probability:.3f}")
    for name in ("dock_data", "dock_segment"):
        dock = win.findChild(QDockWidget, name)
        if dock is not None:
            dock.hide()
    win.probe_dock.hide()
    panel.findChild(QScrollArea).ensureWidgetVisible(panel.candidates_table)
    win.set_cursor(target)
    entry = np.asarray(result.candidates[0].entry_lps)
    win.view3d.set_standard_view("anterior")
    camera = win.view3d.plotter.renderer.GetActiveCamera()
    focal = np.asarray(camera.GetFocalPoint())
    outward = (entry - target) / np.linalg.norm(entry - target)
    camera.SetPosition(*(focal + outward * np.linalg.norm(camera.GetPosition() - focal)))
    camera.SetViewUp(0, 0, 1) if abs(outward[2]) < 0.9 else camera.SetViewUp(0, -1, 0)
    win.view3d.plotter.renderer.ResetCameraClippingRange()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    win.save_screenshot(args.out / "planning_mr_window.png")
    win.view3d.grab_image().save(str(args.out / "planning_mr_3d.png"))
    win.probe_dock.show()
    panel.probe.set_depth(panel.probe.length_mm() * 0.8)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)
    panel.probe.grab().save(str(args.out / "planning_mr_probe.png"))
    print(f"screenshots in {args.out} ({time.perf_counter() - t0:.1f} s)")
    win.dirty = False
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
