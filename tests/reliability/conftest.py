"""Hostile plug-ins installed as a third-party distribution, and a small case bundle."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.simulation import TrajectoryInput
from surgiplan.twin import Twin
from tests.plugins_fixtures import install_entry_points
from tests.reliability.hostile import HOSTILE, HOSTILE_PLUGINS

IMPORT_TIMEOUT_S = 4.0  # a hanging import is given this long here (20 s by default)
INPUT = TrajectoryInput(entry_lps=(2.0, 12.0, 12.0), target_lps=(12.0, 12.0, 20.0))
POINTS = ["--entry=2,12,12", "--target=12,12,20"]


def small_twin() -> Twin:
    """A 24^3 head: skin shell around a critical 'vessel' ball of radius 3 mm."""
    geometry = ImageGeometry((24, 24, 24), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    zz, yy, xx = np.indices(geometry.shape_zyx)
    r2 = (xx - 12) ** 2 + (yy - 12) ** 2 + (zz - 12) ** 2
    image = np.where(r2 <= 100, 40, -1000).astype(np.int16)
    twin = Twin(ImageVolume(image, geometry, modality="CT"))
    twin.add_structure("skin", (r2 <= 100) & (r2 > 9), role="skin")
    twin.add_structure("vessel", r2 <= 9, role="critical", margin_mm=2.0)
    return twin


def twin_digest(twin: Twin) -> str:
    """SHA-256 over the image voxels and every label layer."""
    h = hashlib.sha256(np.ascontiguousarray(twin.image.array).tobytes())
    for layer in twin.segmentation.layers:
        h.update(np.ascontiguousarray(layer).tobytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="package")
def hostile_dir(tmp_path_factory) -> Path:
    """sp_hostile installed (dist-info with entry points) on sys.path while this package's tests
    run (removed afterwards: later tests may trust every plug-in and import it in-process)."""
    folder = tmp_path_factory.mktemp("hostile-site")
    install_entry_points(folder, "sp_hostile", HOSTILE_PLUGINS)
    added = [str(folder), str(HOSTILE)]
    sys.path[:0] = added
    old = os.environ.get("SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S")
    os.environ["SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S"] = str(IMPORT_TIMEOUT_S)
    yield folder
    for entry in added:
        sys.path.remove(entry)
    if old is None:
        os.environ.pop("SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S", None)
    else:
        os.environ["SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S"] = old


@pytest.fixture(scope="session")
def case_bundle(tmp_path_factory) -> Path:
    from surgiplan.io.bundle import save_bundle

    path = tmp_path_factory.mktemp("case") / "small.surgiplan"
    save_bundle(small_twin(), path)
    return path


def cli_env(plugin_dir: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), str(HOSTILE)]),
                SURGIPLAN_PLUGIN_IMPORT_TIMEOUT_S=str(IMPORT_TIMEOUT_S))
