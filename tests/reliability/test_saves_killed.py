"""Saves killed at random moments (SIGKILL, >= 100 times): the case file is always a whole old
or new version, never corrupt, and the temporary files the killed writers could not delete
(patient data) are gone after the next start (a load of the case, or the app's start-up)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import remove_stale_temps
from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.twin import Twin

KILLS = 120  # the slow test (SURGIPLAN_SLOW=1)
FAST_KILLS = 20  # its CI representative
MARGINS = (1.0, 2.0, 3.0, 4.0)


def _twin() -> Twin:
    """128x128x48 of noise (about 1.5 MB per save) with one critical structure."""
    geometry = ImageGeometry((128, 128, 48), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    rng = np.random.default_rng(3)
    image = rng.integers(-1000, 1500, geometry.shape_zyx, dtype=np.int16)
    twin = Twin(ImageVolume(image, geometry, modality="CT"))
    mask = np.zeros(geometry.shape_zyx, bool)
    mask[10:30, 40:80, 40:80] = True
    twin.add_structure("vessel", mask, role="critical", margin_mm=MARGINS[0])
    return twin


def _save_forever(twin: Twin, path: str) -> None:
    """The writer: saves over and over, each time with the next margin."""
    n = 0
    while True:
        n += 1
        twin.set_structure_properties("vessel", margin_mm=MARGINS[n % len(MARGINS)])
        save_bundle(twin, path, overwrite_changes=True)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_killed_saves_never_corrupt_and_leave_no_temp_files(tmp_path):
    _kill_saves(tmp_path, KILLS)


def test_a_few_killed_saves_never_corrupt_and_leave_no_temp_files(tmp_path):
    """CI's representative of the 120-kill test above (SURGIPLAN_SLOW=1): the same checks."""
    _kill_saves(tmp_path, FAST_KILLS)


def _kill_saves(tmp_path: Path, kills: int) -> None:
    """Kill a looping writer ``kills`` times at random moments; check the file after each."""
    twin = _twin()
    path = tmp_path / "case.surgiplan"
    save_bundle(twin, path)
    started = time.monotonic()
    save_bundle(twin, path, overwrite_changes=True)  # a warm save, timed
    # Kill moments spread over 0.6 s, or over three saves on a loaded machine (else no save
    # would ever complete and the check that the file took new versions could not pass).
    window_s = max(0.6, 3.0 * (time.monotonic() - started))
    context = multiprocessing.get_context("fork")  # the writer starts with everything imported
    rng = random.Random(11)
    corrupt, mid_save, loaded = [], 0, set()
    for kill in range(kills):
        writer = context.Process(target=_save_forever, args=(twin, str(path)), daemon=True)
        writer.start()
        time.sleep(rng.uniform(0.0, window_s))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        mid_save += bool(_temps(tmp_path))
        try:
            loaded.add(load_bundle(path).structure("vessel").margin_mm)  # sweeps the temps
        except BadInputError as exc:
            corrupt.append((kill, str(exc)))
        assert not _temps(tmp_path), f"kill {kill}: temporary files left after the load"
    print(f"{kills} kills, {mid_save} left temporary files, {len(corrupt)} corrupt")
    assert corrupt == []
    assert mid_save >= kills // 10, f"only {mid_save} kills landed during a save"
    assert loaded <= set(MARGINS) and len(loaded) > 1


def test_stale_temps_of_dead_writers_are_swept_and_live_ones_kept(tmp_path):
    context = multiprocessing.get_context("fork")
    dead = context.Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    stale = tmp_path / f".case.surgiplan.{dead.pid}.abcd1234.tmp"
    live = tmp_path / f".case.surgiplan.{os.getpid()}.efgh5678.tmp"
    old = tmp_path / ".case.surgiplan.ijkl9012.tmp"  # before pids were in the names
    other = tmp_path / "notes.tmp"
    for p in (stale, live, old, other):
        p.write_bytes(b"patient data")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([stale, old])
    assert live.exists() and other.exists()


def test_app_start_sweeps_autosave_temps(tmp_path):
    from surgiplan.ui.shell.autosave import Autosave

    context = multiprocessing.get_context("fork")
    dead = context.Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    session = tmp_path / f"session-{dead.pid}"
    session.mkdir()
    temp = session / f".autosave.surgiplan.{dead.pid}.zz00zz00.tmp"
    temp.write_bytes(b"patient data")
    Autosave(tmp_path)
    assert not temp.exists()
