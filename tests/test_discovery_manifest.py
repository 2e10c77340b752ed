"""Discovery from manifests: listing imports no simulator; the real class loads on first use."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from surgiplan.errors import BadInputError
from surgiplan.simulation import Status, UncertaintyModel, discover, load_simulator, run_simulation
from surgiplan.simulation.discovery import verify
from surgiplan.simulation.isolation import IsolatedSimulator
from surgiplan.simulation.manifest import (
    SCHEMA,
    LazySimulator,
    main,
    manifest_for,
    profile_to_json,
    read_manifest,
)
from tests.plugins_fixtures import FIXTURES, TEST_PLUGINS, install_entry_points
from tests.test_simulation_docs_example import _example
from tests.test_simulation_plugins import INPUT, small_context

BUNDLED = ("trajectory", "implant", "ablation", "resection")
HEAVY = ("surgiplan_trajectory.simulator", "surgiplan_trajectory.kernel",
         "surgiplan_implant.simulator", "surgiplan_ablation.simulator",
         "surgiplan_resection.simulator", "numba", "vtkmodules.vtkFiltersCore",
         *(f"surgiplan_{kind}" for kind in BUNDLED))  # not even the light packages


def _bundled_entries() -> dict[str, object]:
    return {e.name: e for e in discover() if e.name in BUNDLED}


def test_simulators_list_imports_no_simulator_module():
    code = textwrap.dedent(f"""
        import sys
        from surgiplan.cli.main import main
        try:
            main(["simulators", "list"])
        except SystemExit:
            pass
        print("IMPORTED", [m for m in {HEAVY!r} if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    for kind in BUNDLED:
        assert f"{kind} 1.0.0 [{kind}]" in out.stdout, out.stdout
    assert "IMPORTED []" in out.stdout, out.stdout


@pytest.mark.parametrize("kind", BUNDLED)
def test_bundled_manifest_equals_the_real_spec(kind):
    entry = _bundled_entries()[kind]
    assert entry.value == f"surgiplan_{kind}:surgiplan.json"
    listed = read_manifest(entry.value)
    real = manifest_for(listed.simulator)  # imports the real class
    assert listed.spec.model_dump(mode="json") == real["spec"], \
        f"regenerate: python -m surgiplan.simulation.manifest write {listed.simulator} " \
        f"plugins/{kind}/src/surgiplan_{kind}/surgiplan.json"
    assert profile_to_json(listed.error_profile) == real["error_profile"]


def test_the_lazy_simulator_imports_on_first_run_and_is_cached():
    entry = _bundled_entries()["trajectory"]
    sim = load_simulator("trajectory")
    assert isinstance(sim, LazySimulator) and sim is entry.simulator
    assert sim is load_simulator("trajectory")  # discovery is not redone per call
    assert sim.spec.id == "trajectory" and sim.error_profile is not None
    result = run_simulation(sim, small_context(), INPUT, uncertainty=UncertaintyModel(samples=50))
    assert result.status is Status.OK, result.error
    assert sim.loaded and type(sim.load()).__name__ == "TrajectorySimulator"
    assert entry.enabled and entry.problems == []
    fresh = {e.name: e for e in discover(refresh=True)}["trajectory"]
    assert fresh.simulator is not sim and not fresh.simulator.loaded


def test_generator_writes_the_manifest(tmp_path):
    out = tmp_path / "m.json"
    assert main(["write", "surgiplan_trajectory.simulator:TrajectorySimulator", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["schema"] == SCHEMA and data["spec"]["id"] == "trajectory"
    assert main(["write", "no_such_module_xyz:Sim", str(tmp_path / "x.json")]) == 2


def _package(tmp_path, monkeypatch, spec_patch: dict | None = None, name: str = "sp_mpkg"):
    """A plug-in package whose entry point names a manifest written from the real class
    (optionally altered by ``spec_patch``)."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sim.py").write_text(_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = manifest_for(f"{name}.sim:TipCheck")
    sys.modules.pop(f"{name}.sim", None)
    sys.modules.pop(name, None)
    data["spec"].update(spec_patch or {})
    (pkg / "surgiplan.json").write_text(json.dumps(data))
    install_entry_points(tmp_path, name, {"tipcheck": f"{name}:surgiplan.json"})
    return pkg


def test_third_party_manifest_is_listed_without_import_and_runs_isolated(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch)
    entry = {e.name: e for e in discover()}["tipcheck"]
    assert entry.enabled and entry.isolated, entry.reason
    assert "sp_mpkg" not in sys.modules  # not even the package's __init__ ran here
    assert isinstance(entry.simulator, IsolatedSimulator)
    assert entry.simulator.value == "sp_mpkg.sim:TipCheck"
    result = run_simulation(entry.simulator, small_context(), INPUT,
                            uncertainty=UncertaintyModel(samples=50))
    entry.simulator.host.stop()
    assert result.status is Status.OK, result.error
    assert "sp_mpkg.sim" not in sys.modules  # it ran in the child


def test_manifest_drift_is_recorded_and_the_real_spec_used(tmp_path, monkeypatch, caplog):
    _package(tmp_path, monkeypatch, {"title": "Stale title"}, name="sp_mdrift")
    entry = {e.name: e for e in discover(trust="sp_mdrift")}["tipcheck"]
    assert entry.enabled and entry.spec.title == "Stale title"
    with caplog.at_level(logging.WARNING):
        result = run_simulation(entry.simulator, small_context(), INPUT,
                                uncertainty=UncertaintyModel(samples=20))
    assert result.ok, result.error
    assert entry.simulator.spec.title == entry.spec.title == "Tip clearance"
    assert any("differs" in p for p in entry.problems) and "regenerate" in caplog.text


@pytest.mark.parametrize(("content", "expected"), [
    (None, "failed to load its manifest: FileNotFoundError"),
    ("{not json", "manifest is not JSON"),
    ('{"schema": "other/9"}', "not a simulator manifest"),
    (json.dumps({"schema": SCHEMA, "simulator": "m:C", "spec": {"id": "BAD"}}),
     "invalid simulator spec"),
])
def test_a_bad_manifest_disables_only_its_plugin(tmp_path, monkeypatch, content, expected):
    pkg = tmp_path / "sp_mbad"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    if content is not None:
        (pkg / "surgiplan.json").write_text(content)
    install_entry_points(tmp_path, "sp_mbad", {"bad": "sp_mbad:surgiplan.json"})
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = {e.name: e for e in discover()}  # third-party: its package is never imported
    assert not entries["bad"].enabled and expected in entries["bad"].reason
    assert entries["trajectory"].enabled


def test_a_class_entry_point_still_works(tmp_path, monkeypatch):
    install_entry_points(tmp_path, "sp_test_plugins", {"test-crash": TEST_PLUGINS["test-crash"]})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(FIXTURES))
    inside = {e.name: e for e in discover(trust="all")}["test-crash"]
    assert inside.enabled and type(inside.simulator).__name__ == "CrashingSimulator"
    outside = {e.name: e for e in discover()}["test-crash"]
    assert outside.enabled and outside.isolated and outside.spec.id == "test-crash"


def test_validate_imports_and_flags_a_stale_third_party_manifest(tmp_path, monkeypatch):
    from tests.test_simulation_plugins import _cli

    _package(tmp_path, monkeypatch, {"title": "Stale title"}, name="sp_mstale")
    entry = {e.name: e for e in discover()}["tipcheck"]
    assert entry.enabled and entry.isolated
    verify(entry)  # the real class is imported in a child process
    assert not entry.enabled and "differs" in entry.reason
    run = _cli(["simulators", "validate"], tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "DISABLED tipcheck" in run.stdout and "regenerate the manifest" in run.stdout
    assert "ok       trajectory (surgiplan_trajectory:surgiplan.json)" in run.stdout


def test_a_simulator_that_fails_to_import_at_first_run_is_then_listed_disabled(
        tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch, name="sp_mfail")
    (tmp_path / "sp_mfail" / "sim.py").write_text("raise ImportError('numba is missing')\n")
    entries = discover(trust="all")
    entry = {e.name: e for e in entries}["tipcheck"]
    assert entry.enabled  # listed from its manifest: nothing imported yet
    result = run_simulation(entry.simulator, small_context(), INPUT)
    assert result.status is Status.FAILED and "numba is missing" in result.error
    assert not entry.enabled and "failed to load (sp_mfail.sim:TipCheck)" in entry.reason
    with pytest.raises(BadInputError, match="installed but disabled"):
        load_simulator("tipcheck", entries=entries)
