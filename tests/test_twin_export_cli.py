"""``surgiplan twin build`` with every label input and ``surgiplan twin export`` round trips."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np
import pydicom
import pytest

from surgiplan.cli.main import main
from surgiplan.io.bundle import load_bundle
from surgiplan.io.dicom_seg import read_dicom_seg
from surgiplan.io.seg_nrrd import read_seg_nrrd
from tests.conftest import real_scan
from tests.test_rtstruct import write_rtstruct

LABELS = ("liver_seg.nrrd", "spine_seg.nrrd", "heart_seg.nrrd")


@pytest.fixture(scope="module")
def liver_case(tmp_path_factory) -> tuple[Path, Path]:
    """The 3-slice liver CT built with its three NRRD label maps (scan folder, case)."""
    scan = real_scan("liver-ct-3slice-seg")
    case = tmp_path_factory.mktemp("case") / "liver.surgiplan"
    assert main(["twin", "build", str(scan / "dicom"), "--out", str(case), "--labels",
                 *(str(scan / "labels" / n) for n in LABELS)]) == 0
    return scan, case


def _one_line_error(capsys, argv: list[str], match: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_label_maps_land_on_the_liver(liver_case):
    _, case = liver_case
    twin = load_bundle(case)
    assert twin.segmentation.names() == ["liver_seg", "spine_seg", "heart_seg"]
    hu = twin.image.array
    liver = twin.segmentation.mask("liver_seg")
    assert liver.sum() == 107098 and twin.segmentation.voxel_count("spine_seg") == 12439
    assert 40 <= np.median(hu[liver]) <= 80  # liver parenchyma
    def soft_tissue(mask):
        return float(np.mean((hu[mask] > 0) & (hu[mask] < 100)))
    assert soft_tissue(liver) > 0.7
    # the same mask mirrored left-right or front-back lands on far less liver-like tissue
    assert soft_tissue(liver[:, ::-1]) < 0.6 and soft_tissue(liver[:, :, ::-1]) < 0.6
    assert np.median(hu[twin.segmentation.mask("spine_seg")]) > 150  # bone


def test_seg_nrrd_export_reads_back_identically(liver_case, tmp_path):
    _, case = liver_case
    twin = load_bundle(case)
    out = tmp_path / "liver.seg.nrrd"
    assert main(["twin", "export", str(case), "--format", "seg.nrrd", "--out", str(out)]) == 0
    header = nrrd.read_header(str(out))
    assert header["space"] == "left-posterior-superior"
    assert np.allclose(header["space origin"], twin.geometry.origin_lps)
    back = read_seg_nrrd(out)
    assert back.names() == twin.segmentation.names()
    assert back.geometry == twin.geometry
    for s in twin.structures:
        assert np.array_equal(back.mask(s.name), twin.segmentation.mask(s.name))
        assert back.get(s.name).color == pytest.approx(s.color, abs=1e-6)


def test_dicom_seg_export_references_the_source_series(liver_case, tmp_path):
    scan, case = liver_case
    twin = load_bundle(case)
    out = tmp_path / "seg.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(out),
                 "--source-dicom", str(scan / "dicom"), "--structure", "liver_seg"]) == 0
    ds = pydicom.dcmread(out)
    # the case was saved de-identified: its series UID is the mapped one, and so is the SEG's
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == twin.image.series_uid
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver_seg"]
    back = read_dicom_seg(out, twin.geometry)
    assert np.array_equal(back.mask("liver_seg"), twin.segmentation.mask("liver_seg"))
    # without the source folder: the case's stored reference, no image copy written
    out2 = tmp_path / "alone" / "seg.dcm"
    assert main(["twin", "export", str(case), "--format", "dicom-seg", "--out", str(out2)]) == 0
    assert not (tmp_path / "alone" / "seg_image").exists()
    again = pydicom.dcmread(out2)
    assert again.ReferencedSeriesSequence[0].SeriesInstanceUID == twin.image.series_uid
    assert again.StudyInstanceUID == ds.StudyInstanceUID
    assert again.FrameOfReferenceUID == ds.FrameOfReferenceUID


def test_nifti_export_and_rebuild_keep_names(liver_case, tmp_path):
    scan, case = liver_case
    out = tmp_path / "labels.nii.gz"  # the dataset's heart and liver masks overlap a little
    assert main(["twin", "export", str(case), "--format", "nifti", "--out", str(out),
                 "--structure", "liver_seg", "--structure", "spine_seg"]) == 0
    assert (tmp_path / "labels.json").is_file()
    rebuilt = tmp_path / "rebuilt.surgiplan"
    assert main(["twin", "build", str(scan / "dicom"), "--out", str(rebuilt),
                 "--labels", str(out)]) == 0
    a, b = load_bundle(case), load_bundle(rebuilt)
    assert b.segmentation.names() == ["liver_seg", "spine_seg"]
    for s in a.structures[:2]:
        assert np.array_equal(b.segmentation.mask(s.name), a.segmentation.mask(s.name))
        assert b.structure(s.name).role == s.role


def test_stl_export_one_file_per_structure(liver_case, tmp_path):
    _, case = liver_case
    assert main(["twin", "export", str(case), "--format", "stl", "--out",
                 str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "heart_seg.stl", "liver_seg.stl", "spine_seg.stl"]
    assert main(["twin", "export", str(case), "--format", "stl", "--out", str(tmp_path / "one"),
                 "--structure", "spine_seg", "--frame", "RAS"]) == 0
    (only,) = (tmp_path / "one").iterdir()
    assert b"RAS mm" in only.read_bytes()[:80]


def test_rtstruct_input(liver_case, tmp_path):
    scan, _ = liver_case
    twin = load_bundle(liver_case[1])
    centre = twin.geometry.index_to_lps([256, 256, 1])
    t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    contours = [centre + np.stack([30 * np.cos(t), 30 * np.sin(t), 0 * t + dz], axis=1)
                for dz in (-1.0, 0.0, 1.0)]
    rs = write_rtstruct(tmp_path / "rs.dcm", [("GTV", (255, 0, 0), contours)])
    case = tmp_path / "rt.surgiplan"
    assert main(["twin", "build", str(scan / "dicom"), "--out", str(case),
                 "--labels", str(rs)]) == 0
    gtv = load_bundle(case).segmentation
    area_mm2 = gtv.voxel_count("GTV") / 3 * np.prod(twin.geometry.spacing_mm[:2])
    assert area_mm2 == pytest.approx(np.pi * 30**2, rel=0.03)


def test_bad_export_and_build_requests_exit_2_with_one_line(liver_case, tmp_path, capsys):
    scan, case = liver_case
    _one_line_error(capsys, ["twin", "export", str(case), "--format", "stl", "--out",
                             str(tmp_path), "--structure", "kidney"], "no structure named")
    overlap = tmp_path / "overlap.surgiplan"
    assert main(["twin", "build", str(scan / "dicom"), "--out", str(overlap), "--labels",
                 str(scan / "labels" / "liver_seg.nrrd"),
                 str(scan / "labels" / "liver_spine_seg.nrrd")]) == 0
    _one_line_error(capsys, ["twin", "export", str(overlap), "--format", "nifti", "--out",
                             str(tmp_path / "x.nii.gz")], "overlap")
    _one_line_error(capsys, ["twin", "export", str(case), "--format", "seg.nrrd", "--out",
                             str(tmp_path / "x.nrrd")], "must end in .seg.nrrd")
    _one_line_error(capsys, ["twin", "build", str(scan / "dicom"), "--out",
                             str(tmp_path / "p.surgiplan"), "--preset", "ct-everything"],
                    "unknown segmentation preset")
    _one_line_error(capsys, ["twin", "build", str(scan / "dicom"), "--out",
                             str(tmp_path / "p.surgiplan"), "--labels",
                             str(scan / "dicom" / "01.dcm")], "DICOM CT object")


def test_preset_from_the_command_line(liver_case, tmp_path):
    pytest.importorskip("surgiplan.segmentation.presets")
    scan, _ = liver_case
    case = tmp_path / "preset.surgiplan"
    assert main(["twin", "build", str(scan / "dicom"), "--out", str(case),
                 "--preset", "ct-bone-skin-vessels"]) == 0
    twin = load_bundle(case)
    bone = [s.name for s in twin.structures if s.role == "bone"]
    assert bone and twin.segmentation.voxel_count(bone[0]) > 0
    assert any("preset ct-bone-skin-vessels" in n for n in twin.provenance.notes)


def test_seg_nrrd_keeps_other_programs_tags(tmp_path):
    from surgiplan.io.seg_nrrd import write_seg_nrrd
    from surgiplan.model.geometry import ImageGeometry
    from surgiplan.model.structures import Segmentation

    seg = Segmentation(geometry=ImageGeometry((8, 7, 6), (1, 1, 2), (0, 0, 0)))
    mask = np.zeros((6, 7, 8), bool)
    mask[1:4, 2:5, 3:6] = True
    seg.add("liver", mask, role="organ", margin_mm=1.5)
    terminology = "Segmentation category and type - 3D Slicer General Anatomy list~SCT^10200004"
    seg.get("liver").tags = {"TerminologyEntry": terminology}
    back = read_seg_nrrd(write_seg_nrrd(seg, tmp_path / "t.seg.nrrd")).get("liver")
    assert back.tags == {"TerminologyEntry": terminology}
    assert (back.role, back.margin_mm) == ("organ", 1.5)
