"""Acceptance screenshots of issue 6 on the real abdomen CT: a screw in a lumbar pedicle, an
ablation of a marked liver region and a liver resection, each run from the app and from the CLI
on the same case bundle.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/screenshot_rehearsals_ct.py \
        [--out DIR]

Case: /work/shared/scans/abdomen-ct-contrast with the "ct-bone-skin-vessels" preset (skin,
bone, vessels critical); "liver" (organ): soft tissue 90-190 HU (portal-phase liver) inside a
box in the right upper abdomen, opened by 2 voxels, the component holding a seed picked on the
axial images (slice 95, right upper abdomen), closed and hole-filled; "liver lesion" (target):
a 12 mm ball at the liver's deepest point. The screw: 6 x 40 mm in the left pedicle of the
lumbar vertebra at slice 44, placed by hand from the axial images (isthmus at column 280, row
285; 15 deg medial convergence). Saves implant/ablation/resection window screenshots and the
CLI JSON outputs in DIR. Not a ``bench_*`` module: it measures nothing against a baseline.

The window shows only the Rehearse dock (the four-up views get the room), the slice views are
zoomed on the rehearsal object and the 3D camera is framed on it (the panel's ``focus_3d``)
before each ``MainWindow.save_screenshot`` (which renders the 3D view first).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SCAN = Path("/work/shared/scans/abdomen-ct-contrast")
LIVER_SEED_KJI = (95, 255, 160)  # slice, row, column: right upper abdomen, ~140 HU
LIVER_BOX_KJI = ((60, 130, 60), (125, 360, 300))
LIVER_HU = (90.0, 190.0)
LESION_RADIUS_MM = 12.0
# left pedicle of the lumbar vertebra on slice 44 (column, row, slice), from the axial images
PEDICLE_ISTHMUS_CRK = (280.0, 285.0, 44.0)
CONVERGENCE_DEG = 15.0
SCREW = (6.0, 40.0)


def liver_mask(image: np.ndarray) -> np.ndarray:
    """The liver (see the module docstring)."""
    (k0, j0, i0), (k1, j1, i1) = LIVER_BOX_KJI
    box = np.zeros(image.shape, bool)
    box[k0:k1, j0:j1, i0:i1] = True
    soft = box & (image >= LIVER_HU[0]) & (image <= LIVER_HU[1])
    soft = ndimage.binary_opening(soft, iterations=2)
    labels, _ = ndimage.label(soft)
    k, j, i = LIVER_SEED_KJI
    near = labels[k - 1:k + 2, j - 8:j + 9, i - 8:i + 9]  # the seed may sit on a vessel
    if not near.any():
        raise RuntimeError("the liver seed is not in liver-like tissue")
    seed_label = np.bincount(near[near > 0]).argmax()
    liver = ndimage.binary_closing(labels == seed_label, iterations=2)
    return ndimage.binary_fill_holes(liver)


def build_case(out: Path) -> tuple[Path, dict]:
    """The case bundle (built once) and the placements (LPS mm)."""
    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.io.twin_build import build_twin

    path = out / "abdomen.surgiplan"
    if not path.exists():
        twin = build_twin(SCAN, preset="ct-bone-skin-vessels")
        geometry = twin.geometry
        liver = liver_mask(twin.image.array)
        depth = ndimage.distance_transform_edt(liver, sampling=geometry.spacing_mm[::-1])
        centre_kji = np.unravel_index(np.argmax(depth), depth.shape)
        centre = geometry.index_to_lps(np.array(centre_kji[::-1], float)[None])[0]
        k, j, i = np.indices(liver.shape)
        lps = geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
        lesion = (np.linalg.norm(lps - centre, axis=-1) <= LESION_RADIUS_MM) & liver
        twin.add_structure("liver", liver, role="organ", color=(0.75, 0.35, 0.3))
        twin.add_structure("liver lesion", lesion, role="target", margin_mm=0.0,
                           color=(1.0, 1.0, 0.0))
        save_bundle(twin, path)
    twin = load_bundle(path)
    return path, placements(twin)


def placements(twin) -> dict:
    g = twin.geometry
    col, row, k = PEDICLE_ISTHMUS_CRK
    isthmus = g.index_to_lps(np.array([[col, row, k]]))[0]
    a = np.radians(CONVERGENCE_DEG)
    forward = np.array([-np.sin(a), -np.cos(a), 0.0])  # anterior (-P) and medial (-L, left side)
    head = isthmus - 10.0 * forward
    tip = head + SCREW[1] * forward
    idx = np.argwhere(twin.segmentation.mask("liver lesion"))
    lesion = g.index_to_lps(idx.mean(0)[::-1][None])[0]
    probe_entry = lesion + 90.0 * np.array([-0.75, -0.55, 0.2]) / np.linalg.norm([-0.75, -0.55,
                                                                                  0.2])
    liver_idx = np.argwhere(twin.segmentation.mask("liver"))
    liver_centre = g.index_to_lps(liver_idx.mean(0)[::-1][None])[0]
    towards_entry = (probe_entry - lesion) / np.linalg.norm(probe_entry - lesion)
    return {"probe_tip": lesion - 19.0 * towards_entry, "screw_head": head, "screw_tip": tip,
            "lesion": lesion, "probe_entry": probe_entry,
            "liver_centre": liver_centre}


def fmt(p) -> str:
    return ",".join(f"{v:.2f}" for v in p)


def resection_plane(where: dict) -> tuple[np.ndarray, np.ndarray]:
    """The cut (point, unit normal towards the removed side; LPS mm): 10 mm beyond the lesion
    on the liver-centre side, removing the lesion's side."""
    normal = where["lesion"] - where["liver_centre"]
    normal = normal / np.linalg.norm(normal)
    return where["lesion"] - (LESION_RADIUS_MM + 10.0) * normal, normal


