"""Every real series in ../shared/scans: geometry from the files' own slice positions, values
equal to SimpleITK's where SimpleITK is right, and the gantry-tilted CT placed in patient space
where its original slices say."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from surgiplan.io.dicom_load import load_series, plan_series_geometry
from surgiplan.io.dicom_scan import scan_dicom
from surgiplan.model.geometry import ImageGeometry
from tests.conftest import real_scan

pytestmark = pytest.mark.realdata

REGULAR = ["head-mr-t1-mprage", "abdomen-ct-contrast", "head-mr-t1-jpeg2000-frag",
           "liver-ct-3slice-seg/dicom"]


def _load(name: str):
    folder = real_scan(name.split("/")[0]) / "/".join(name.split("/")[1:])
    scan = scan_dicom(folder)
    assert len(scan.series) == 1 and not scan.problems
    series = scan.series[0]
    return folder, series, load_series(series)


def _sitk(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _first_slice_ipp(series, normal) -> np.ndarray:
    positions = np.array([h.position_lps for h in series.files])
    return positions[np.argmin(positions @ normal)]


@pytest.mark.parametrize("name", REGULAR)
def test_regular_series_match_slice_positions_and_simpleitk(name):
    folder, series, vol = _load(name)
    geo = vol.geometry
    assert plan_series_geometry(series) == (geo, [])
    assert vol.warnings == []
    normal = geo.direction[:, 2]
    np.testing.assert_allclose(geo.origin_lps, _first_slice_ipp(series, normal), atol=0.01)
    # every file's IPP is a voxel centre of the grid, on its own plane
    ijk = geo.lps_to_index([h.position_lps for h in series.files])
    np.testing.assert_allclose(ijk[:, :2], 0, atol=1e-3)
    np.testing.assert_allclose(ijk[:, 2], np.round(ijk[:, 2]), atol=1e-3)
    ref = _sitk(folder)
    ref_geo = ImageGeometry.from_sitk(ref)
    assert ref_geo.size == geo.size
    np.testing.assert_allclose(ref_geo.origin_lps, geo.origin_lps, atol=1e-3)
    np.testing.assert_allclose(ref_geo.direction, geo.direction, atol=1e-5)
    np.testing.assert_allclose(ref_geo.spacing_mm, geo.spacing_mm, rtol=1e-4)
    np.testing.assert_allclose(sitk.GetArrayFromImage(ref), vol.array, atol=1e-3)
    assert vol.metadata["files"] and vol.series_uid == series.series_uid


def test_jpeg2000_fragmented_frames_decode_exactly():
    _, _, vol = _load("head-mr-t1-jpeg2000-frag")
    assert int(vol.array.astype(np.int64).sum()) == 159015113
    assert vol.array.max() == 678
    assert vol.modality == "MR" and vol.units == ""


def test_feet_first_ct_orders_slices_inferior_to_superior_and_matches_labels():
    import nrrd

    folder, series, vol = _load("liver-ct-3slice-seg/dicom")
    assert series.files[0].instance_number == 1
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3), atol=1e-9)
    assert vol.geometry.origin_lps[2] == pytest.approx(-128.690002)  # lowest slice first
    header = nrrd.read_header(str(folder.parent / "labels" / "liver_seg.nrrd"))
    np.testing.assert_allclose(header["space origin"], vol.geometry.origin_lps, atol=0.01)
    assert vol.units == "HU" and vol.value_range() == (-3024.0, 1381.0)
    assert vol.metadata["patient"]["id"] == "99000"


def test_abdomen_ct_is_hounsfield_with_file_window():
    _, _, vol = _load("abdomen-ct-contrast")
    assert vol.array.dtype == np.int16
    assert vol.value_range() == (-1000.0, 1988.0)
    assert (vol.window_center, vol.window_width) == (60.0, 400.0)


def _slice_samples(series, step: int = 8):
    """LPS points of a pixel sub-grid of every original slice, and the slices' HU there."""
    out = []
    for h in series.files:
        ds = pydicom.dcmread(h.path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        iop = np.asarray(ds.ImageOrientationPatient, float)
        sy, sx = (float(v) for v in ds.PixelSpacing)
        jj, ii = np.mgrid[64:448:step, 64:448:step]
        pts = (np.asarray(ds.ImagePositionPatient, float) + ii[..., None] * sx * iop[:3]
               + jj[..., None] * sy * iop[3:])
        out.append((pts.reshape(-1, 3), hu[jj, ii].reshape(-1)))
    return out


def test_gantry_tilted_ct_voxels_land_where_the_original_slices_are():
    from scipy.ndimage import map_coordinates

    _, series, vol = _load("head-ct-gantry-tilt")
    assert any("sheared" in w for w in vol.warnings)
    geo = vol.geometry
    volume = vol.array.astype(np.float32)

    def mean_error(samples, shift_lps=(0.0, 0.0, 0.0)) -> float:
        pts = np.concatenate([p for p, _ in samples]) + np.asarray(shift_lps)
        hu = np.concatenate([v for _, v in samples])
        got = map_coordinates(volume, geo.lps_to_index(pts)[:, ::-1].T, order=1, mode="nearest")
        return float(np.abs(got - hu).mean())

    samples = _slice_samples(series)
    depth = [float(np.mean(p @ geo.direction[:, 2])) for p, _ in samples]
    first, last = int(np.argmin(depth)), int(np.argmax(depth))
    # The first slice is grid plane 0, on the grid's pixel lattice: it must match voxel for
    # voxel. The last one (sheared by 48 mm) is plane n-1 up to in-plane interpolation.
    assert mean_error([samples[first]]) < 0.5
    assert mean_error([samples[last]]) < 0.5 * mean_error([samples[last]], (0.0, 1.0, 1.0))
    # In between, interpolation blurs a little, but any displacement makes it worse.
    at_place = mean_error(samples)
    for axis in range(3):
        for sign in (-1, 1):
            moved = mean_error(samples, sign * 1.0 * geo.direction[:, axis])
            assert at_place < 0.85 * moved, (axis, sign, at_place, moved)
