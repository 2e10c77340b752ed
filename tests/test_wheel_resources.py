"""Built as wheels and installed outside the source tree, SurgiPlan and its plug-ins still find
their data (issue 13, item 4): exercises and TotalSegmentator maps are package data of
``surgiplan``, the screw library and the device tables of their plug-ins.

The wheels go into a fresh venv (``--without-pip``; the wheels are unpacked by pip from the
project's venv with ``--target``). Third-party dependencies come from the project's venv through
a path entry placed *after* the wheel's folder, so every ``surgiplan*`` module and data file the
check touches must come from the installed wheels (the test asserts the paths)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT, ROOT / "plugins" / "implant", ROOT / "plugins" / "ablation"]

CHECK = r"""
import json, sys
from pathlib import Path
import surgiplan, surgiplan_implant, surgiplan_ablation
from surgiplan.training.exercise import EXERCISES_DIR, list_exercises
from surgiplan.io.totalsegmentator import RESOURCE_DIR
from surgiplan_implant.library import default_library_path, load_library
from surgiplan_ablation.devices import device_dir, load_device
tables = sorted(device_dir().glob("*.toml"))
print(json.dumps({
    "surgiplan": surgiplan.__file__, "implant": surgiplan_implant.__file__,
    "ablation": surgiplan_ablation.__file__, "exercises_dir": str(EXERCISES_DIR),
    "exercises": len(list_exercises()), "totalseg_dir": str(RESOURCE_DIR),
    "totalseg_files": len(list(Path(RESOURCE_DIR).glob("*.json"))),
    "library": str(default_library_path()), "screws": len(load_library()),
    "tables": [str(t) for t in tables], "devices": [load_device(t).id for t in tables],
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheels")
    wheels, target = base / "wheels", base / "site"
    for n, project in enumerate(PROJECTS):
        copy = base / f"src{n}"  # pip builds in the project folder: keep the tree clean
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns(
            ".venv", "plugins", "tests", "bench", "sample_scans", ".git", "build", "*.egg-info",
            "__pycache__", "installer", "docs"))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                               "-q", "-w", str(wheels), str(copy)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                           "--target", str(target), *map(str, sorted(wheels.glob("*.whl")))],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def test_installed_wheels_find_their_data(installed, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig;"
                              "print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    # the wheels first; the dependencies (numpy, pydantic, vtk...) after them
    Path(purelib, "zz_deps.pth").write_text(
        f"{installed}\n{sysconfig.get_paths()['purelib']}\n", encoding="utf-8")
    done = subprocess.run([str(python), "-I", "-c", CHECK], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    for key in ("surgiplan", "implant", "ablation", "exercises_dir", "totalseg_dir", "library"):
        assert str(found[key]).startswith(str(installed)), (key, found[key])
        assert not str(found[key]).startswith(str(ROOT)), (key, found[key])
    assert all(t.startswith(str(installed)) for t in found["tables"]), found["tables"]
    assert found["exercises"] >= 3 and found["totalseg_files"] >= 3
    assert found["screws"] > 0 and len(found["devices"]) >= 2
