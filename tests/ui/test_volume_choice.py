"""A series holding several volumes at the same slice positions (echoes here) asks which one to
load in the app; the chosen volume is loaded and named in the warnings, and cancelling loads
nothing (issue 12, item 4)."""

from __future__ import annotations

import numpy as np

from surgiplan.io.dicom_scan import scan_dicom
from tests.test_dicom_multivolume import write_volumes


def _series(tmp_path):
    expected = write_volumes(tmp_path / "echoes", [{"EchoNumbers": 1}, {"EchoNumbers": 2}])
    scan = scan_dicom(tmp_path / "echoes")
    assert len(scan.series) == 1
    return scan.series[0], expected


def test_the_user_picks_the_volume_and_it_is_named(qtbot, window, tmp_path):
    series, expected = _series(tmp_path)
    offered = []
    window.choose_volume_hook = lambda volumes: offered.append(volumes) or 2
    window.load_series(series)
    qtbot.waitUntil(lambda: window.twin is not None, timeout=30_000)
    labels = [v.label for v in offered[0]]
    assert len(labels) == 2 and all("echo" in text.lower() for text in labels), labels
    assert np.array_equal(window.twin.image.array, expected[1])
    assert any("Volume 2" in w for w in window.twin.image.warnings), window.twin.image.warnings


def test_cancelling_the_choice_loads_nothing(qtbot, window, tmp_path):
    series, _ = _series(tmp_path)
    window.choose_volume_hook = lambda volumes: 0
    window.load_series(series)
    qtbot.wait(300)
    assert window.twin is None
