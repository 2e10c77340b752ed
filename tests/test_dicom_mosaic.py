"""Siemens MOSAIC: unpacked into a volume whose every tile lands at its header position, or
refused with one line; never loaded as one 2-D slice."""

from __future__ import annotations

import re

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from tests.conftest import real_scan
from tests.dicom_corpus import add_siemens_mosaic, mr_dataset

TILES, TILE_ROWS, TILE_COLS, PER_ROW = 5, 6, 8, 3  # 5 tiles of 8x6 px in a 3x3 grid
SPACING = (0.9, 1.1)  # row spacing (y), column spacing (x), mm
STEP_MM = 3.6
A = np.radians(12.0)
ROW = np.array([1.0, 0.0, 0.0])
COL = np.array([0.0, np.cos(A), -np.sin(A)])
NORMAL = np.cross(ROW, COL)
FIRST = np.array([-20.0, 14.0, 31.0])  # corner (first pixel centre) of tile 0


def _tile_values(k: int, acquisition: int = 1) -> np.ndarray:
    jj, ii = np.mgrid[0:TILE_ROWS, 0:TILE_COLS]
    return (1000 * k + 10 * jj + ii + 7000 * (acquisition - 1)).astype(np.uint16)


def _mosaic_pixels(acquisition: int = 1) -> np.ndarray:
    out = np.zeros((TILE_ROWS * PER_ROW, TILE_COLS * PER_ROW), np.uint16)
    for k in range(TILES):
        r, c = divmod(k, PER_ROW)
        out[r * TILE_ROWS:(r + 1) * TILE_ROWS, c * TILE_COLS:(c + 1) * TILE_COLS] = \
            _tile_values(k, acquisition)
    return out


def _phoenix(sign: float) -> str:
    """Protocol slice centres (Siemens: centre at pixel N/2), as the CSA series header has."""
    lines = []
    for k in range(2):
        centre = (FIRST + sign * k * STEP_MM * NORMAL + ROW * SPACING[1] * TILE_COLS / 2
                  + COL * SPACING[0] * TILE_ROWS / 2)
        for axis, v in zip(("dSag", "dCor", "dTra"), centre, strict=True):
            lines.append(f"sSliceArray.asSlice[{k}].sPosition.{axis} = {v:.8f}")
    return "### ASCCONV BEGIN ###\n" + "\n".join(lines) + "\n### ASCCONV END ###\n"


def write_mosaic(path, *, sign: float = 1.0, csa: bool = True, protocol: bool = True,
                 acquisition: int = 1, series_uid: str = "", tiles: int = TILES) -> None:
    pixels = _mosaic_pixels(acquisition)
    rows, cols = pixels.shape
    corner = (FIRST - ROW * SPACING[1] * (cols - TILE_COLS) / 2
              - COL * SPACING[0] * (rows - TILE_ROWS) / 2)
    ds = mr_dataset(pixels, position=corner, orientation=(*ROW, *COL), spacing=SPACING,
                    series_uid=series_uid, SpacingBetweenSlices=f"{STEP_MM:g}",
                    AcquisitionNumber=acquisition, InstanceNumber=acquisition)
    add_siemens_mosaic(ds, tiles, sign * NORMAL if csa else None,
                       _phoenix(sign) if protocol else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _check_tiles(vol, sign: float, acquisition: int = 1) -> None:
    """Every tile's voxels sit where the header says (within 0.01 mm) with exact values."""
    geo = vol.geometry
    assert geo.size == (TILE_COLS, TILE_ROWS, TILES)
    inverse = np.linalg.inv(geo.direction * np.asarray(geo.spacing_mm))
    for k in range(TILES):
        corner = FIRST + sign * k * STEP_MM * NORMAL
        ijk = inverse @ (corner - np.asarray(geo.origin_lps))
        assert np.allclose(ijk[:2], 0.0, atol=0.01 / min(SPACING))
        z = round(ijk[2])
        assert abs(ijk[2] - z) * STEP_MM < 0.01
        far = geo.index_to_lps(np.array([TILE_COLS - 1, TILE_ROWS - 1, z]))
        expected = corner + ROW * SPACING[1] * (TILE_COLS - 1) + COL * SPACING[0] * (
            TILE_ROWS - 1)
        assert np.linalg.norm(far - expected) < 0.01
        np.testing.assert_array_equal(vol.array[z], _tile_values(k, acquisition))


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["ascending", "descending"])
def test_generated_mosaic_unpacks_to_header_positions(tmp_path, sign):
    write_mosaic(tmp_path / "m.dcm", sign=sign)
    vol = load_dicom(tmp_path)
    _check_tiles(vol, sign)
    assert vol.geometry.spacing_mm[2] == pytest.approx(STEP_MM, abs=1e-6)
    assert any("MOSAIC unpacked: 5 tiles of 8x6" in w for w in vol.warnings)
    assert not any("Single slice" in w for w in vol.warnings)


