"""The twin builder and the ``surgiplan twin build|info`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.io.deidentify import patient_pseudonym
from surgiplan.io.labelmaps import nrrd_bytes, nrrd_geometry_header, write_label_map
from surgiplan.io.seg_nrrd import write_seg_nrrd
from surgiplan.io.twin_build import build_twin
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from tests.conftest import PROJECT_ROOT, real_scan

GRID = ImageGeometry((40, 30, 12), (0.9, 0.9, 2.5), (-20.0, 10.0, 50.0))
NAMES = {"schema": "surgiplan.labels/1", "labels": [
    {"value": 1, "name": "tumour", "role": "target", "margin_mm": 5.0},
    {"value": 2, "name": "artery", "role": "critical", "margin_mm": 2.0, "color": [1, 0, 0]}]}


@pytest.fixture(autouse=True)
def private_data_home(tmp_path, monkeypatch):
    """Keep the pseudonym secret of these tests out of the real user-data folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture
def nrrd_case(tmp_path) -> Path:
    """An NRRD image, a NIfTI label map on its grid and a labels.json next to it."""
    rng = np.random.default_rng(3)
    image = rng.integers(-100, 200, GRID.shape_zyx).astype(np.int16)
    (tmp_path / "image.nrrd").write_bytes(nrrd_bytes(image, nrrd_geometry_header(GRID)))
    labels = np.zeros(GRID.shape_zyx, np.uint8)
    labels[2:6, 5:15, 5:20] = 1
    labels[7:10, 10:20, 10:30] = 2
    write_label_map(labels, GRID, tmp_path / "labels.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps(NAMES))
    return tmp_path


def test_build_from_nrrd_with_sidecar_names(nrrd_case):
    twin = build_twin(nrrd_case / "image.nrrd", labels=[nrrd_case / "labels.nii.gz"])
    assert twin.geometry == GRID
    assert [(s.name, s.role, s.label, s.margin_mm) for s in twin.structures] == [
        ("tumour", "target", 1, 5.0), ("artery", "critical", 2, 2.0)]
    assert twin.structure("artery").color == (1.0, 0.0, 0.0)
    assert twin.segmentation.voxel_count("tumour") == 4 * 10 * 15
    assert set(twin.provenance.source_files_sha256) == {"image.nrrd", "labels.nii.gz"}
    assert twin.provenance.import_warnings == [] and twin.patient_ref == ""


def test_overlapping_label_maps_go_to_separate_layers(nrrd_case):
    zone = np.zeros(GRID.shape_zyx, np.uint8)
    zone[3:8, 8:18, 8:22] = 1  # overlaps both structures
    write_label_map(zone, GRID, nrrd_case / "zone.nrrd")
    twin = build_twin(nrrd_case / "image.nrrd", labels=[nrrd_case / "labels.nii.gz",
                                                        nrrd_case / "zone.nrrd"])
    # zone.nrrd sits next to labels.json too, whose value 1 is "tumour": names stay unique.
    assert [(s.name, s.layer, s.label) for s in twin.structures] == [
        ("tumour", 0, 1), ("artery", 0, 2), ("tumour (2)", 1, 1)]
    assert twin.segmentation.voxel_count("tumour (2)") == 5 * 10 * 14
    assert any("artery (2)" in w for w in twin.provenance.import_warnings)  # named, absent


def test_slicer_segmentation_brings_its_own_names(nrrd_case):
    seg = Segmentation(geometry=GRID)
    seg.add("nerve", np.pad(np.ones((2, 3, 30), bool), ((4, 6), (10, 17), (5, 5))),
            role="critical", margin_mm=3.0, color=(1.0, 1.0, 0.0))
    seg.add("cyst", np.pad(np.ones((3, 3, 3), bool), ((3, 6), (11, 16), (9, 28))))
    write_seg_nrrd(seg, nrrd_case / "slicer.seg.nrrd")
    twin = build_twin(nrrd_case / "image.nrrd", labels=[nrrd_case / "slicer.seg.nrrd"])
    assert [(s.name, s.role, s.margin_mm, s.color, s.layer) for s in twin.structures] == [
        ("nerve", "critical", 3.0, (1.0, 1.0, 0.0), 0),
        ("cyst", "other", 0.0, seg.get("cyst").color, 1)]
    assert twin.segmentation.voxel_count("nerve") == 180
    assert twin.segmentation.voxel_count("cyst") == 27


def test_label_map_elsewhere_in_the_body_is_refused(nrrd_case):
    far = ImageGeometry(GRID.size, GRID.spacing_mm, (400.0, 400.0, 400.0))
    write_label_map(np.ones(GRID.shape_zyx, np.uint8), far, nrrd_case / "far.nrrd")
    with pytest.raises(BadInputError, match=r"far\.nrrd: the label map does not overlap"):
        build_twin(nrrd_case / "image.nrrd", labels=[nrrd_case / "far.nrrd"])


def test_label_map_on_another_grid_is_resampled_with_a_warning(nrrd_case):
    pytest.importorskip("surgiplan.processing.resample")
    coarse = ImageGeometry((20, 15, 6), (1.8, 1.8, 5.0), (-19.55, 10.45, 51.25))
    labels = np.zeros(coarse.shape_zyx, np.uint8)
    labels[1:3, 3:7, 3:9] = 1
    write_label_map(labels, coarse, nrrd_case / "coarse.nrrd")
    twin = build_twin(nrrd_case / "image.nrrd", labels=[nrrd_case / "coarse.nrrd"],
                      label_names=nrrd_case / "labels.json")
    # The coarse block (k 1..2, j 3..6, i 3..8) covers fine voxels k 2..5, j 6..13, i 6..17.
    kz, jy, ix = np.nonzero(twin.segmentation.mask("tumour"))
    assert [(a.min(), a.max()) for a in (kz, jy, ix)] == [(2, 5), (6, 13), (6, 17)]
    assert any("resampled onto the image grid" in w for w in twin.provenance.import_warnings)


def test_build_from_real_dicom_with_real_label_maps(tmp_path):
    folder = real_scan("liver-ct-3slice-seg")
    labels = [folder / "labels" / f"{n}_seg.nrrd" for n in ("liver", "spine", "heart")]
    twin = build_twin(folder / "dicom", labels=labels)
    counts = {s.name: twin.segmentation.voxel_count(s.name) for s in twin.structures}
    assert counts == {"liver_seg": 107098, "spine_seg": 12439, "heart_seg": 41449}
    # In this data the heart overlaps the liver by 522 voxels: it needs a second layer.
    assert [s.layer for s in twin.structures] == [0, 0, 1]
    assert np.count_nonzero(twin.segmentation.mask("liver_seg")
                            & twin.segmentation.mask("heart_seg")) == 522
    assert twin.patient_ref == patient_pseudonym("99000")
    assert twin.provenance.source_series_uids == [twin.image.series_uid]
    assert {"01.dcm", "02.dcm", "03.dcm", "liver_seg.nrrd"} <= set(
        twin.provenance.source_files_sha256)
    assert twin.image.metadata["patient"]["name"] == "JANCT000"
    saved = save_bundle(twin, tmp_path / "liver.surgiplan")
    with zipfile.ZipFile(saved) as archive:
        contents = b"".join(archive.read(n) for n in archive.namelist())
    for identifier in (b"JANCT000", b"99000", str(folder).encode()):
        assert identifier not in contents + saved.read_bytes()


# ---------------------------------------------------------------------------- the CLI
def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "surgiplan", *map(str, args)],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=env,
                          timeout=120)


