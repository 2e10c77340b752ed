"""DICOM import: our scan + checked load against bare SimpleITK and a raw read of the bytes.

A 512x512x300 CT series is written with ``write_series`` into a temporary folder; every side
reads the same (page-cached) files, best of a few repeats.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.timing import best_time

SHAPE = (300, 512, 512)  # (nz, ny, nx)
REPEATS = 3
ROOT = Path(__file__).resolve().parents[1]

PEAK_SCRIPT = """
import json, sys, tracemalloc
from surgiplan.io.dicom_load import load_dicom
tracemalloc.start()
volume = load_dicom(sys.argv[1])
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"peak": peak, "nbytes": volume.nbytes}))
"""





def _best(fn, repeats: int = REPEATS) -> float:
    return best_time(fn, repeats)


def _write_phantom(folder: Path) -> list[Path]:
    from surgiplan.io.dicom_write import write_series
    from surgiplan.model.geometry import ImageGeometry
    from surgiplan.model.volume import ImageVolume

    nz, ny, nx = SHAPE
    rng = np.random.default_rng(0)
    zz, yy, xx = np.ogrid[:nz, :ny, :nx]
    body = ((yy - ny / 2) ** 2 + (xx - nx / 2) ** 2 < (0.45 * nx) ** 2) & (zz >= 0)
    hu = np.where(body, 40, -1000).astype(np.int16) + rng.integers(-20, 20, SHAPE,
                                                                    dtype=np.int16)
    geo = ImageGeometry((nx, ny, nz), (0.7, 0.7, 1.0), (-179.0, -179.0, -150.0))
    return write_series(ImageVolume(hu, geo, modality="CT"), folder)


def _sitk_load(folder: Path) -> None:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.Execute()


def _raw_read(paths: list[Path]) -> None:
    """Read every file's bytes and drop them (the buffer is reused: no first-touch cost)."""
    for p in paths:
        p.read_bytes()


def _raw_read_into_memory(paths: list[Path]) -> None:
    """Read every file's bytes into one fresh buffer: the least any loader must do, since it
    has to hold the data (this pays the first touch of every page, as a loader does)."""
    total = sum(p.stat().st_size for p in paths)
    view = memoryview(np.empty(total, np.uint8))
    offset = 0
    for p in paths:
        with open(p, "rb") as f:
            offset += f.readinto(view[offset:])


def _peak_ratio(folder: Path) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(folder)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["peak"] / data["nbytes"]


def run() -> list[dict]:
    from surgiplan.io.dicom_load import load_dicom
    from surgiplan.io.dicom_scan import scan_dicom

    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        folder = Path(tmp)
        paths = _write_phantom(folder)
        _raw_read(paths)  # warm the page cache for every side
        t_raw = _best(lambda: _raw_read(paths))
        t_raw_mem = _best(lambda: _raw_read_into_memory(paths))
        t_sitk = _best(lambda: _sitk_load(folder))
        t_ours = _best(lambda: load_dicom(folder))
        t_scan = _best(lambda: scan_dicom(folder), repeats=5)
        peak = _peak_ratio(folder)
    n = len(paths)
    size = "x".join(str(v) for v in SHAPE[::-1])
    return [
        {"name": "load_dicom vs SimpleITK ImageSeriesReader", "value": t_ours / t_sitk,
         "unit": "x", "goal": 1.0,
         "detail": f"{size} CT: ours {t_ours:.2f} s, SimpleITK {t_sitk:.2f} s"},
        {"name": "load_dicom vs raw read of the file bytes into memory", "value":
         t_ours / t_raw_mem, "unit": "x", "goal": 2.0,
         "detail": f"raw read into one buffer {t_raw_mem:.3f} s for {n} files"},
        {"name": "load_dicom vs raw read of the file bytes, discarded", "value": t_ours / t_raw,
         "unit": "x", "goal": None,
         "detail": f"raw read {t_raw:.3f} s (page cache to a reused buffer)"},
        {"name": "series scan per file", "value": 1000 * t_scan / n, "unit": "ms/file",
         "goal": 0.2, "detail": f"{n} files in {1000 * t_scan:.0f} ms (headers only)"},
        {"name": "peak memory of load_dicom vs volume bytes", "value": peak, "unit": "x",
         "goal": 2.5, "detail": "tracemalloc peak in a fresh process"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