def test_spacing_without_protocol_comes_from_spacing_between_slices_with_warning(tmp_path):
    write_mosaic(tmp_path / "m.dcm", protocol=False)
    vol = load_dicom(tmp_path)
    _check_tiles(vol, 1.0)
    assert any("taken from SpacingBetweenSlices" in w for w in vol.warnings)


def test_mosaic_without_csa_normal_is_refused(tmp_path):
    write_mosaic(tmp_path / "m.dcm", csa=False)
    with pytest.raises(BadInputError, match=r"m\.dcm: Siemens MOSAIC image: no CSA "
                       r"SliceNormalVector.*slice order") as err:
        load_dicom(tmp_path)
    assert "\n" not in str(err.value)


def test_mosaic_whose_tiles_do_not_fit_is_refused(tmp_path):
    write_mosaic(tmp_path / "m.dcm", tiles=17)  # 5 per row: 24 columns do not divide
    with pytest.raises(BadInputError, match=r"cannot hold 17 tiles \(5 per row\)"):
        load_dicom(tmp_path)


def test_mosaic_time_series_is_volumes_by_acquisition(tmp_path):
    uid = pydicom.uid.generate_uid()
    for acq in (1, 2, 3):
        write_mosaic(tmp_path / f"m{acq}.dcm", acquisition=acq, series_uid=uid)
    vol = load_dicom(tmp_path, volume=2)
    _check_tiles(vol, 1.0, acquisition=2)
    assert any("3 volumes" in w and "acquisition" in w and "Volume 2 (acquisition 2)" in w
               for w in vol.warnings)
    first = load_dicom(tmp_path)
    _check_tiles(first, 1.0, acquisition=1)
    assert any("choose another with --volume N" in w for w in first.warnings)


# ------------------------------------------------------------------ the real Siemens file
def _protocol_centres(path) -> dict[int, np.ndarray]:
    from nibabel.nicom import csareader

    ds = pydicom.dcmread(path)
    text = csareader.get_csa_header(ds, "series")["tags"]["MrPhoenixProtocol"]["items"][0]
    centres: dict[int, np.ndarray] = {}
    for k, axis, value in re.findall(
            r"sSliceArray\.asSlice\[(\d+)\]\.sPosition\.(dSag|dCor|dTra)\s*=\s*(\S+)", text):
        centres.setdefault(int(k), np.zeros(3))[["dSag", "dCor", "dTra"].index(axis)] = \
            float(value)
    return centres


def test_real_siemens_mosaic_becomes_64x64x35_at_protocol_positions():
    folder = real_scan("odd-dicom") / "siemens-mosaic"
    vol = load_dicom(folder)
    assert vol.geometry.size == (64, 64, 35)
    assert vol.geometry.spacing_mm[:2] == (3.25, 3.25)
    # Siemens protocol slice centres sit at pixel (N/2, N/2) of each tile
    centres = _protocol_centres(folder / "1.dcm")
    assert len(centres) == 35
    for k, centre in centres.items():
        at = vol.geometry.index_to_lps(np.array([32, 32, k]))
        assert np.linalg.norm(at - centre) < 0.01, (k, at, centre)
    raw = pydicom.dcmread(folder / "1.dcm").pixel_array
    for k in (0, 7, 34):
        r, c = divmod(k, 6)
        np.testing.assert_array_equal(vol.array[k], raw[r * 64:(r + 1) * 64,
                                                        c * 64:(c + 1) * 64])


def test_mosaic_image_type_without_tile_count_is_refused(tmp_path):
    ds = mr_dataset(_mosaic_pixels(), position=FIRST, orientation=(*ROW, *COL), spacing=SPACING,
                    ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"])
    ds.save_as(tmp_path / "m.dcm", enforce_file_format=True)
    with pytest.raises(BadInputError, match=r"m\.dcm: ImageType says MOSAIC but the Siemens "
                       r"NumberOfImagesInMosaic \(0019,100A\) is missing"):
        load_dicom(tmp_path)
