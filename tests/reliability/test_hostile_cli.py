"""Hostile third-party plug-ins through the command line: one line naming the plug-in, exit
code 1 (a failed result) or 2 (bad input), bundled simulators still listed and working, and
the case bundle on disk byte-identical afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.reliability.conftest import IMPORT_TIMEOUT_S, POINTS, cli_env, file_digest

PROJECT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _cli(args: list[str], plugin_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surgiplan", *args], capture_output=True,
                          text=True, env=cli_env(plugin_dir), cwd=PROJECT, timeout=120)


def _one_line_naming(proc: subprocess.CompletedProcess, name: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def listed(hostile_dir):
    """``simulators list --json`` after a first check of the plug-ins (here in-process, it
    fills the same user cache): its time is what a user waits for from then on."""
    from surgiplan.simulation import discover

    discover(refresh=True)
    started = time.monotonic()
    proc = _cli(["simulators", "list", "--json"], hostile_dir)
    return proc, time.monotonic() - started


def test_list_shows_bundled_enabled_and_hostile_isolated(listed):
    proc, elapsed = listed
    assert proc.returncode == 0, proc.stderr
    rows = {r["entry_point"]: r for r in json.loads(proc.stdout)}
    for name in ("trajectory", "implant", "ablation", "resection"):
        assert rows[name]["enabled"] and not rows[name]["isolated"]
    assert rows["hostile-segfault"]["enabled"] and rows["hostile-segfault"]["isolated"]
    assert not rows["hostile-import-hang"]["enabled"]
    assert "SIGSEGV" in rows["hostile-import-crash"]["reason"]
    assert elapsed < IMPORT_TIMEOUT_S + 8  # the hanging import is not waited for again


@pytest.mark.parametrize(("sim_id", "extra", "expected"), [
    ("hostile-segfault", [], "killed by SIGSEGV"),
    ("hostile-gil-hang", ["--timeout", "2"], "did not finish within 2 s"),
    ("hostile-nan", [], "returned an invalid result"),
])
def test_simulate_with_a_hostile_plugin_fails_in_one_line(listed, hostile_dir, case_bundle,
                                                          sim_id, extra, expected):
    before = file_digest(case_bundle)
    proc = _cli(["simulate", "trajectory", str(case_bundle), *POINTS, "--simulator", sim_id,
                 "--json", *extra], hostile_dir)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "failed"
    assert expected in _one_line_naming(proc, sim_id)
    assert file_digest(case_bundle) == before


@pytest.mark.parametrize(("sim_id", "extra", "expected"), [
    ("hostile-segfault", [], "killed by SIGSEGV"),
    ("hostile-gil-hang", ["--timeout", "2"], "did not finish within 2 s"),
])
def test_plan_path_with_a_hostile_plugin_fails_in_one_line(listed, hostile_dir, case_bundle,
                                                           sim_id, extra, expected):
    before = file_digest(case_bundle)
    proc = _cli(["plan-path", str(case_bundle), "--target=12,12,12", "--simulator", sim_id,
                 "--json", *extra], hostile_dir)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "failed"
    assert expected in _one_line_naming(proc, sim_id)
    assert file_digest(case_bundle) == before


def test_a_plugin_that_crashed_at_import_is_bad_input_naming_it(listed, hostile_dir,
                                                                case_bundle):
    proc = _cli(["simulate", "trajectory", str(case_bundle), *POINTS, "--simulator",
                 "hostile-import-crash"], hostile_dir)
    assert proc.returncode == 2
    assert "installed but disabled" in _one_line_naming(proc, "hostile-import-crash")


def test_bundled_simulator_still_works_with_hostile_plugins_installed(listed, hostile_dir,
                                                                     case_bundle):
    before = file_digest(case_bundle)
    proc = _cli(["simulate", "trajectory", str(case_bundle), *POINTS, "--samples", "100"],
                hostile_dir)
    assert proc.returncode == 0, proc.stderr
    assert "vessel:" in proc.stdout
    assert file_digest(case_bundle) == before


def test_a_plugin_process_that_ignores_sigterm_does_not_keep_the_cli_alive(listed, hostile_dir,
                                                                         case_bundle):
    started = time.monotonic()
    proc = _cli(["simulate", "trajectory", str(case_bundle), *POINTS, "--simulator",
                 "hostile-stubborn", "--json"], hostile_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"
    assert time.monotonic() - started < 60