def test_cli_build_then_info(nrrd_case, tmp_path):
    out = tmp_path / "case.surgiplan"
    built = _run("twin", "build", nrrd_case / "image.nrrd", "--labels",
                 nrrd_case / "labels.nii.gz", "--out", out, home=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "tumour: role target" in built.stdout and "artery: role critical" in built.stdout
    info = _run("twin", "info", out, "--json", home=tmp_path)
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["image"]["size"] == [40, 30, 12]
    assert summary["image"]["spacing_mm"] == [0.9, 0.9, 2.5]
    assert summary["image"]["origin_lps"] == [-20.0, 10.0, 50.0]
    assert len(summary["image"]["direction"]) == 9
    tumour = summary["structures"][0]
    assert {k: tumour[k] for k in ("name", "role", "label", "margin_mm")} == {
        "name": "tumour", "role": "target", "label": 1, "margin_mm": 5.0}
    assert tumour["volume_ml"] == pytest.approx(600 * 0.9 * 0.9 * 2.5 / 1000, abs=1e-3)
    assert {"patient_ref", "provenance", "warnings"} <= set(summary)
    assert load_bundle(out).structure("artery").margin_mm == 2.0
    text = _run("twin", "info", out, home=tmp_path)
    assert text.returncode == 0 and "structures: 2" in text.stdout


@pytest.mark.parametrize("case", ["missing-image", "missing-labels", "bad-out", "far-labels",
                                  "damaged-case"])
def test_cli_bad_input_exits_2_with_one_line(nrrd_case, tmp_path, case):
    if case == "missing-image":
        args = ["twin", "build", tmp_path / "nope", "--out", tmp_path / "c.surgiplan"]
    elif case == "missing-labels":
        args = ["twin", "build", nrrd_case / "image.nrrd", "--labels", tmp_path / "nope.nrrd",
                "--out", tmp_path / "c.surgiplan"]
    elif case == "bad-out":
        args = ["twin", "build", nrrd_case / "image.nrrd", "--out", tmp_path / "c.zip"]
    elif case == "far-labels":
        far = ImageGeometry(GRID.size, GRID.spacing_mm, (400.0, 400.0, 400.0))
        write_label_map(np.ones(GRID.shape_zyx, np.uint8), far, tmp_path / "far.nrrd")
        args = ["twin", "build", nrrd_case / "image.nrrd", "--labels", tmp_path / "far.nrrd",
                "--out", tmp_path / "c.surgiplan"]
    else:
        (tmp_path / "broken.surgiplan").write_bytes(b"PK\x03\x04 not really a zip")
        args = ["twin", "info", tmp_path / "broken.surgiplan"]
    result = _run(*args, home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("surgiplan: ")
    assert not (tmp_path / "c.surgiplan").exists()
