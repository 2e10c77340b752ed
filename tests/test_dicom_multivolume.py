"""Several volumes at the same slice positions (DWI, fMRI, echoes, magnitude/phase): grouped by
the attribute that separates them, one chosen by the caller (named in the warnings), listed by
``surgiplan info``; never one silently picked or a mix of them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from tests.dicom_corpus import mr_dataset

NZ, NY, NX = 4, 6, 7
ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_volumes(folder, variants: list[dict]) -> list[np.ndarray]:
    """One classic single-frame file per (variant, slice), all in one series; the pixels of
    variant v, slice z are all equal to 100 * v + z. Returns the expected arrays."""
    uid = pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    expected = []
    for v, tags in enumerate(variants):
        arrays = []
        for z in range(NZ):
            pixels = np.full((NY, NX), 100 * v + z, np.uint16)
            ds = mr_dataset(pixels, position=(0.0, 0.0, 2.0 * z), orientation=ORIENTATION,
                            series_uid=uid, InstanceNumber=v * NZ + z + 1, **tags)
            ds.save_as(folder / f"v{v}_z{z}.dcm", enforce_file_format=True)
            arrays.append(pixels)
        expected.append(np.stack(arrays))
    return expected


@pytest.mark.parametrize(("variants", "label"), [
    ([{"DiffusionBValue": b} for b in (0.0, 1000.0, 2000.0)], "b-value 1000 s/mm2"),
    ([{"TemporalPositionIdentifier": t} for t in (1, 2, 3)], "time 2"),
    ([{"EchoNumbers": e} for e in (1, 2, 3)], "echo 2"),
    ([{"ImageType": ["ORIGINAL", "PRIMARY", "M_FFE", kind, "FFE"]} for kind in "MPR"],
     r"image type M_FFE\P\FFE"),
], ids=["dwi", "fmri", "echoes", "magnitude-phase"])
def test_volumes_are_told_apart_and_chosen(tmp_path, variants, label):
    expected = write_volumes(tmp_path, variants)
    vol = load_dicom(tmp_path, volume=2)
    np.testing.assert_array_equal(vol.array, expected[1])
    note = next(w for w in vol.warnings if "volumes at the same slice positions" in w)
    assert f"Volume 2 ({label}) was loaded as chosen" in note
    first = load_dicom(tmp_path)
    np.testing.assert_array_equal(first.array, expected[0])
    assert any("3 volumes" in w and "choose another with --volume N" in w
               for w in first.warnings)


def test_siemens_private_b_value_separates_volumes(tmp_path):
    uid = pydicom.uid.generate_uid()
    for v, b in enumerate((0, 800)):
        for z in range(NZ):
            ds = mr_dataset(np.full((NY, NX), 100 * v + z, np.uint16),
                            position=(0.0, 0.0, 2.0 * z), orientation=ORIENTATION,
                            series_uid=uid, InstanceNumber=v * NZ + z + 1, Manufacturer="SIEMENS")
            ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", b)
            ds.save_as(tmp_path / f"v{v}_z{z}.dcm", enforce_file_format=True)
    vol = load_dicom(tmp_path, volume=2)
    assert vol.array[:, 0, 0].tolist() == [100, 101, 102, 103]
    assert any("Volume 2 (b-value 800 s/mm2)" in w for w in vol.warnings)


def test_echoes_and_image_types_combine(tmp_path):
    variants = [{"ImageType": ["ORIGINAL", "PRIMARY", "M_FFE", kind, "FFE"], "EchoNumbers": e}
                for kind in "MP" for e in (1, 2)]
    expected = write_volumes(tmp_path, variants)
    vol = load_dicom(tmp_path, volume=4)
    np.testing.assert_array_equal(vol.array, expected[3])
    assert any(r"told apart by image type and echo" in w for w in vol.warnings)


def test_a_volume_that_does_not_exist_is_one_line(tmp_path):
    write_volumes(tmp_path, [{"EchoNumbers": e} for e in (1, 2)])
    with pytest.raises(BadInputError, match=r"volume 3 does not exist: the series holds 2 "
                       r"volume\(s\): 1 = echo 1 \(4 slices\); 2 = echo 2") as err:
        load_dicom(tmp_path, volume=3)
    assert "\n" not in str(err.value)


def test_info_json_lists_the_volumes_and_plans_the_chosen_one(tmp_path):
    write_volumes(tmp_path, [{"DiffusionBValue": b} for b in (0.0, 500.0)])
    done = subprocess.run([sys.executable, "-m", "surgiplan", "info", str(tmp_path), "--json",
                           "--volume", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    series = json.loads(done.stdout)["series"][0]
    assert series["volumes"] == [
        {"index": 1, "label": "b-value 0 s/mm2", "n_slices": NZ},
        {"index": 2, "label": "b-value 500 s/mm2", "n_slices": NZ}]
    assert series["volume"] == 2 and series["size"] == [NX, NY, NZ]


def test_an_attribute_unique_per_slice_does_not_make_volumes(tmp_path):
    """AcquisitionNumber differs on every slice and one position holds two images: that is
    one stack with a clash (named), not five one-slice volumes."""
    uid = pydicom.uid.generate_uid()
    for n, z in enumerate([0, 1, 2, 3, 2]):
        ds = mr_dataset(np.full((NY, NX), 10 * n, np.uint16), position=(0.0, 0.0, 2.0 * z),
                        orientation=ORIENTATION, series_uid=uid, InstanceNumber=n + 1,
                        AcquisitionNumber=n + 1)
        ds.save_as(tmp_path / f"IM{n}.dcm", enforce_file_format=True)
    vol = load_dicom(tmp_path)
    assert vol.geometry.size == (NX, NY, 4)
    assert vol.array[:, 0, 0].tolist() == [0, 10, 20, 30]
    assert not any("volumes at the same slice positions" in w for w in vol.warnings)
    assert any("1 position(s) hold two different images" in w for w in vol.warnings)


def test_twin_build_volume_option_loads_the_chosen_volume(tmp_path):
    write_volumes(tmp_path / "dicom", [{"EchoNumbers": e} for e in (1, 2)])
    case = tmp_path / "case.surgiplan"
    done = subprocess.run([sys.executable, "-m", "surgiplan", "twin", "build",
                           str(tmp_path / "dicom"), "--out", str(case), "--volume", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = subprocess.run([sys.executable, "-m", "surgiplan", "twin", "info", str(case),
                           "--json"], capture_output=True, text=True, timeout=300)
    summary = json.loads(info.stdout)
    assert any("Volume 2 (echo 2) was loaded as chosen" in w for w in summary["warnings"])
    bad = subprocess.run([sys.executable, "-m", "surgiplan", "twin", "build",
                          str(tmp_path / "dicom"), "--out", str(tmp_path / "x.surgiplan"),
                          "--volume", "5"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "volume 5 does not exist" in bad.stderr
