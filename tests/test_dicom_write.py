"""write_series: real DICOM files whose geometry and values round-trip through SimpleITK."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from surgiplan.errors import CancelledError
from surgiplan.io.dicom_write import stored_values, write_series
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.progress import CancelToken


def _oblique_direction(angle: float = 0.3) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return rz @ rx


def _ct_volume(shape=(7, 20, 24), seed=0) -> ImageVolume:
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1024, 3000, size=shape).astype(np.int16)
    nz, ny, nx = shape
    geo = ImageGeometry((nx, ny, nz), (0.7, 0.8, 2.5), (-100.0, -120.5, 50.25),
                        _oblique_direction())
    return ImageVolume(arr, geo, modality="CT", window_center=40, window_width=400)


def _read_sitk(paths) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    return reader.Execute()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_ct_round_trips_through_simpleitk(tmp_path, syntax):
    vol = _ct_volume()
    paths = write_series(vol, tmp_path, transfer_syntax=syntax)
    assert [p.name for p in paths] == [f"IM_{k:04d}.dcm" for k in range(1, 8)]
    img = _read_sitk(paths)
    assert ImageGeometry.from_sitk(img) == vol.geometry
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.array)


def test_headers_are_valid_dicom(tmp_path):
    vol = _ct_volume()
    paths = write_series(vol, tmp_path, patient_name="Doe^Jane", patient_id="P1",
                         series_description="axial", study_uid="1.2.3", series_uid="1.2.3.4")
    raw = paths[0].read_bytes()
    assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
    ds = pydicom.dcmread(paths[2])
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.PatientName, ds.PatientID, ds.SeriesDescription) == ("Doe^Jane", "P1", "axial")
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == ("1.2.3", "1.2.3.4")
    assert ds.Manufacturer == "SurgiPlan"
    assert ds["KVP"].is_empty and ds["Laterality"].is_empty  # type 2: present, unknown
    assert ds.InstanceNumber == 3
    assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40, 400)
    assert [float(v) for v in ds.PixelSpacing] == [0.8, 0.7]  # [row (y), column (x)]
    geo = vol.geometry
    np.testing.assert_allclose(np.asarray(ds.ImageOrientationPatient, float),
                               geo.direction[:, :2].T.reshape(-1), atol=1e-9)
    np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float),
                               geo.index_to_lps([0, 0, 2]), atol=1e-6)
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths}
    assert len(uids) == len(paths)


def test_float_mr_is_scaled_with_slope_and_intercept(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.uniform(-3.5, 812.25, size=(4, 10, 12)).astype(np.float32)
    geo = ImageGeometry((12, 10, 4), (1.0, 1.0, 1.0), (0, 0, 0))
    paths = write_series(ImageVolume(arr, geo, modality="MR"), tmp_path)
    assert pydicom.dcmread(paths[0]).SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    back = sitk.GetArrayFromImage(_read_sitk(paths))
    step = (812.25 + 3.5) / 65535
    assert np.max(np.abs(back - arr)) <= step


def test_stored_values_choose_the_cheapest_exact_encoding():
    hu = np.array([-1024, 0, 3000], dtype=np.int16)
    stored, slope, intercept = stored_values(hu, "CT")
    assert stored.dtype == np.int16 and (slope, intercept) == (1.0, -1024.0)
    assert stored.tolist() == [0, 1024, 4024]
    stored, _, _ = stored_values(np.array([-1000, 40000]), "CT")
    assert stored.dtype == np.uint16 and stored.tolist() == [24, 41024]
    stored, _, _ = stored_values(np.array([-3024.0, 10.0]), "CT")
    assert stored.dtype == np.int16 and stored.tolist() == [-2000, 1034]
    stored, slope, intercept = stored_values(np.array([0, 40000]), "MR")
    assert stored.dtype == np.uint16 and (slope, intercept) == (1.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        stored_values(np.array([0.0, np.nan]), "MR")


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_compressed_syntaxes_decode_to_the_same_values(tmp_path, syntax):
    vol = _ct_volume(shape=(2, 40, 48))
    paths = write_series(vol, tmp_path, transfer_syntax=syntax)
    ds = pydicom.dcmread(paths[1])
    assert ds.file_meta.TransferSyntaxUID == syntax
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, vol.array[1])


def test_progress_and_cancel(tmp_path):
    seen = []
    write_series(_ct_volume(), tmp_path / "a", progress=lambda f, _t: seen.append(f))
    assert seen[-1] == 1.0 and len(seen) == 7
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        write_series(_ct_volume(), tmp_path / "b", cancel=token)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, JPEGLSLossless])
def test_round_trips_through_our_loader(tmp_path, syntax):
    from surgiplan.io.dicom_load import load_dicom

    vol = _ct_volume()
    write_series(vol, tmp_path, transfer_syntax=syntax)
    back = load_dicom(tmp_path)
    assert back.geometry == vol.geometry
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.warnings == []
    assert back.metadata["patient"]["name"] == "Phantom^Anon"
