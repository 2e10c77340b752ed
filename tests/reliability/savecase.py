"""Helpers for the save / bundle reliability tests: a small case and a ZIP rewriter."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from surgiplan.io.bundle import MANIFEST, MANIFEST_HASH_PREFIX, save_bundle
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin

ROOT = Path(__file__).resolve().parents[2]


def small_case(folder: Path, name: str = "case.surgiplan") -> Path:
    """A 24x20x16 CT with a skin, a target and a critical structure, saved as a bundle."""
    geometry = ImageGeometry((24, 20, 16), (1.0, 1.0, 1.5), (-12.0, -10.0, -12.0))
    zz, yy, xx = np.indices(geometry.shape_zyx)
    r2 = (xx - 12) ** 2 + (yy - 10) ** 2 + (zz - 8) ** 2
    image = np.where(r2 <= 64, 40, -1000).astype(np.int16)
    twin = Twin(ImageVolume(image, geometry, modality="CT"), patient_ref="P-TEST")
    twin.add_structure("skin", (r2 <= 64) & (r2 > 36), role="skin")
    twin.add_structure("tumour", r2 <= 4, role="target", margin_mm=5.0)
    twin.add_structure("vessel", (np.abs(xx - 7) <= 1) & (np.abs(yy - 10) <= 1) & (r2 <= 36),
                       role="critical", margin_mm=2.0)
    return save_bundle(twin, folder / name)


def entries_of(path: Path) -> tuple[dict[str, bytes], bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}, archive.comment


def rewrite(path: Path, entries: dict[str, bytes], *, comment: bytes | None = None,
            rehash: bool = True) -> None:
    """Write ``entries`` as ``path``: file hashes recomputed in the manifest (``rehash``) and the
    ZIP comment set to the manifest's SHA-256 (``comment=None``) or to ``comment``."""
    if rehash:
        manifest = json.loads(entries[MANIFEST])
        manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in entries.items()
                             if n != MANIFEST}
        entries = {**entries, MANIFEST: json.dumps(manifest).encode()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data, zipfile.ZIP_DEFLATED)
        archive.comment = comment if comment is not None else (
            MANIFEST_HASH_PREFIX + hashlib.sha256(entries[MANIFEST]).hexdigest().encode())


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    """``python -m surgiplan ARGS`` in a fresh process (text output)."""
    return subprocess.run([sys.executable, "-m", "surgiplan", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})},
                          timeout=timeout)


def one_line_rc2(result: subprocess.CompletedProcess) -> str:
    """Assert exit code 2 with exactly one line on stderr and no traceback; return the line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def add_trajectory_plan(path: Path, name: str = "path A") -> Path:
    """Add a trajectory plan (entry through the skin to the tumour) to the case's plans."""
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.store import read_plans, write_plans

    plans = read_plans(path)
    plans.add(Plan(name=name, interventions=[Intervention(
        label="needle", kind="trajectory", simulator_id="surgiplan.trajectory",
        inputs={"entry_lps": [0.0, -9.0, 0.0], "target_lps": [0.0, 0.0, 0.0],
                "diameter_mm": 2.0})]))
    return write_plans(path, plans)
