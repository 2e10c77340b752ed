"""scan_dicom: one header-only pass that groups series, splits mixed ones and lists problems."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError, CancelledError
from surgiplan.io.dicom_header import read_header
from surgiplan.io.dicom_scan import scan_dicom
from surgiplan.io.dicom_write import write_series
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken


def _volume(nz=4, direction=None, spacing=(0.5, 0.5, 2.0)) -> ImageVolume:
    arr = np.arange(nz * 6 * 8, dtype=np.int16).reshape(nz, 6, 8)
    geo = ImageGeometry((8, 6, nz), spacing, (10.0, -20.0, 30.0),
                        np.eye(3) if direction is None else direction)
    return ImageVolume(arr, geo, modality="CT")


def test_header_facts_and_pixel_offset(tmp_path):
    paths = write_series(_volume(), tmp_path)
    h = read_header(paths[1])
    assert h.position_lps == (10.0, -20.0, 32.0)
    assert h.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert h.pixel_spacing_mm == (0.5, 0.5)
    assert (h.rows, h.columns, h.bits_allocated, h.rescale_intercept) == (6, 8, 16, -1024.0)
    raw = paths[1].read_bytes()
    assert h.pixel_length == 6 * 8 * 2
    assert raw[h.pixel_offset:h.pixel_offset + h.pixel_length] == pydicom.dcmread(
        paths[1]).PixelData


def test_folder_groups_series_and_lists_problems(tmp_path):
    write_series(_volume(), tmp_path / "a", series_description="first")
    write_series(_volume(nz=3), tmp_path / "b", series_description="second")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.dcm").write_bytes(b"")
    seen = []
    result = scan_dicom(tmp_path, progress=lambda f, _t: seen.append(f))
    assert sorted(s.description for s in result.series) == ["first", "second"]
    assert sorted(s.n_files for s in result.series) == [3, 4]
    reasons = {p.path.name: p.reason for p in result.problems}
    assert reasons["notes.txt"].startswith("not a DICOM file")
    assert reasons["empty.dcm"] == "empty file (0 bytes)"
    assert seen[-1] == 1.0
    assert "2 image series" in result.summary()


def test_series_with_two_orientations_is_split_with_a_warning(tmp_path):
    uid = pydicom.uid.generate_uid()
    write_series(_volume(), tmp_path / "ax", series_uid=uid)
    tilted = ImageGeometry.from_json({**_volume().geometry.to_json(),
                                      "direction": [1, 0, 0, 0, 0, 1, 0, -1, 0]}).direction
    write_series(_volume(direction=tilted), tmp_path / "cor", series_uid=uid)
    result = scan_dicom(tmp_path)
    assert len(result.series) == 2
    assert {s.part for s in result.series} == {1, 2}
    assert all(s.series_uid == uid for s in result.series)
    assert all("split into 2 sub-series" in s.warnings[0] for s in result.series)
    assert len({s.key for s in result.series}) == 2


def test_repeated_positions_are_volumes_told_apart_by_echo_number(tmp_path):
    from surgiplan.io.dicom_load import plan_series_volumes

    uid = pydicom.uid.generate_uid()
    for echo in (1, 2):
        for path in write_series(_volume(), tmp_path / f"e{echo}", series_uid=uid):
            ds = pydicom.dcmread(path)
            ds.EchoNumbers = echo
            ds.save_as(path)
    result = scan_dicom(tmp_path)
    assert [s.n_files for s in result.series] == [8]
    plan = plan_series_volumes(result.series[0], 2)
    assert [(v.label, v.n_slices) for v in plan.volumes] == [("echo 1", 4), ("echo 2", 4)]
    assert {s.header.echo_number for s in plan.slices} == {2}
    assert "Volume 2 (echo 2) was loaded as chosen" in plan.warnings[0]


def test_non_image_objects_are_listed_not_loaded(tmp_path):
    write_series(_volume(), tmp_path)
    ds = pydicom.dcmread(tmp_path / "IM_0001.dcm", stop_before_pixels=True)
    ds.Modality = "SR"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    ds.save_as(tmp_path / "report.dcm")
    result = scan_dicom(tmp_path)
    assert [o.kind for o in result.non_image] == ["SR"]
    assert result.non_image[0].sop_class == "Enhanced SR Storage"
    assert result.series[0].n_files == 4


def test_symlink_loop_and_broken_link_are_problems(tmp_path):
    write_series(_volume(), tmp_path / "s")
    os.symlink(tmp_path, tmp_path / "s" / "loop")
    os.symlink(tmp_path / "self", tmp_path / "self")
    result = scan_dicom(tmp_path)
    assert result.series[0].n_files == 4
    reasons = " | ".join(p.reason for p in result.problems)
    assert "symlink loop" in reasons
    assert "cannot be read" in reasons


def test_dicomdir_is_followed_and_missing_files_reported(tmp_path):
    from pydicom.fileset import FileSet

    paths = write_series(_volume(), tmp_path / "src")
    fs = FileSet()
    for p in paths:
        fs.add(p)
    fs.write(tmp_path / "disc")
    dicomdir = tmp_path / "disc" / "DICOMDIR"
    assert scan_dicom(dicomdir).series[0].n_files == 4
    victim = next(p for p in (tmp_path / "disc").rglob("*") if p.is_file() and p != dicomdir)
    victim.unlink()
    result = scan_dicom(dicomdir)
    assert result.series[0].n_files == 3
    assert "DICOMDIR references 1 missing file" in result.problems[0].reason


def test_missing_path_and_cancel(tmp_path):
    with pytest.raises(BadInputError, match="no such file or folder"):
        scan_dicom(tmp_path / "nope")
    write_series(_volume(), tmp_path)
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        scan_dicom(tmp_path, cancel=token)
