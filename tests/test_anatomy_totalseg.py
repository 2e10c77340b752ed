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


def test_every_class_of_every_task_has_a_role_and_a_colour() -> None:
    """Each class of the v1, v2 (CT) and v2 MR tables maps to a SurgiPlan role and an RGB colour
    (the rule's, else a stable palette colour), and the MR task's table is the one a run uses."""
    from surgiplan.io.totalsegmentator import KEYWORDS, class_color, label_names
    from surgiplan.model.structures import Role

    for keyword in KEYWORDS:
        for info in label_names(keyword).values():
            assert Role(info["role"]) in Role, info
            color = info["color"]
            assert color is not None and len(color) == 3, info
            assert all(0.0 <= c <= 1.0 for c in color), info
    assert class_color("gluteus_maximus_left") == class_color("gluteus_maximus_left")
    mr = label_names("totalsegmentator-v2-mr")
    assert {i["name"] for i in mr.values()} >= {"brain", "spinal_cord", "liver", "aorta"}


def test_gpu_device_is_passed_to_the_command() -> None:
    from surgiplan.ai.totalsegmentator import command

    cmd = command(Path("TotalSegmentator"), Path("in.nii.gz"), Path("out.nii.gz"),
                  task="total_mr", device="gpu", fast=False)
    assert cmd[cmd.index("--device") + 1] == "gpu" and cmd[cmd.index("--task") + 1] == "total_mr"


EXAMPLE_RUN = textwrap.dedent('''\
    #!{python}
    # Stands in for TotalSegmentator on its own example: checks that the image handed to it is
    # the example CT's grid (same voxel centres, whatever the axis order), then returns
    # TotalSegmentator's real output for that CT in the input's voxel order and affine, as
    # TotalSegmentator does (its example file was written in dcm2niix's order).
    import sys
    import nibabel as nib, numpy as np
    from nibabel import orientations as o
    args = sys.argv[1:]
    given = nib.load(args[args.index("-i") + 1])
    reference = nib.load({reference!r})
    turn = o.ornt_transform(o.io_orientation(reference.affine), o.io_orientation(given.affine))
    labels = o.apply_orientation(np.asanyarray(reference.dataobj), turn)
    moved = reference.affine @ o.inv_ornt_aff(turn, reference.shape)
    if labels.shape != given.shape or not np.allclose(moved, given.affine, atol=1e-3):
        print("input is not the example CT's grid", given.shape, given.affine); sys.exit(3)
    out = nib.Nifti1Image(labels.astype(np.uint8), given.affine)
    out.header.extensions = reference.header.extensions
    nib.save(out, args[args.index("-o") + 1])
''')


def test_running_gives_the_same_structures_as_importing_the_example(tmp_path: Path) -> None:
    """The shared real TotalSegmentator example: a run (child process handed our NIfTI of the
    DICOM CT, returning TotalSegmentator's real output for it) and an import of that output
    onto the DICOM grid (``twin build --labels``) give the same structures, voxel for voxel,
    with the same roles and colours; the run states its method for provenance."""
    from surgiplan.io.twin_build import build_twin
    from tests.conftest import real_scan

    folder = real_scan("totalsegmentator-example")
    reference = folder / "segmentation_totalsegmentator_v2.nii.gz"
    imported = build_twin(folder / "dicom", labels=[reference],
                          label_names="totalsegmentator-v2")
    exe = tmp_path / "TotalSegmentator"
    exe.write_text(EXAMPLE_RUN.format(python=sys.executable, reference=str(reference)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    weights = tmp_path / "weights" / "Dataset291_TotalSegmentator_part1_organs_1559subj"
    weights.mkdir(parents=True)
    env = {**os.environ, "SURGIPLAN_TOTALSEG_BIN": str(exe),
           "TOTALSEG_WEIGHTS_PATH": str(weights.parent), "PATH": str(tmp_path / "nobin")}
    run = run_totalsegmentator(imported.image, env=env)
    names = imported.segmentation.names()
    assert run.names() == names and len(names) >= 25  # liver, spleen, aorta, vertebrae...
    assert {"liver", "spleen", "aorta"} <= set(names)
    for name in names:
        ours, ref = run.get(name), imported.segmentation.get(name)
        assert (ours.role, ours.color, ours.margin_mm) == (ref.role, ref.color, ref.margin_mm)
        assert np.array_equal(run.mask(name), imported.segmentation.mask(name)), name
        assert ours.description == "TotalSegmentator (task total, cpu)"
    auto = imported.provenance.automatic  # an imported TotalSegmentator output is automatic too
    assert set(auto) == set(names) and auto["liver"].quality == "automatic, unreviewed"
    assert auto["liver"].method == f"TotalSegmentator output imported from {reference.name}"


def test_a_label_map_in_another_axis_order_lands_exactly() -> None:
    """Same voxel centres with the axes swapped and flipped (a NIfTI in another orientation):
    the labels are reordered voxel for voxel (no label-Gaussian resampling), with a note."""
    from surgiplan.io.labelmaps import label_map_onto_image

    image = ImageGeometry((6, 5, 4), (1.0, 2.0, 3.0), (10.0, 20.0, 30.0))
    truth = np.random.default_rng(0).integers(0, 4, image.shape_zyx).astype(np.uint8)
    # label grid axes: i along -y (2 mm), j along +x (1 mm), k along -z (3 mm)
    direction = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    origin = (10.0, 20.0 + 2.0 * 4, 30.0 + 3.0 * 3)
    other = ImageGeometry((5, 6, 4), (2.0, 1.0, 3.0), origin, direction)
    ijk = np.indices(other.size).reshape(3, -1).T  # label voxel (i, j, k)
    on_image = np.rint(image.lps_to_index(other.index_to_lps(ijk.astype(float)))).astype(int)
    labels = np.zeros(other.shape_zyx, np.uint8)
    labels[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = truth[on_image[:, 2], on_image[:, 1], on_image[:, 0]]
    notes: list[str] = []
    out = label_map_onto_image(labels, other, image, path="flipped.nii.gz", warnings_out=notes)
    assert np.array_equal(out, truth)
    assert len(notes) == 1 and "reordered onto the image grid exactly" in notes[0]
