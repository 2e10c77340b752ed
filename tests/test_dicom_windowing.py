"""Default window/level of a loaded series: the series' own window (median over its slices)
when present and sane for the whole volume, else the whole volume's histogram; never the
window one edge slice carries."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from surgiplan.io.dicom_load import load_dicom, robust_range
from surgiplan.model.volume import ImageVolume
from tests.conftest import real_scan
from tests.dicom_corpus import mr_dataset

NZ = 9


def write_mr(folder, windows: list[tuple[float, float] | None]) -> np.ndarray:
    """An MR stack (values 0..2000, brighter towards the middle slices) with one window per
    slice (None: no window tags)."""
    uid = pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    arrays = []
    for z, window in enumerate(windows):
        level = 2000 * np.sin(np.pi * (z + 0.5) / len(windows))
        pixels = np.clip(rng.normal(level, 80, (16, 16)), 0, 4000).astype(np.uint16)
        tags = {} if window is None else {"WindowCenter": f"{window[0]:g}",
                                          "WindowWidth": f"{window[1]:g}"}
        ds = mr_dataset(pixels, position=(0.0, 0.0, 2.0 * z),
                        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), series_uid=uid,
                        InstanceNumber=z + 1, **tags)
        ds.save_as(folder / f"IM{z}.dcm", enforce_file_format=True)
        arrays.append(pixels)
    return np.stack(arrays)


def _shows_most_of_the_volume(vol: ImageVolume) -> bool:
    """True when the default window neither saturates nor blacks out most voxels."""
    from surgiplan.ui.views.windowing import default_window

    center, width = default_window(vol)
    inside = np.abs(vol.array.astype(np.float64) - center) < width / 2
    return bool(inside.mean() > 0.8)


def test_per_slice_windows_give_their_median_not_the_edge_slice(tmp_path):
    windows = [(20.0, 40.0)] + [(1000.0 + 10 * z, 2000.0) for z in range(1, NZ)]
    write_mr(tmp_path, windows)
    vol = load_dicom(tmp_path)
    assert (vol.window_center, vol.window_width) == (1040.0, 2000.0)  # median of 20, 1010 ... 1080
    assert _shows_most_of_the_volume(vol)


@pytest.mark.parametrize("window", [(20.0, 40.0), (9000.0, 500.0), (-3000.0, 400.0)],
                         ids=["narrow", "above", "below"])
def test_insane_series_window_falls_back_to_the_whole_volume(tmp_path, window):
    write_mr(tmp_path, [window] * NZ)
    vol = load_dicom(tmp_path)
    assert vol.window_center is None and vol.window_width is None
    assert _shows_most_of_the_volume(vol)


def test_slices_without_window_fall_back_to_the_whole_volume(tmp_path):
    write_mr(tmp_path, [(20.0, 40.0)] + [None] * (NZ - 1))
    vol = load_dicom(tmp_path)
    assert vol.window_center is None
    assert _shows_most_of_the_volume(vol)


def test_consistent_sane_window_is_kept(tmp_path):
    write_mr(tmp_path, [(1100.0, 2400.0)] * NZ)
    vol = load_dicom(tmp_path)
    assert (vol.window_center, vol.window_width) == (1100.0, 2400.0)


def test_robust_range_uses_every_slice(tmp_path):
    array = write_mr(tmp_path, [None] * NZ)
    _, hi = robust_range(array)
    assert hi > 1800  # the bright middle slices count, not only the dark edge ones


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["head-mr-t1-mprage", "head-mr-t1-jpeg2000-frag"])
def test_real_mr_series_open_unsaturated(name):
    """Under 2 % of the object's voxels saturate white (the edge slice's own window saturated
    11 % of the MPRAGE and all of the phantom), none go black."""
    from surgiplan.ui.views.windowing import default_window

    vol = load_dicom(real_scan(name))
    center, width = default_window(vol)
    body = vol.array[vol.array > 0.05 * vol.array.max()]
    assert (body > center + width / 2).mean() < 0.02
    assert (body < center - width / 2).mean() < 0.02
