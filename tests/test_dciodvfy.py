"""Every kind of DICOM object SurgiPlan writes passes dciodvfy (dicom3tools) with no error.

Objects: CT and MR image series (``write_series``, integer and scaled MR), the twin's image
exported as a DICOM series in its source study, the PS3.15 de-identified copy of a series, DICOM
SEGs of a case built from DICOM (de-identified and with identifiers), of a case built from NIfTI
(with the image series written for it) and of a plan's resection zone. Warnings are allowed
(e.g. an empty type-2C Laterality that a whole volume cannot state); errors are not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from surgiplan.cli.main import main
from surgiplan.io.dicom_write import write_series
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from tests.dicom_canary import canary_case

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (Debian package dicom3tools; "
    "bash installer/dev.sh installs it)")
GRID = ImageGeometry((12, 10, 4), (0.8, 0.7, 2.0), (-5.0, 3.0, 10.0))


def dciodvfy_errors(path: Path) -> list[str]:
    """The 'Error' lines dciodvfy prints for one file (it prints its findings to stderr)."""
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def _all_errors(paths: list[Path]) -> dict[str, list[str]]:
    return {p.name: errors for p in paths if (errors := dciodvfy_errors(p))}


def test_the_checker_finds_errors(tmp_path):
    """The check can fail: a CT slice without its type-2 KVP is an error."""
    import pydicom

    path = write_series(ImageVolume(np.zeros(GRID.shape_zyx, np.int16), GRID, modality="CT"),
                        tmp_path)[0]
    ds = pydicom.dcmread(path)
    del ds.KVP
    ds.save_as(path)
    assert any("KVP" in e for e in dciodvfy_errors(path))


@pytest.mark.parametrize("modality, values", [
    ("CT", np.arange(480, dtype=np.int16).reshape(4, 10, 12) - 200),
    ("MR", np.arange(480, dtype=np.int16).reshape(4, 10, 12)),
    ("MR", np.linspace(0.0, 1.0, 480).reshape(4, 10, 12)),  # scaled: rescale slope/intercept
])
def test_image_series(tmp_path, modality, values):
    paths = write_series(ImageVolume(values, GRID, modality=modality), tmp_path)
    assert _all_errors(paths) == {}


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> dict[str, Path]:
    """The canary CT built into a case (with identifiers kept, so both export modes work)."""
    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.store import read_plans, write_plans
    from surgiplan.simulation.inputs import ResectionInput

    root = tmp_path_factory.mktemp("dciodvfy")
    inputs = canary_case(root / "in")
    case = root / "case.surgiplan"
    assert main(["twin", "build", str(inputs["dicom"]), "--out", str(case), "--labels",
                 str(inputs["labels"]), "--label-names", str(inputs["names"]),
                 "--include-identifiers"]) == 0
    plans = read_plans(case)
    plans.add(Plan(name="R", interventions=[Intervention.from_input(
        "Resection", ResectionInput(organ_structure="liver", target_structure="tumour",
                                    margin_mm=3.0))]))
    write_plans(case, plans)
    return {"root": root, "case": case, **inputs}


def test_segs_of_a_dicom_case_and_of_a_plan(canary):
    root, case = canary["root"], canary["case"]
    segs = [root / "seg.dcm", root / "seg-named.dcm", root / "plan.dcm"]
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(segs[0])]) == 0
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(segs[1]),
                 "--include-identifiers"]) == 0
    assert main(["plans", str(case), "--export-seg", str(segs[2]), "--plan", "R"]) == 0
    assert _all_errors(segs) == {}


def test_image_export_and_deidentified_copy(canary):
    root, case = canary["root"], canary["case"]
    assert main(["twin", "export", str(case), "--format", "dicom", "--out",
                 str(root / "image")]) == 0
    assert main(["twin", "export", str(case), "--format", "dicom", "--out",
                 str(root / "copy"), "--source-dicom", str(canary["dicom"])]) == 0
    written = sorted((root / "image").iterdir()) + sorted((root / "copy").iterdir())
    assert len(written) == 32
    assert _all_errors(written) == {}


def test_seg_of_a_nifti_case_and_its_image_series(canary):
    root = canary["root"]
    case = root / "nifti.surgiplan"
    image = root / "image.nii.gz"
    from surgiplan.io.labelmaps import nifti_bytes
    from tests.dicom_canary import GEOMETRY

    image.write_bytes(nifti_bytes(np.zeros(GEOMETRY.shape_zyx, np.int16), GEOMETRY,
                                  gzipped=True))
    assert main(["twin", "build", str(image), "--out", str(case), "--labels",
                 str(canary["labels"]), "--label-names", str(canary["names"])]) == 0
    seg = root / "nifti-seg.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(seg)]) == 0
    written = [seg, *sorted((root / "nifti-seg_image").iterdir())]
    assert _all_errors(written) == {}
