"""Peak memory (RSS) and time of opening and planning on a big CT case, against budgets.

Peaks are counted beyond the same job's peak on a tiny case (the interpreter, Qt/VTK and the
plug-ins cost about the same whatever the case), per byte of the image.

* open: what the app runs in its workers to open a case (``case_io.open_case`` then the 3D
  scene), on a generated 512x512x800 int16 CT with 4 structures; goal: peak <= 3x the image
  bytes;
* simulate / plan-path: ``surgiplan simulate trajectory`` and ``surgiplan plan-path`` on that
  case; goal: peak <= 3x the image bytes (distance maps only near each structure, float32);
* 100 critical structures: ``surgiplan simulate trajectory`` on the head phantom with 100 small
  critical structures added; goal: peak <= 3x the image bytes plus the label layers. The head
  image is small (14 MiB), so this row is dominated by what the head run costs whatever its
  structures (its baseline, the tiny case, has the entry off the image: no skin mesh, no VTK
  path); the next row isolates the structures' own cost:
* 100 critical structures, added: that run's peak minus the same run's on the head phantom
  without them, per head image byte; goal: <= 1x (each structure's maps are kept near it and
  the map cache is bounded, so 100 structures cost about what one does).

Label layers are held as crops (the box of their labelled voxels, ``LabelLayer``), and
``plan-path`` reads no image voxel (``load_bundle(lazy_image=True)``).

Every figure is measured in a fresh process (``ru_maxrss`` of the child). The case is generated
once into ``$SURGIPLAN_BENCH_CACHE`` (default: a temporary folder, removed afterwards).

    .venv/bin/python bench/run.py memory
    .venv/bin/python bench/bench_memory.py [--size 512,512,800] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SURGIPLAN = [sys.executable, "-m", "surgiplan"]
BUDGET_FACTOR = 3.0
TARGET_LPS = (0.0, 40.0, 0.0)


def _measure(argv: list[str]) -> tuple[float, float, int]:
    """Run ``argv`` in a helper process; (peak RSS of the command in MiB, seconds, exit code)."""
    probe = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "time.perf_counter() - t, rc]))")
    out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    kib, seconds, rc = json.loads(out.stdout.strip().splitlines()[-1])
    return kib / 1024.0, seconds, rc


def make_big_case(folder: Path, size_xyz: tuple[int, int, int]) -> Path:
    """A CT-like int16 volume (body cylinder, spine, noise) with skin, bone, a tumour target and
    a critical vessel, saved as a case bundle; returns its path."""
    from surgiplan.io.bundle import save_bundle
    from surgiplan.model.geometry import ImageGeometry
    from surgiplan.model.volume import ImageVolume
    from surgiplan.twin import Twin

    path = folder / f"big-{'x'.join(map(str, size_xyz))}.surgiplan"
    if path.is_file():
        return path
    nx, ny, nz = size_xyz
    spacing = (0.7, 0.7, 0.8)
    origin = (-nx * spacing[0] / 2, -ny * spacing[1] / 2, -nz * spacing[2] / 2)
    geometry = ImageGeometry(size_xyz, spacing, origin)
    rng = np.random.default_rng(0)
    y, x = np.ogrid[:ny, :nx]
    xmm, ymm = (x - nx / 2) * spacing[0], (y - ny / 2) * spacing[1]
    # body 320 x 240 mm, smaller on a small grid (the tiny baseline case keeps an outer skin)
    half_x, half_y = min(160.0, 0.45 * nx * spacing[0]), min(120.0, 0.45 * ny * spacing[1])
    body2d = (xmm / half_x) ** 2 + (ymm / half_y) ** 2 < 1
    spine2d = (xmm ** 2 + (ymm - 70) ** 2) < 18 ** 2
    image = np.empty((nz, ny, nx), np.int16)
    for k in range(nz):
        sl = np.where(body2d, 40, -1000).astype(np.int16)
        sl[spine2d] = 700
        sl += rng.integers(-20, 21, size=sl.shape, dtype=np.int16)
        image[k] = sl
    twin = Twin(ImageVolume(image, geometry, modality="CT", description="bench big CT"))
    body = np.broadcast_to(body2d, image.shape)
    twin.add_structure("skin", body, role="skin")
    twin.add_structure("spine", np.broadcast_to(spine2d, image.shape), role="bone")
    zmm = (np.arange(nz)[:, None, None] - nz / 2) * spacing[2]
    tumour = (xmm ** 2 + (ymm - 40) ** 2 + zmm ** 2) < 15 ** 2
    twin.add_structure("tumour", tumour, role="target")
    vessel = np.broadcast_to(((xmm - 30) ** 2 + (ymm - 20) ** 2) < 6 ** 2, image.shape)
    twin.add_structure("aorta", vessel, role="critical", margin_mm=2.0)
    save_bundle(twin, path)
    return path


def make_many_structures(folder: Path, n: int = 100) -> Path:
    """The head phantom with ``n`` small spherical critical structures added."""
    from surgiplan.io.bundle import load_bundle, save_bundle

    path = folder / f"head-{n}-critical.surgiplan"
    if path.is_file():
        return path
    head = folder / "head"
    if not (head / "head.surgiplan").is_file():
        subprocess.run([*SURGIPLAN, "sample", "head", "--out", str(head)], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    twin = load_bundle(head / "head.surgiplan")
    geo = twin.geometry
    zz, yy, xx = np.indices(geo.shape_zyx, sparse=True)
    rng = np.random.default_rng(1)
    centres = rng.uniform(0.25, 0.75, size=(n, 3)) * np.asarray(geo.shape_zyx)
    for i, (cz, cy, cx) in enumerate(centres):
        mask = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 < 9
        twin.add_structure(f"critical-{i:03d}", mask, role="critical", margin_mm=1.0)
    save_bundle(twin, path)
    return path


def _open_job(case: Path) -> list[str]:
    code = ("import sys; from surgiplan.ui.data import case_io; "
            "o = case_io.open_case(sys.argv[1]); case_io.scene_3d(o.twin)")
    return [sys.executable, "-c", code, str(case)]


def _jobs(case: Path, many: Path, target_lps: tuple[float, float, float] = TARGET_LPS
          ) -> dict[str, list[str]]:
    target = ",".join(map(str, target_lps))
    return {
        "open (app workers)": _open_job(case),
        "simulate trajectory": [*SURGIPLAN, "simulate", "trajectory", str(case), "--entry",
                                "0,-110,0", "--target", target, "--samples", "50"],
        "plan-path": [*SURGIPLAN, "plan-path", str(case), "--target", target],
        "100 critical structures (simulate)": [
            *SURGIPLAN, "simulate", "trajectory", str(many), "--entry", "0,-95,10",
            "--target", "0,0,10", "--samples", "50"],
    }


def _added_row(many: Path, head_mib: float) -> dict:
    """The 100 structures' own peak: the same command on the head phantom with and without."""
    head = many.parent / "head" / "head.surgiplan"
    path = ["--entry", "0,-95,10", "--target", "0,0,10", "--samples", "50"]
    with_them, seconds, rc = _measure([*SURGIPLAN, "simulate", "trajectory", str(many), *path])
    without, _, base_rc = _measure([*SURGIPLAN, "simulate", "trajectory", str(head), *path])
    return {"name": "100 critical structures, added: (peak - same run without them) / image "
                    "bytes", "value": (with_them - without) / head_mib, "unit": "x",
            "goal": 1.0 if rc == 0 and base_rc == 0 else 0.0,
            "detail": f"peak {with_them:.0f} MiB with, {without:.0f} MiB without (rc {rc}, "
                      f"{base_rc}), image {head_mib:.0f} MiB, {seconds:.1f} s"}


