"""TotalSegmentator engine choice: the task follows the modality, the GPU is used when present.

A stand-in executable (a real child process) records the arguments it was started with.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from surgiplan.ai.totalsegmentator import default_device, run_totalsegmentator, task_for
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume

GRID = ImageGeometry((16, 14, 8), (1.5, 1.5, 3.0), (-10.0, 5.0, 40.0))

RECORDER = textwrap.dedent('''\
    #!{python}
    import os, sys
    import nibabel as nib, numpy as np
    args = sys.argv[1:]
    open(os.environ["STAND_IN_ARGS"], "w").write(" ".join(args))
    image = nib.load(args[args.index("-i") + 1])
    labels = np.zeros(image.shape, np.uint8)
    labels[2:6, 2:6, 2:4] = 5
    nib.save(nib.Nifti1Image(labels, image.affine), args[args.index("-o") + 1])
''')


@pytest.fixture
def recorder(tmp_path: Path) -> dict[str, str]:
    exe = tmp_path / "TotalSegmentator"
    exe.write_text(RECORDER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    weights = tmp_path / "weights" / "Dataset291_TotalSegmentator_part1_organs_1559subj"
    weights.mkdir(parents=True)
    return {**os.environ, "SURGIPLAN_TOTALSEG_BIN": str(exe),
            "TOTALSEG_WEIGHTS_PATH": str(weights.parent),
            "STAND_IN_ARGS": str(tmp_path / "args.txt"), "PATH": str(tmp_path / "nobin")}


def _run_args(env: dict[str, str], modality: str) -> list[str]:
    image = ImageVolume(np.zeros(GRID.shape_zyx, np.int16), GRID, modality=modality)
    run_totalsegmentator(image, env=env)
    return Path(env["STAND_IN_ARGS"]).read_text().split()


@pytest.mark.parametrize(("modality", "task"), [("MR", "total_mr"), ("CT", "total")])
def test_task_follows_the_modality(recorder: dict[str, str], modality: str, task: str) -> None:
    assert task_for(modality) == task
    args = _run_args(recorder, modality)
    assert args[args.index("--task") + 1] == task
    assert args[args.index("--device") + 1] == "cpu"  # no nvidia-smi on this PATH


def test_gpu_is_chosen_when_the_driver_and_device_are_present(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    node = tmp_path / "nvidia0"
    env = {"PATH": str(tool.parent)}
    assert default_device(env, device_node=node) == "cpu"  # driver tool but no device
    node.write_text("")
    assert default_device(env, device_node=node) == "gpu"
    assert default_device({"PATH": str(tmp_path)}, device_node=node) == "cpu"
