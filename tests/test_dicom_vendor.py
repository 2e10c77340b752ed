"""Vendor traps dcm2niix corrects: GE epi_pepolar reversed-polarity images stored mirrored,
Philips DIRFILE index files beside a series, and a 1 mm stack with one slice missing."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from surgiplan.io.dicom_scan import scan_dicom
from tests.conftest import real_scan
from tests.dicom_corpus import mr_dataset
from tests.test_dicom_load import _at, write_stack

NZ, NY, NX = 3, 8, 5


def write_ge_epi(folder, *, sequence: str, reordering: str | None,
                 phase_direction: str = "COL") -> np.ndarray:
    """A GE EPI stack whose pixel values grow down the rows (10 * row + column + 100 * z)."""
    uid = pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    jj, ii = np.mgrid[0:NY, 0:NX]
    stored = []
    for z in range(NZ):
        pixels = (10 * jj + ii + 100 * z).astype(np.uint16)
        tags = {"Manufacturer": "GE MEDICAL SYSTEMS", "InstanceNumber": z + 1,
                "InPlanePhaseEncodingDirection": phase_direction}
        if reordering:
            tags["RectilinearPhaseEncodeReordering"] = reordering
        ds = mr_dataset(pixels, position=(0.0, 0.0, 3.0 * z),
                        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), series_uid=uid, **tags)
        ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x9C, "LO", sequence)
        ds.save_as(folder / f"IM{z}.dcm", enforce_file_format=True)
        stored.append(pixels)
    return np.stack(stored)


def test_ge_epi_pepolar_reversed_volume_is_flipped_back_with_a_warning(tmp_path):
    stored = write_ge_epi(tmp_path, sequence="research/ABCD/epi_pepolar",
                          reordering="REVERSE_LINEAR")
    vol = load_dicom(tmp_path)
    np.testing.assert_array_equal(vol.array, stored[:, ::-1, :])
    assert any("epi_pepolar reversed-polarity" in w and "flipped back front-to-back" in w
               for w in vol.warnings)


def test_ge_epi_pepolar_row_phase_encoding_flips_columns(tmp_path):
    stored = write_ge_epi(tmp_path, sequence="research/ABCD/epi_pepolar",
                          reordering="REVERSE_LINEAR", phase_direction="ROW")
    np.testing.assert_array_equal(load_dicom(tmp_path).array, stored[:, :, ::-1])


@pytest.mark.parametrize(("sequence", "reordering"), [
    ("research/ABCD/epi_pepolar", "LINEAR"), ("epi", "REVERSE_LINEAR"), ("epi", None)])
def test_forward_or_product_ge_epi_is_left_as_stored(tmp_path, sequence, reordering):
    stored = write_ge_epi(tmp_path, sequence=sequence, reordering=reordering)
    vol = load_dicom(tmp_path)
    np.testing.assert_array_equal(vol.array, stored)
    assert not any("epi_pepolar" in w for w in vol.warnings)


def test_ge_epi_pepolar_without_polarity_tag_is_refused(tmp_path):
    write_ge_epi(tmp_path, sequence="research/ABCD/epi_pepolar", reordering=None)
    with pytest.raises(BadInputError, match=r"IM\d\.dcm: GE epi_pepolar image without "
                       r"RectilinearPhaseEncodeReordering") as err:
        load_dicom(tmp_path)
    assert "\n" not in str(err.value)


def test_philips_dirfile_beside_a_series_is_an_index_not_missing_slices(tmp_path):
    write_stack(tmp_path / "DICOM", [_at(1.0 * k) for k in range(4)])
    (tmp_path / "DIRFILE").write_bytes(os.urandom(3000))
    scan = scan_dicom(tmp_path)
    assert not scan.problems
    assert [o.kind for o in scan.non_image] == ["Philips DIRFILE index"]
    vol = load_dicom(tmp_path)
    assert vol.geometry.size[2] == 4
    assert not any("missing" in w for w in vol.warnings)


@pytest.mark.realdata
def test_mprage_with_one_slice_missing_keeps_its_1mm_grid(tmp_path):
    source = real_scan("head-mr-t1-mprage")
    files = sorted(source.glob("*.dcm"))
    for path in files:
        if path.name != "1301_0085.dcm":
            os.symlink(path, tmp_path / path.name)
    vol = load_dicom(tmp_path)
    full = load_dicom(source)
    assert vol.geometry.size == (256, 256, 170) == full.geometry.size
    assert vol.geometry.spacing_mm == pytest.approx((1.0, 1.0, 1.0), abs=1e-3)
    assert np.allclose(vol.geometry.origin_lps, full.geometry.origin_lps, atol=0.01)
    assert any("missing slices" in w and "169 slices -> 170 planes" in w for w in vol.warnings)
    diff = np.abs(vol.array.astype(np.float64) - full.array).reshape(170, -1).max(axis=1)
    assert int(np.argmax(diff)) == 84  # the missing slice's plane is the interpolated one
    assert np.delete(diff, 84).max() < 0.05  # every other plane is its own slice (float32)
