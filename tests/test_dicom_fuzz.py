"""Mutation fuzzing of the DICOM import: damaged files never escape as a traceback or hang.

A small valid CT series is written, then one file at a time is damaged (bytes flipped in the
header, the file cut short, a header region overwritten). For each mutant the loader must end
in a ``BadInputError`` or in a volume that is either on the original grid or comes with a
warning that says why it differs. ``scan_dicom`` never raises for a damaged file at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from surgiplan.io.dicom_scan import scan_dicom
from surgiplan.io.dicom_write import write_series
from surgiplan.model import ImageGeometry, ImageVolume
from tests.conftest import time_limit

# More mutants: SURGIPLAN_FUZZ_N=20000 (the default keeps CI quick).
N_MUTANTS = int(os.environ.get("SURGIPLAN_FUZZ_N", "400"))
TIMEOUT_S = 10


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, ImageGeometry]:
    folder = tmp_path_factory.mktemp("fuzz_original")
    g = ImageGeometry((24, 20, 8), (0.7, 0.7, 2.0), (-8.0, -7.0, 30.0))
    ramp = np.arange(g.n_voxels, dtype=np.int16).reshape(g.shape_zyx) % 1500 - 500
    write_series(ImageVolume(ramp, g, modality="CT"), folder, patient_id="FUZZ")
    return folder, g


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(4)
    header_end = min(len(data), 1200)  # tags live here; pixel data follows
    if kind == 0:  # flip a few bytes in the header
        buf = bytearray(data)
        for pos in rng.integers(128, header_end, size=rng.integers(1, 6)):
            buf[pos] ^= int(rng.integers(1, 256))
        return bytes(buf)
    if kind == 1:  # cut the file short anywhere
        return data[: int(rng.integers(0, len(data)))]
    if kind == 2:  # overwrite a run of header bytes with random bytes
        start = int(rng.integers(132, header_end - 16))
        run = rng.integers(0, 256, size=int(rng.integers(2, 16)), dtype=np.uint8).tobytes()
        return data[:start] + run + data[start + len(run):]
    # set a 4-byte length field somewhere in the header to a huge value
    start = int(rng.integers(132, header_end - 4))
    return data[:start] + b"\xff\xff\xff\x7f" + data[start + 4:]


@pytest.mark.parametrize("seed", range(N_MUTANTS))
def test_damaged_file_gives_clear_error_or_right_grid(original, tmp_path, seed):
    folder, geometry = original
    work = tmp_path / "series"
    shutil.copytree(folder, work)
    rng = np.random.default_rng(seed)
    files = sorted(work.iterdir())
    victim = files[int(rng.integers(len(files)))]
    victim.write_bytes(_mutate(victim.read_bytes(), rng))
    with time_limit(TIMEOUT_S):
        scan = scan_dicom(work)  # must never raise for damaged files
        assert scan.series or scan.problems
        try:
            volume = load_dicom(work)
        except BadInputError as exc:
            message = str(exc)
            assert "\n" not in message and len(message) < 600
            return
    if volume.geometry.same_grid(geometry, tol_mm=1e-3):
        return
    # A different grid is only acceptable when the loader says why (file dropped, gap...)
    notes = volume.warnings + [p.reason for p in scan.problems]
    assert notes, f"silently different grid: {volume.geometry} vs {geometry}"


def test_label_maps_beside_a_series_are_not_reported_as_missing_slices(original, tmp_path):
    folder, geometry = original
    work = tmp_path / "series"
    shutil.copytree(folder, work)
    (work / "liver_seg.nrrd").write_bytes(b"NRRD0004\n# not DICOM\n")
    (work / "IM_9999.dcm").write_bytes(b"\x00" * 64)  # a DICOM-named file that is damaged
    volume = load_dicom(work)
    assert volume.geometry.same_grid(geometry)
    skipped = [w for w in volume.warnings if "skipped" in w]
    assert len(skipped) == 1 and "IM_9999.dcm" in skipped[0] and "1 file(s)" in skipped[0]
