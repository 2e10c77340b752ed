"""Optional TotalSegmentator plug-in: availability reasons, offline child process, import by name.

The real TotalSegmentator run skips with the plug-in's own reason when it (or its weights) is not
installed. The process plumbing is checked with a stand-in executable that honours the same
command-line contract (``-i IMAGE -o OUT --ml``) and writes a multi-label NIfTI the way
TotalSegmentator v2 does (class names in a Caret XML header extension).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from surgiplan.ai.totalsegmentator import (
    availability,
    offline_environment,
    run_totalsegmentator,
)
from surgiplan.errors import BadInputError, CancelledError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken

GRID = ImageGeometry((24, 20, 12), (1.5, 1.5, 3.0), (-10.0, 5.0, 40.0))

STAND_IN = textwrap.dedent('''\
    #!{python}
    import os, sys, time
    import nibabel as nib, numpy as np
    args = sys.argv[1:]
    if os.environ.get("HTTPS_PROXY") != "http://127.0.0.1:9" or "--ml" not in args:
        print("not started offline / not multi-label"); sys.exit(3)
    if os.environ.get("STAND_IN_MODE") == "fail":
        print("RuntimeError: weights for task total are missing"); sys.exit(1)
    if os.environ.get("STAND_IN_MODE") == "hang":
        time.sleep(60)
    image = nib.load(args[args.index("-i") + 1])
    labels = np.zeros(image.shape, np.uint8)
    labels[2:10, 3:9, 2:6] = 5      # liver
    labels[12:20, 3:9, 2:6] = 52    # aorta
    out = nib.Nifti1Image(labels, image.affine)
    xml = ('<CaretExtension><VolumeInformation Index="0"><LabelTable>'
           '<Label Key="5"><![CDATA[liver]]></Label><Label Key="52"><![CDATA[aorta]]></Label>'
           '</LabelTable></VolumeInformation></CaretExtension>')
    out.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    nib.save(out, args[args.index("-o") + 1])
''')


@pytest.fixture
def stand_in(tmp_path) -> dict[str, str]:
    exe = tmp_path / "TotalSegmentator"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    weights = tmp_path / "weights" / "Dataset291_TotalSegmentator_part1_organs_1559subj"
    weights.mkdir(parents=True)
    return {**os.environ, "SURGIPLAN_TOTALSEG_BIN": str(exe),
            "TOTALSEG_WEIGHTS_PATH": str(weights.parent)}


def _image() -> ImageVolume:
    return ImageVolume(np.zeros(GRID.shape_zyx, np.int16), GRID, modality="CT")


def test_not_installed_says_so(tmp_path):
    state = availability({"SURGIPLAN_TOTALSEG_BIN": str(tmp_path / "missing"), "PATH": ""})
    assert not state.available and "not installed" in state.reason
    with pytest.raises(BadInputError, match="not installed"):
        run_totalsegmentator(_image(), env={"SURGIPLAN_TOTALSEG_BIN": str(tmp_path / "x")})


def test_missing_weights_name_the_folder(stand_in, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    state = availability({**stand_in, "TOTALSEG_WEIGHTS_PATH": str(empty)})
    assert not state.available
    assert f"no TotalSegmentator weights found at {empty}" in state.reason
    home = availability({"SURGIPLAN_TOTALSEG_BIN": stand_in["SURGIPLAN_TOTALSEG_BIN"],
                         "TOTALSEG_HOME_DIR": str(tmp_path / "home")})
    assert str(tmp_path / "home" / "nnunet" / "results") in home.reason


def test_child_environment_cannot_download(tmp_path):
    env = offline_environment({"PATH": os.environ.get("PATH", "")})
    probe = ("import urllib.request\n"
             "try:\n    urllib.request.urlopen('http://example.com/weights.zip', timeout=5)\n"
             "except OSError as exc:\n    print('blocked', type(exc).__name__)\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.startswith("blocked"), out.stdout + out.stderr
    assert env["HF_HUB_OFFLINE"] == "1"


def test_availability_does_not_import_torch():
    code = ("import sys; from surgiplan.ai.totalsegmentator import availability; availability(); "
            "print('torch' in sys.modules, 'totalsegmentator' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_run_imports_the_result_by_name_onto_the_image(stand_in):
    assert availability(stand_in).available
    seen: list[float] = []
    seg = run_totalsegmentator(_image(), env=stand_in, progress=lambda f, t: seen.append(f))
    assert seg.names() == ["liver", "aorta"]
    assert seg.get("aorta").role == "critical" and seg.get("liver").role == "organ"
    assert seg.voxel_count("liver") == 8 * 6 * 4
    assert seg.mask("aorta")[2:6, 3:9, 12:20].all()  # NIfTI (x, y, z) -> (nz, ny, nx), LPS
    assert seen[-1] == 1.0


def test_failure_and_cancel_are_reported(stand_in):
    with pytest.raises(BadInputError, match="exit 1: RuntimeError: weights for task total"):
        run_totalsegmentator(_image(), env={**stand_in, "STAND_IN_MODE": "fail"})
    token = CancelToken()
    threading.Timer(1.0, token.cancel).start()
    with pytest.raises(CancelledError):
        run_totalsegmentator(_image(), env={**stand_in, "STAND_IN_MODE": "hang"}, cancel=token)


def test_real_totalsegmentator_when_installed():
    state = availability()
    if not state.available:
        pytest.skip(f"AI plug-in unavailable: {state.reason}")
    from surgiplan.io.twin_build import load_image
    from tests.conftest import real_scan

    image = load_image(real_scan("liver-ct-3slice-seg") / "dicom")
    seg = run_totalsegmentator(image, fast=True)
    assert "liver" in seg.names()
