"""Multi-frame DICOM: enhanced frames keep their own Pixel Value Transformation; a classic
multi-frame file is placed frame by frame when GridFrameOffsetVector says where, else refused
with one line (never loaded as its first frame)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from tests.conftest import real_scan
from tests.dicom_corpus import mr_dataset
from tests.test_dicom_load import _at, write_stack

ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _expected(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Real-world values computed as the loader does (float32 out, float64 product)."""
    out = np.multiply(stored, slope, dtype=np.float64).astype(np.float32)
    if intercept:
        out += np.float32(intercept)
    return out


def _per_frame_rescale(path, rescales: list[tuple[float, float]]) -> None:
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    if "PixelValueTransformationSequence" in shared:
        del shared.PixelValueTransformationSequence
    for frame, (slope, intercept) in zip(ds.PerFrameFunctionalGroupsSequence, rescales,
                                         strict=True):
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = (
            f"{slope:g}", f"{intercept:g}", "US")
        frame.PixelValueTransformationSequence = Sequence([item])
    ds.save_as(path)


def test_enhanced_frames_with_their_own_rescale_get_their_own_values(tmp_path):
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    paths = write_stack(tmp_path / "single", [_at(1.5 * k) for k in range(5)])
    datasets = [pydicom.dcmread(p) for p in paths]
    for ds in datasets:
        ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    enhanced = LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=pydicom.uid.generate_uid(), series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1)
    path = tmp_path / "multi" / "enhanced.dcm"
    path.parent.mkdir()
    enhanced.save_as(path)
    rescales = [(1.0 + 0.25 * f, -100.0 * f) for f in range(5)]
    _per_frame_rescale(path, rescales)
    vol = load_dicom(path.parent)
    ds = pydicom.dcmread(path)
    assert vol.array.dtype == np.float32
    for f, (slope, intercept) in enumerate(rescales):
        item = ds.PerFrameFunctionalGroupsSequence[f].PlanePositionSequence[0]
        z = round((float(item.ImagePositionPatient[2]) - _at(0.0)[2]) / 1.5)
        np.testing.assert_array_equal(vol.array[z],
                                      _expected(ds.pixel_array[f], slope, intercept))


@pytest.mark.parametrize(("volume", "kind", "echo_ms"), [
    (1, "MAGNITUDE", 2.3), (2, "MAGNITUDE", 4.6), (3, "PHASE", 2.3), (4, "PHASE", 4.6)])
def test_real_philips_field_map_volumes_have_their_frames_rescale(volume, kind, echo_ms):
    path = (real_scan("odd-dicom") / "philips-enhanced-per-frame-rescale"
            / "2001_WIP_fcMRI_Field_Mapping_e2_phMag.dcm")
    vol = load_dicom(path.parent, volume=volume)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    frames = []
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        frame_type = item.MRImageFrameTypeSequence[0]
        if (frame_type.ComplexImageComponent == kind
                and float(item.MREchoSequence[0].EffectiveEchoTime) == echo_ms):
            pvt = item.PixelValueTransformationSequence[0]
            position = np.array([float(v) for v in
                                 item.PlanePositionSequence[0].ImagePositionPatient])
            frames.append((position, f, float(pvt.RescaleSlope), float(pvt.RescaleIntercept)))
    normal = vol.geometry.direction[:, 2]
    frames.sort(key=lambda t: float(t[0] @ normal))
    assert vol.geometry.size == (80, 80, len(frames)) == (80, 80, 53)
    for z, (position, f, slope, intercept) in enumerate(frames):
        assert np.linalg.norm(vol.geometry.index_to_lps(np.array([0, 0, z])) - position) < 0.01
        np.testing.assert_array_equal(vol.array[z], _expected(stored[f], slope, intercept))
    assert any(f"Volume {volume} (image type {kind}, echo time {echo_ms:g} ms) was loaded" in w
               for w in vol.warnings)


def _classic(tmp_path, **tags):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4000, size=(10, 12, 14), dtype=np.uint16)
    ds = mr_dataset(pixels, position=(-5.0, 8.0, 20.0), orientation=ORIENTATION,
                    spacing=(0.7, 0.8), **tags)
    path = tmp_path / "classic.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, pixels


def test_classic_multiframe_without_frame_positions_is_refused_in_one_line(tmp_path):
    _classic(tmp_path)
    with pytest.raises(BadInputError, match=r"classic\.dcm: classic multi-frame image with 10 "
                       r"frames but one ImagePositionPatient") as err:
        load_dicom(tmp_path)
    assert "\n" not in str(err.value)


def test_classic_multiframe_placed_by_grid_frame_offsets(tmp_path):
    offsets = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    _, pixels = _classic(tmp_path, FrameIncrementPointer=0x3004000C,
                         GridFrameOffsetVector=[f"{v:g}" for v in offsets])
    vol = load_dicom(tmp_path)
    assert vol.geometry.size == (14, 12, 10)
    assert vol.geometry.spacing_mm == pytest.approx((0.8, 0.7, 2.0))
    for z, offset in enumerate(offsets):
        at = vol.geometry.index_to_lps(np.array([0, 0, z]))
        assert np.linalg.norm(at - np.array([-5.0, 8.0, 20.0 + offset])) < 0.01
    np.testing.assert_array_equal(vol.array, pixels)


def _enhanced_two_stacks(tmp_path):
    """An enhanced CT of 6 frames: two 3-slice stacks at the same positions (values +1000)."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    paths = write_stack(tmp_path / "a", [_at(2.0 * k) for k in range(3)])
    paths += write_stack(tmp_path / "b", [_at(2.0 * k) for k in range(3)],
                         hu=lambda p: np.full(p.shape[:-1], 1000.0))
    datasets = [pydicom.dcmread(p) for p in paths]
    uid = pydicom.uid.generate_uid()
    for n, ds in enumerate(datasets):
        ds.PatientBirthDate, ds.PatientSex, ds.SeriesInstanceUID = "19700101", "O", uid
        ds.StudyInstanceUID = datasets[0].StudyInstanceUID
        ds.FrameOfReferenceUID = datasets[0].FrameOfReferenceUID
        ds.InstanceNumber = n + 1
    enhanced = LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=uid, series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1)
    path = tmp_path / "multi" / "enhanced.dcm"
    path.parent.mkdir()
    enhanced.save_as(path)
    return path


def test_enhanced_volumes_told_apart_by_diffusion_direction(tmp_path):
    path = _enhanced_two_stacks(tmp_path)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    for f, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        direction = Dataset()  # stack b (constant frames) along y, stack a along x
        direction.DiffusionGradientOrientation = (
            [0.0, 1.0, 0.0] if np.ptp(stored[f]) == 0 else [1.0, 0.0, 0.0])
        diffusion = Dataset()
        diffusion.DiffusionBValue = 1000.0
        diffusion.DiffusionGradientDirectionSequence = Sequence([direction])
        frame.MRDiffusionSequence = Sequence([diffusion])
    ds.save_as(path)
    vol = load_dicom(path.parent, volume=1)  # directions sort as text: y first
    assert vol.geometry.size[2] == 3
    assert np.all(vol.array == 1000)
    assert any("told apart by direction" in w and "Volume 1 (direction 0.000,1.000,0.000)" in w
               for w in vol.warnings)
    other = load_dicom(path.parent, volume=2)
    assert other.geometry == vol.geometry and np.ptp(other.array) > 0