def _rows(case: Path, many: Path, tiny: Path, image_mib: float, head_mib: float,
          head_labels_mib: float = 0.0) -> list[dict]:
    """Each job's peak RSS beyond the same job's on a tiny case (interpreter, libraries and
    plug-ins), per image byte. The 100-structure row's goal adds its label layers (in image
    bytes), as the module docstring says."""
    rows = []
    tiny_jobs = _jobs(tiny, tiny, (0.0, 0.0, 0.0))  # a target inside the tiny case
    for name, argv in _jobs(case, many).items():
        many_row = name.startswith("100")
        base_mib = head_mib if many_row else image_mib
        goal = BUDGET_FACTOR + (head_labels_mib / head_mib if many_row else 0.0)
        peak, seconds, rc = _measure(argv)
        overhead, _, tiny_rc = _measure(tiny_jobs[name])
        detail = (f"peak {peak:.0f} MiB (libraries {overhead:.0f} MiB, rc {tiny_rc}), image "
                  f"{base_mib:.0f} MiB, {seconds:.1f} s, rc {rc}")
        ok = rc == 0 and tiny_rc == 0  # a failed baseline job would flatter the figure
        rows.append({"name": f"{name}: (peak - libraries) / image bytes",
                     "value": (peak - overhead) / base_mib, "unit": "x",
                     "goal": goal if ok else 0.0, "detail": detail})
    return rows


def run(size_xyz: tuple[int, int, int] | None = None, keep: Path | None = None) -> list[dict]:
    """Generate (or reuse) the cases, then measure every job in a fresh process.

    ``size_xyz`` defaults to 512x512x800, or ``$SURGIPLAN_BENCH_CT_SIZE`` ("512,512,200")."""
    if size_xyz is None:
        size_xyz = tuple(int(v) for v in os.environ.get("SURGIPLAN_BENCH_CT_SIZE",
                                                        "512,512,800").split(","))
    cache = keep or (Path(os.environ["SURGIPLAN_BENCH_CACHE"])
                     if os.environ.get("SURGIPLAN_BENCH_CACHE") else None)
    with tempfile.TemporaryDirectory(prefix="surgiplan-bench-mem-") as tmp:
        folder = cache or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        case = make_big_case(folder, size_xyz)
        tiny = make_big_case(folder, (48, 48, 24))
        many = make_many_structures(folder)
        made = time.perf_counter() - t0
        from surgiplan.io.bundle import load_bundle

        image_mib = int(np.prod(size_xyz)) * 2 / 2**20
        head = load_bundle(many)
        head_mib = int(np.prod(head.geometry.size)) * 2 / 2**20
        labels_mib = sum(layer.nbytes for layer in head.segmentation.layers) / 2**20
        del head
        rows = _rows(case, many, tiny, image_mib, head_mib, labels_mib)
        rows.append(_added_row(many, head_mib))
        rows.append({"name": "case generation", "value": made, "unit": " s", "goal": None})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512,512,800", help="nx,ny,nz of the big CT")
    parser.add_argument("--keep", type=Path, help="generate/reuse the cases in this folder")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    for row in run(size, args.keep):
        goal = "" if row["goal"] is None else f" (goal <= {row['goal']:g})"
        print(f"{row['name']}: {row['value']:.2f}{row['unit']}{goal}  {row.get('detail', '')}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
