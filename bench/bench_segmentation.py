"""Segmentation: undo memory of 50 brush strokes and region-grow preview latency (abdomen CT).

* ``undo memory, 50 strokes``: memory added (tracemalloc, MB) by 50 brush strokes of 10
  sphere dabs (5 mm radius) each, all kept undoable. Goal < 100 MB (issue 4; Slicer #6982).
  Ratio detail: a full-copy undo (one label-layer copy per stroke) would hold 50 x 35 MB.
* ``region-grow preview``: latency of one live preview update (s, goal 0.5 s), with the ratio
  to SimpleITK's ConnectedThreshold on the whole volume (the bare call) in the detail.
* ``stroke vs bare numpy``: time of one undoable dab / time of the bare numpy sphere write.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np

SCAN = Path(__file__).resolve().parents[2] / "shared" / "scans" / "abdomen-ct-contrast"


def _twin():
    from surgiplan.io.twin_build import load_image
    from surgiplan.twin import Twin

    twin = Twin(load_image(SCAN))
    twin.add_structure("paint", np.zeros(twin.geometry.shape_zyx, bool), role="target")
    return twin


def _strokes(twin, editor, n_strokes: int = 50, dabs: int = 10) -> float:
    g = twin.geometry
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(n_strokes):
        start = g.index_to_lps(rng.uniform([100, 150, 20], [400, 350, 110]))
        with editor.stroke("paint"):
            for d in range(dabs):
                editor.paint("paint", start + np.array([3.0 * d, 0, 0]), 5.0)
    return (time.perf_counter() - t0) / (n_strokes * dabs)


def _bare_dab_seconds(twin) -> float:
    from surgiplan.segmentation.brush import sphere_region

    layer = twin.segmentation.layers[0]
    g = twin.geometry
    t0 = time.perf_counter()
    for d in range(200):
        region = sphere_region(g, g.index_to_lps([200 + d % 50, 250, 60]), 5.0)
        layer[region.box][region.mask] = 1
    return (time.perf_counter() - t0) / 200


def _preview(twin) -> tuple[float, float, bool]:
    import SimpleITK as sitk

    from surgiplan.segmentation.region_grow import RegionGrowPreview

    g = twin.geometry
    aorta = g.index_to_lps([283, 262, 70])
    preview = RegionGrowPreview(twin.image.array, g, budget_s=0.4)
    preview.update([aorta])  # warm up
    times = []
    for _ in range(3):
        result = preview.update([aorta])
        times.append(result.seconds)
    lower, upper = 120.0, 400.0
    image = g.to_sitk(twin.image.array)
    t0 = time.perf_counter()
    sitk.ConnectedThreshold(image, seedList=[(283, 262, 70)], lower=lower, upper=upper)
    bare = time.perf_counter() - t0
    return float(np.median(times)), bare, result.complete


def run() -> list[dict]:
    if not SCAN.is_dir():
        return [{"name": "segmentation (skipped)", "value": 0.0, "unit": "",
                 "goal": None, "detail": f"{SCAN} is absent"}]
    from surgiplan.segmentation.editor import SegmentEditor

    twin = _twin()
    editor = SegmentEditor(twin)
    twin.voxel_count("paint")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    per_dab = _strokes(twin, editor)
    added_mb = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    full_copy_mb = 50 * twin.segmentation.layers[0].nbytes / 2**20
    bare_dab = _bare_dab_seconds(twin)
    preview_s, bare_s, complete = _preview(twin)
    return [
        {"name": "undo memory, 50 brush strokes", "value": added_mb, "unit": " MB",
         "goal": 100.0, "detail": f"history {editor.history.nbytes / 2**20:.2f} MB; full-copy "
         f"undo would hold {full_copy_mb:.0f} MB"},
        {"name": "undoable dab vs bare numpy write", "value": per_dab / bare_dab, "unit": "x",
         "goal": 10.0, "detail": f"{per_dab * 1e3:.2f} ms vs {bare_dab * 1e3:.2f} ms per dab"},
        {"name": "region-grow preview latency", "value": preview_s, "unit": " s", "goal": 0.5,
         "detail": f"{preview_s / bare_s:.2f}x the bare whole-volume ConnectedThreshold "
         f"({bare_s:.2f} s); complete={complete}"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
