"""Anatomy presets on the real scans (issue 16): CPU time of each automatic preset.

Each row's value is the preset's CPU seconds (this process, all threads), which the load
of other processes does not stretch; the detail gives its wall seconds, the load average and
the ratio to the bare library filters it calls. Goal: <= 20 s on the 2-core machine.

* ``ct-spine preset, abdomen CT (CPU)``: ``preset_masks(volume, "ct-spine")`` on the
  512x512x134 abdomen CT; the baseline is one SimpleITK threshold, scipy's per-slice hole
  filling and 3D labelling of the bone, one SimpleITK marker watershed.
* ``ct-liver preset, abdomen CT (CPU)``: the same for ``ct-liver`` (liver, hepatic and portal
  veins, spleen, kidneys, gallbladder, aorta/IVC; it runs the spine's canal search for the
  great vessels' and kidneys' landmarks).
* ``mr-head preset, head MR (CPU)``: the ``mr-head`` preset on the 256x256x170 MPRAGE; the
  baseline is SimpleITK's Otsu threshold + binary fill.
* ``mr-head-planning preset, head MR (CPU)``: ``mr-head`` plus ventricles, orbits, face,
  sinuses and ears.

One preset: ``python -c "import bench.bench_anatomy as b; print(b.run(('ct-spine',)))"``
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

SCANS = Path(__file__).resolve().parents[2] / "shared" / "scans"


def _seconds(fn) -> tuple[float, float]:
    """(CPU seconds of this process, all threads; wall seconds) of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


def _bare_ct(volume) -> None:
    import SimpleITK as sitk
    from scipy import ndimage

    image = sitk.GetImageFromArray(volume.array)
    bone = sitk.GetArrayFromImage(sitk.BinaryThreshold(image, 180, 4000)).astype(bool)
    filled = np.stack([ndimage.binary_fill_holes(s) for s in bone])
    labels, _ = ndimage.label(filled)
    markers = sitk.GetImageFromArray((labels % 7).astype(np.uint16))
    sitk.MorphologicalWatershedFromMarkers(sitk.GetImageFromArray(
        (~filled).astype(np.uint8)), markers, markWatershedLine=False)


def _bare_mr(volume) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.array.astype(np.float32))
    head = sitk.OtsuThreshold(image, 0, 1)
    sitk.BinaryFillhole(head)


def run(only: tuple[str, ...] = ()) -> list[dict]:
    """One row per preset (``only``: just these presets): its CPU seconds (this process, all
    threads: what it costs whatever else runs; on an idle 2-core machine the wall time is at
    most about this), with the wall seconds, the 1-minute load average before and after (2
    cores: above ~2 the machine is shared and wall seconds stretch) and the ratio to the bare
    library filters' CPU seconds in the detail."""
    from surgiplan.io.twin_build import load_image
    from surgiplan.segmentation.presets import preset_masks

    rows = []
    for scan, preset, bare, label in (
            ("abdomen-ct-contrast", "ct-spine", _bare_ct, "abdomen CT"),
            ("abdomen-ct-contrast", "ct-liver", _bare_ct, "abdomen CT"),
            ("head-mr-t1-mprage", "mr-head", _bare_mr, "head MR"),
            ("head-mr-t1-mprage", "mr-head-planning", _bare_mr, "head MR")):
        if not (SCANS / scan).is_dir():
            continue
        if only and preset not in only:
            continue
        volume = load_image(SCANS / scan)
        load = os.getloadavg()[0]
        cpu, wall = _seconds(lambda v=volume, p=preset: preset_masks(v, p))
        base, base_wall = _seconds(lambda v=volume, b=bare: b(v))
        rows.append({"name": f"{preset} preset, {label} (CPU)", "value": cpu, "unit": " s",
                     "goal": 20.0, "detail": f"wall {wall:.1f} s; {cpu / base:.1f}x the bare "
                     f"library filters ({base:.1f} s CPU, {base_wall:.1f} s wall); load "
                     f"average {load:.1f} -> {os.getloadavg()[0]:.1f}"})
    return rows