def run_cli(case: Path, where: dict, out: Path) -> dict:
    """The three ``surgiplan simulate`` commands on the case bundle (JSON saved in ``out``)."""
    exe = str(HERE.parent / ".venv" / "bin" / "surgiplan")
    plane_point, normal = resection_plane(where)
    commands = {
        "implant": ["implant", str(case), "--screw", f"{SCREW[0]:g}x{SCREW[1]:g}",
                    f"--entry={fmt(where['screw_head'])}", f"--target={fmt(where['screw_tip'])}"],
        "ablation": ["ablation", str(case), f"--tip={fmt(where['probe_tip'])}",
                     f"--entry={fmt(where['probe_entry'])}", "--device", "generic-microwave",
                     "--power", "100", "--time", "10", "--target", "liver lesion"],
        "resection": ["resection", str(case), "--organ", "liver", "--target", "liver lesion",
                      "--margin-mm", "10", f"--plane={fmt([*plane_point, *normal])}"],
    }
    results = {}
    for name, args in commands.items():
        started = time.perf_counter()
        done = subprocess.run([exe, "simulate", *args, "--json"], capture_output=True,
                              text=True, check=False)
        (out / f"cli_{name}.json").write_text(done.stdout or done.stderr)
        print(f"CLI {name}: exit {done.returncode} in {time.perf_counter() - started:.1f} s")
        if done.returncode != 0:
            print(done.stderr.strip())
            continue
        data = json.loads(done.stdout)
        results[name] = data
        keys = {"implant": ("breach_mm", "breach_medial_mm", "gertzbein_grade"),
                "ablation": ("coverage_pct", "min_margin_mm", "p_margin_ge_5mm"),
                "resection": ("resected_volume_ml", "remnant_volume_ml", "remnant_pct",
                              "margin_mm")}[name]
        metrics = data.get("metrics", data)
        print("   ", {k: v for k, v in (metrics.items() if isinstance(metrics, dict) else
                                        ((m["key"], m["value"]) for m in metrics))
                      if k in keys})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/rehearse/ct"))
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    case, where = build_case(args.out)
    print(f"case {case} ready in {time.perf_counter() - t0:.1f} s; "
          + "; ".join(f"{k} {np.round(v, 1)}" for k, v in where.items()))
    if not args.no_cli:
        run_cli(case, where, args.out)

    from PySide6.QtCore import QPointF, QSettings
    from PySide6.QtWidgets import QApplication, QDockWidget

    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

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

    def settle(panel, what: str) -> None:
        wait(lambda: not panel.is_running() and panel.result is not None
             and "Live" not in panel.status_label.text()
             and "Full run" not in panel.status_label.text(), 300, what)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        print(f"{what}: {panel.status_label.text()}")
        for m in panel.result.metrics[:8] if panel.result.ok else []:
            print(f"    {m.key} {m.structure or ''}: {m.value:.3g} {m.unit} ci95 {m.ci95}")

    started = time.perf_counter()
    win.open_path(case)
    wait(lambda: win.twin is not None and win.runner.is_idle(), 900, "the case to open")
    print(f"case open in the app after {time.perf_counter() - started:.1f} s")
    for dock in win.findChildren(QDockWidget):  # the four-up views get the room
        dock.setVisible(dock is win.rehearsal_dock)
    win.rehearsal_dock.raise_()
    shots = []

    def frame(panel, centre_lps, *, zoom: float, view3d: str) -> None:
        """Slice views zoomed on ``centre_lps``; the 3D view from ``view3d`` framed on the
        panel's object."""
        win.set_cursor(np.asarray(centre_lps, float))
        for view in win.slice_views.values():
            view.zoom, view.pan = zoom, QPointF(0.0, 0.0)
            at = view.lps_to_screen(np.asarray(centre_lps, float))
            view.pan = QPointF(view.width() / 2.0 - at.x(), view.height() / 2.0 - at.y())
            view.update()
        win.view3d.set_standard_view(view3d)
        if not panel.focus_3d():
            print(f"nothing to frame in 3D for {panel.kind}")
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)

    implant = win.implant_panel
    win.rehearsal_tabs.setCurrentWidget(implant)
    implant.ensure_simulator()
    implant.set_screw(where["screw_head"], where["screw_tip"], size_mm=SCREW)
    wait(lambda: implant._maps_ready, 300, "the implant grids")
    implant.rescore_live()
    print(f"implant live score {implant.live_ms:.2f} ms")
    implant.run_full()
    settle(implant, "implant")
    frame(implant, (where["screw_head"] + where["screw_tip"]) / 2.0, zoom=3.0,
          view3d="left")
    shots.append(win.save_screenshot(args.out / "rehearsal_implant.png"))

    ablation = win.ablation_panel
    win.rehearsal_tabs.setCurrentWidget(ablation)
    ablation.ensure_simulator()
    ablation.target_combo.setCurrentText("liver lesion")
    ablation.set_device("generic-microwave", 100.0, 10.0)
    ablation.set_probe(where["probe_tip"], where["probe_entry"])  # zone centre on the lesion
    settle(ablation, "ablation")
    frame(ablation, where["lesion"], zoom=2.0, view3d="anterior")
    shots.append(win.save_screenshot(args.out / "rehearsal_ablation.png"))

    resection = win.resection_panel
    win.rehearsal_tabs.setCurrentWidget(resection)
    resection.ensure_simulator()
    resection.organ_combo.setCurrentText("liver")
    resection.target_combo.setCurrentText("liver lesion")
    resection.set_plane(*resection_plane(where))  # the CLI's plane
    settle(resection, "resection")
    frame(resection, where["lesion"], zoom=1.3, view3d="anterior")
    shots.append(win.save_screenshot(args.out / "rehearsal_resection.png"))
    print("screenshots:", ", ".join(str(s) for s in shots))
    win.dirty = False
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
