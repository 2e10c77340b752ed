"""load_series / load_dicom on synthetic stacks: regular, tilted, non-uniform, gaps, duplicates.

Values are a linear function of the LPS position, so linear resampling must reproduce it
exactly (up to integer rounding): any misplaced voxel shows up as a value error.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom, load_series, plan_series_geometry
from surgiplan.io.dicom_scan import scan_dicom
from surgiplan.io.dicom_write import write_series
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume

NX, NY = 40, 32
PIXEL = (0.8, 0.9)  # x (column) and y (row) spacing, mm
ORIGIN = np.array([-12.0, 30.0, 40.0])


def _at(depth_mm: float) -> np.ndarray:
    """ORIGIN moved ``depth_mm`` towards superior (LPS +S)."""
    return ORIGIN + np.array([0.0, 0.0, depth_mm])


def field_hu(points_lps: np.ndarray) -> np.ndarray:
    """The test image: a linear function of LPS position (mm)."""
    return 2.0 * points_lps[..., 0] + 3.0 * points_lps[..., 1] + 5.0 * points_lps[..., 2] + 100


def _tilt(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, np.cos(a), -np.sin(a)])
    return np.stack([row, col, np.cross(row, col)], axis=1)


def write_stack(folder, positions, direction=None, *, hu=field_hu):
    """One DICOM slice per LPS position; pixel values sampled from ``hu`` where they lie."""
    direction = np.eye(3) if direction is None else direction
    arrays = []
    for p in positions:
        geo = ImageGeometry((NX, NY, 1), (*PIXEL, 1.0), p, direction)
        jj, ii = np.mgrid[0:NY, 0:NX]
        pts = geo.index_to_lps(np.stack([ii, jj, np.zeros_like(ii)], axis=-1))
        arrays.append(np.rint(hu(pts)))
    geo = ImageGeometry((NX, NY, len(positions)), (*PIXEL, 1.0), positions[0], direction)
    vol = ImageVolume(np.stack(arrays).astype(np.int16), geo, modality="CT")
    paths = write_series(vol, folder)
    for path, p in zip(paths, positions, strict=True):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in p]
        ds.save_as(path)
    return paths


def _check_field(vol: ImageVolume, tol: float = 1.01) -> None:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in vol.geometry.size], indexing="ij"), -1)
    pts = vol.geometry.index_to_lps(ijk).transpose(2, 1, 0, 3)
    inside = vol.array > vol.array.min()
    err = np.abs(vol.array - field_hu(pts))[inside]
    assert inside.mean() > 0.5
    assert err.max() <= tol, f"max error {err.max()}"


def test_regular_stack_keeps_slices_as_planes(tmp_path):
    positions = [_at(2.5 * k) for k in range(6)]
    write_stack(tmp_path, positions)
    vol = load_dicom(tmp_path)
    assert vol.warnings == []
    assert vol.geometry.size == (NX, NY, 6)
    np.testing.assert_allclose(vol.geometry.origin_lps, ORIGIN, atol=1e-6)
    np.testing.assert_allclose(vol.geometry.spacing_mm, (*PIXEL, 2.5))
    assert vol.array.dtype == np.int16
    assert vol.metadata["patient"]["id"] == "PHANTOM"
    assert len(vol.metadata["files"]) == 6
    _check_field(vol)


def test_feet_first_order_is_sorted_along_the_normal(tmp_path):
    positions = [_at(-1.0 * k) for k in range(3)]  # InstanceNumber goes inferior
    write_stack(tmp_path, positions)
    vol = load_dicom(tmp_path)
    np.testing.assert_allclose(vol.geometry.origin_lps, positions[-1], atol=1e-6)
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3))
    _check_field(vol)


def test_gantry_tilt_is_resampled_onto_slice_aligned_grid(tmp_path):
    direction = _tilt(20.0)
    positions = [_at(3.0 * k) for k in range(8)]  # IPP steps along S, not normal
    write_stack(tmp_path, positions, direction)
    series = scan_dicom(tmp_path).series[0]
    geometry, planned_warnings = plan_series_geometry(series)
    vol = load_series(series)
    assert geometry == vol.geometry
    assert set(planned_warnings) <= set(vol.warnings)
    assert any("sheared" in w and "Resampled" in w for w in vol.warnings)
    np.testing.assert_allclose(vol.geometry.direction, direction, atol=1e-6)
    assert vol.geometry.size[1] > NY  # footprint union is larger than one slice
    assert vol.geometry.spacing_mm[2] <= 3.0 * np.cos(np.radians(20)) + 1e-9
    _check_field(vol)


def test_non_uniform_spacing_is_resampled_with_a_warning(tmp_path):
    depths = [0, 2, 4, 5, 6, 8, 10]
    write_stack(tmp_path, [_at(d) for d in depths])
    vol = load_dicom(tmp_path)
    assert any("non-uniform" in w for w in vol.warnings)
    assert vol.geometry.spacing_mm[2] <= 2.0
    _check_field(vol)


def test_single_missing_slice_is_interpolated_with_a_warning(tmp_path):
    depths = [0, 2, 4, 8, 10, 12]
    write_stack(tmp_path, [_at(d) for d in depths])
    vol = load_dicom(tmp_path)
    assert vol.geometry.size[2] == 7 and vol.geometry.spacing_mm[2] == pytest.approx(2.0)
    assert any("missing slices" in w for w in vol.warnings)
    _check_field(vol)


def test_huge_gap_is_refused_naming_the_files(tmp_path):
    depths = [0, 2, 4, 30, 32]
    paths = write_stack(tmp_path, [_at(d) for d in depths])
    with pytest.raises(BadInputError) as err:
        load_dicom(tmp_path)
    text = str(err.value)
    assert "gap of 26.0 mm" in text and paths[2].name in text and paths[3].name in text
    assert "\n" not in text


def test_duplicates_are_dropped_or_chosen_with_warnings(tmp_path):
    paths = write_stack(tmp_path / "s", [_at(2.0 * k) for k in range(4)])
    (tmp_path / "s" / "copy.dcm").write_bytes(paths[1].read_bytes())
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 99
    ds.save_as(tmp_path / "s" / "other.dcm")
    vol = load_dicom(tmp_path)
    assert vol.geometry.size[2] == 4
    assert any("duplicate file(s) of the same image" in w for w in vol.warnings)
    assert any("two different images" in w for w in vol.warnings)


def test_float_rescale_gives_float32_and_window_from_file(tmp_path):
    write_stack(tmp_path, [_at(1.0 * k) for k in range(3)])
    for path in sorted(tmp_path.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-10.25"
        ds.WindowCenter, ds.WindowWidth = ["720", "60"], ["350", "400"]
        ds.save_as(path)
    vol = load_dicom(tmp_path)  # values 685..763
    assert vol.array.dtype == np.float32
    assert (vol.window_center, vol.window_width) == (720.0, 350.0)
    raw = pydicom.dcmread(tmp_path / "IM_0001.dcm").pixel_array
    np.testing.assert_allclose(vol.array[0], raw * 0.5 - 10.25)


def test_enhanced_multiframe_ct_loads(tmp_path):
    """A legacy-converted enhanced CT built with highdicom from single-frame files."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    paths = write_stack(tmp_path / "single", [_at(1.5 * k) for k in range(5)])
    datasets = [pydicom.dcmread(p) for p in paths]
    for ds in datasets:
        ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    enhanced = LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=pydicom.uid.generate_uid(), series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1)
    (tmp_path / "multi").mkdir()
    enhanced.save_as(tmp_path / "multi" / "enhanced.dcm")
    single = load_dicom(tmp_path / "single")
    multi = load_dicom(tmp_path / "multi")
    assert multi.geometry == single.geometry
    np.testing.assert_array_equal(multi.array, single.array)


def test_choice_among_several_series_is_noted(tmp_path):
    write_stack(tmp_path / "a", [_at(1.0 * k) for k in range(3)])
    write_stack(tmp_path / "b", [_at(1.0 * k) for k in range(5)])
    vol = load_dicom(tmp_path)
    assert vol.geometry.size[2] == 5
    assert "2 image series were found" in vol.warnings[0]
    other = next(s for s in scan_dicom(tmp_path).series if s.n_files == 3)
    assert load_dicom(tmp_path, series_uid=other.series_uid).geometry.size[2] == 3
    with pytest.raises(BadInputError, match=r"no series with UID 1\.2\.3"):
        load_dicom(tmp_path, series_uid="1.2.3")
