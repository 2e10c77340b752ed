"""The bad-input corpus: every case ends in a clear BadInputError or a correct, warned load.

Never a hang (each case runs under an alarm), never a traceback from the CLI, never a volume on
a wrong grid.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from surgiplan.errors import BadInputError
from surgiplan.io.dicom_load import load_dicom
from tests.conftest import PROJECT_ROOT, time_limit
from tests.dicom_corpus import CASE_NAMES, build_case

TIMEOUT_S = 20


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory):
    return tmp_path_factory.mktemp("dicom_corpus")


@pytest.fixture(scope="session")
def cases(corpus_root):
    built: dict = {}

    def get(name: str):
        if name not in built:
            built[name] = build_case(corpus_root, name)
        return built[name]

    return get


def test_corpus_is_large_enough():
    assert len(CASE_NAMES) >= 25


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_outcome(cases, name):
    case = cases(name)
    if case.skip_reason:
        pytest.skip(case.skip_reason)
    with time_limit(TIMEOUT_S):
        if case.expect == "error":
            with pytest.raises(BadInputError) as err:
                load_dicom(case.path)
            message = str(err.value)
            assert re.search(case.pattern, message), message
            assert "\n" not in message
            assert str(case.path) in message, f"message does not name the input: {message}"
            assert message.endswith(".") and ". " in message, f"no action given: {message}"
            return
        volume = load_dicom(case.path)
    joined = " | ".join(volume.warnings)
    if case.pattern:
        assert re.search(case.pattern, joined), joined
    if case.geometry is not None:
        assert volume.geometry == case.geometry, (volume.geometry, case.geometry)
    assert volume.array.shape == volume.geometry.shape_zyx


def _info(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surgiplan", "info", "--json", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)


@pytest.mark.parametrize("name", ["empty_folder", "missing_ipp", "truncated_pixels", "sr_only",
                                  "absurd_dimensions"])
def test_info_cli_exits_2_with_one_line(cases, name):
    case = cases(name)
    out = _info(case.path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surgiplan: ")
    report = json.loads(out.stdout)
    assert set(report) >= {"series", "non_image", "problems"}
    assert not any(s["loadable"] for s in report["series"])


def test_info_cli_reports_planned_geometry(cases):
    case = cases("gantry_tilt")
    out = _info(case.path)
    assert out.returncode == 0, out.stderr
    (series,) = json.loads(out.stdout)["series"]
    volume = load_dicom(case.path)
    assert series["loadable"] is True
    assert series["size"] == list(volume.geometry.size)
    assert series["spacing_mm"] == pytest.approx(list(volume.geometry.spacing_mm))
    assert series["origin_lps"] == pytest.approx(list(volume.geometry.origin_lps))
    assert series["direction"] == pytest.approx(list(volume.geometry.direction.reshape(-1)))
    assert any("sheared" in w for w in series["warnings"])
