"""Discovery never raises; crashing and hanging plug-ins give failed results; CLI keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.simulation import (
    SimulationContext,
    Status,
    TrajectoryInput,
    UncertaintyModel,
    discover,
    load_simulator,
    run_simulation,
    submit,
)
from surgiplan.simulation.discovery import GROUP
from surgiplan.twin import Twin
from tests.plugins_fixtures import FIXTURES, TEST_PLUGINS, install_entry_points

PROJECT = FIXTURES.parents[1]


@pytest.fixture
def test_plugins(tmp_path, monkeypatch):
    """The misbehaving plug-ins installed as entry points on a temporary sys.path entry."""
    install_entry_points(tmp_path, "sp_test_plugins", TEST_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(FIXTURES))
    return tmp_path


def small_context() -> SimulationContext:
    geometry = ImageGeometry((24, 24, 24), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    zz, yy, xx = np.indices(geometry.shape_zyx)
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    head = (xx - 12) ** 2 + (yy - 12) ** 2 + (zz - 12) ** 2 <= 10**2
    vessel = (xx - 12) ** 2 + (yy - 12) ** 2 + (zz - 12) ** 2 <= 3**2
    twin.add_structure("skin", head & ~vessel, role="skin")
    twin.add_structure("vessel", vessel, role="critical", margin_mm=2.0)
    return SimulationContext(twin)


INPUT = TrajectoryInput(entry_lps=(2.0, 12.0, 12.0), target_lps=(12.0, 12.0, 20.0))


def test_discovery_lists_broken_plugins_as_disabled_with_reasons(test_plugins):
    entries = {e.name: e for e in discover()}
    assert entries["test-crash"].enabled and entries["test-hang"].enabled
    broken = entries["test-broken-import"]
    assert not broken.enabled and "deliberately broken test plug-in module" in broken.reason
    old = entries["test-old-api"]
    assert not old.enabled and "API v99" in old.reason
    assert entries["trajectory"].enabled, entries["trajectory"].reason


def test_discovery_survives_a_plugin_whose_spec_is_invalid(tmp_path, monkeypatch):
    (tmp_path / "sp_bad_spec.py").write_text("class Bad:\n    spec = {'id': 'NOT VALID'}\n")
    install_entry_points(tmp_path, "sp_bad_spec", {"bad-spec": "sp_bad_spec:Bad"})
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = next(e for e in discover() if e.name == "bad-spec")
    assert not entry.enabled and "invalid simulator spec" in entry.reason


def test_importing_surgiplan_imports_no_plugin():
    code = ("import sys, surgiplan.simulation, surgiplan.cli.main; "
            "print(any(m.startswith('surgiplan_trajectory') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_crashing_plugin_gives_a_failed_result_with_its_message(test_plugins):
    result = run_simulation(load_simulator("test-crash"), small_context(), INPUT, timeout_s=10)
    assert result.status is Status.FAILED
    assert "RuntimeError: deliberate crash in the test plug-in" in result.error
    assert result.provenance.simulator_id == "test-crash"


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_hanging_plugin_times_out_and_the_caller_goes_on(test_plugins, isolation):
    progress: list[str] = []
    started = time.monotonic()
    result = run_simulation(load_simulator("test-hang"), small_context(), INPUT, timeout_s=0.5,
                            isolation=isolation, progress=lambda f, t: progress.append(t))
    assert time.monotonic() - started < 5
    assert result.status is Status.FAILED and "did not finish within 0.5 s" in result.error
    assert "about to hang" in progress
    ok = run_simulation(load_simulator("trajectory"), small_context(), INPUT)
    assert ok.status is Status.OK, ok.error


def test_a_hanging_run_can_be_cancelled(test_plugins):
    job = submit(load_simulator("test-hang"), small_context(), INPUT, timeout_s=30)
    time.sleep(0.1)
    job.cancel()
    result = job.wait(5)
    assert result is not None and result.status is Status.CANCELLED


def test_process_isolation_returns_the_real_result():
    context = small_context()
    sim = load_simulator("trajectory")
    model = UncertaintyModel(samples=200)
    in_thread = run_simulation(sim, context, INPUT, uncertainty=model)
    in_process = run_simulation(sim, context, INPUT, uncertainty=model, isolation="process")
    assert in_process.ok, in_process.error
    assert in_process.metric("min_distance_mm", "vessel").ci95 == \
        in_thread.metric("min_distance_mm", "vessel").ci95


def _cli(args: list[str], plugin_dir) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugin_dir), str(FIXTURES)]))
    return subprocess.run([sys.executable, "-m", "surgiplan", *args], capture_output=True,
                          text=True, env=env, cwd=PROJECT, timeout=120)


@pytest.fixture(scope="module")
def small_case(tmp_path_factory):
    from surgiplan.io.bundle import save_bundle

    path = tmp_path_factory.mktemp("case") / "small.surgiplan"
    save_bundle(small_context()._SimulationContext__twin, path)
    return path


def test_cli_reports_crash_and_hang_and_keeps_working(test_plugins, small_case):
    point = ["--entry=2,12,12", "--target=12,12,20"]
    crash = _cli(["simulate", "trajectory", str(small_case), *point, "--simulator",
                  "test-crash"], test_plugins)
    assert crash.returncode == 1
    assert "failed: simulator test-crash failed: RuntimeError: deliberate crash" in crash.stderr
    hang = _cli(["simulate", "trajectory", str(small_case), *point, "--simulator", "test-hang",
                 "--timeout", "1", "--json"], test_plugins)
    assert hang.returncode == 1 and json.loads(hang.stdout)["status"] == "failed"
    assert "did not finish within 1 s" in hang.stderr
    listing = _cli(["simulators", "list", "--json"], test_plugins)
    rows = {r["entry_point"]: r for r in json.loads(listing.stdout)}
    assert rows["trajectory"]["enabled"] and not rows["test-broken-import"]["enabled"]
    validate = _cli(["simulators", "validate"], test_plugins)
    assert validate.returncode == 1 and "DISABLED test-old-api" in validate.stdout
    good = _cli(["simulate", "trajectory", str(small_case), *point, "--samples", "100"],
                test_plugins)
    assert good.returncode == 0, good.stderr
    assert "vessel:" in good.stdout


def test_cli_bad_point_is_one_line_bad_input(small_case, tmp_path):
    bad = _cli(["simulate", "trajectory", str(small_case), "--entry=1,2", "--target=1,2,3"],
               tmp_path)
    assert bad.returncode == 2 and "X,Y,Z" in bad.stderr
    missing = _cli(["plan-path", str(tmp_path / "nope.surgiplan"), "--target=1,2,3"], tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_entry_point_group_name_is_the_documented_one():
    assert GROUP == "surgiplan.simulators"
