"""Declared simulator capabilities (issue 13 item 2): typed protocols, checked at discovery and
when a manifest is written or read, recorded in the manifest; ``required_roles`` enforced by
the runner; ``--param NAME=VALUE`` on every ``simulate`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.volume import ImageVolume
from surgiplan.simulation import (
    Kind,
    Output,
    SimulationContext,
    SimulatorSpec,
    TrajectoryInput,
    UncertaintyModel,
    discover,
    load_simulator,
    run_simulation,
)
from surgiplan.simulation.capabilities import (
    PROTOCOLS,
    AblationLive,
    capability_problems,
    manifest_capabilities,
    supports,
    unknown_capabilities,
)
from surgiplan.simulation.discovery import contract_problems
from surgiplan.simulation.manifest import manifest_for, parse_manifest
from surgiplan.twin import Twin
from tests.plugins_fixtures import install_entry_points

INPUT = TrajectoryInput(entry_lps=(2.0, 12.0, 12.0), target_lps=(12.0, 12.0, 20.0))


def _twin(*, critical: bool = True) -> Twin:
    geometry = ImageGeometry((24, 24, 24), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    zz, yy, xx = np.indices(geometry.shape_zyx)
    twin = Twin(ImageVolume(np.zeros(geometry.shape_zyx, np.int16), geometry, modality="CT"))
    r2 = (xx - 12) ** 2 + (yy - 12) ** 2 + (zz - 12) ** 2
    twin.add_structure("skin", (r2 <= 100) & (r2 > 9), role="skin")
    if critical:
        twin.add_structure("vessel", r2 <= 9, role="critical", margin_mm=2.0)
    return twin


def _spec(kind: Kind, capabilities: tuple[str, ...]) -> SimulatorSpec:
    return SimulatorSpec(id="cap-test", title="capability test", version="0.1", kind=kind,
                         capabilities=capabilities, outputs=(Output(key="x", title="X"),))


class _Live:
    spec = _spec(Kind.ABLATION, ("live",))

    def run(self, *a, **k):  # never called here
        raise AssertionError

    def live_scorer(self, context, parameters=None):
        return None


# ---------------------------------------------------------------------------- the protocols
def test_every_bundled_simulator_implements_what_it_declares():
    entries = {e.spec.id: e for e in discover() if e.spec is not None and e.enabled}
    expected = {"trajectory": {"search"}, "implant": {"live", "handles", "inputs", "suggest"},
                "ablation": {"live", "handles", "checks", "devices", "optimise"},
                "resection": {"live", "handles", "structures"}}
    for sim_id, caps in expected.items():
        sim = entries[sim_id].simulator
        assert set(sim.spec.capabilities) == caps, sim_id
        for cap in caps:
            assert supports(sim, cap), (sim_id, cap)
            assert isinstance(sim, PROTOCOLS[sim.spec.kind][cap])
        assert capability_problems(sim.load(), sim.spec) == []


def test_a_declared_capability_without_its_methods_is_a_contract_problem():
    class Hollow(_Live):
        spec = _spec(Kind.ABLATION, ("live", "optimise"))

    problems = contract_problems(Hollow(), Hollow.spec)
    assert problems == ["declares the 'optimise' capability but has no optimise()"]
    assert contract_problems(_Live(), _Live.spec) == []


def test_an_unknown_capability_name_is_named_with_the_known_ones():
    problems = unknown_capabilities(_spec(Kind.RESECTION, ("optimize",)))
    assert len(problems) == 1 and "'optimize'" in problems[0] and "structures" in problems[0]


def test_supports_needs_the_declaration_and_the_methods_in_this_process():
    live = _Live()
    assert supports(live, "live") and isinstance(live, AblationLive)
    assert not supports(live, "optimise")  # neither declared nor implemented

    class Undeclared(_Live):
        spec = _spec(Kind.ABLATION, ())

    assert not supports(Undeclared(), "live")  # implemented but not declared

    class Isolated(_Live):
        isolated = True  # a third-party plug-in running in its child process

    assert not supports(Isolated(), "live")


def test_discovery_disables_a_plugin_whose_capability_is_missing(tmp_path, monkeypatch):
    (tmp_path / "sp_hollow.py").write_text(
        "from surgiplan.simulation import Kind, Output, SimulatorSpec\n"
        "class Hollow:\n"
        "    spec = SimulatorSpec(id='hollow', title='h', version='0.1', kind=Kind.IMPLANT,\n"
        "                         capabilities=('suggest',), outputs=(Output(key='x', "
        "title='X'),))\n"
        "    def run(self, *a, **k):\n        raise AssertionError\n")
    install_entry_points(tmp_path, "sp_hollow", {"hollow": "sp_hollow:Hollow"})
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = {e.name: e for e in discover(trust="all", refresh=True)}["hollow"]
    assert not entry.enabled
    assert "'suggest' capability but has no suggest(), suggest_input()" in entry.reason


# ---------------------------------------------------------------------------- the manifest
def test_the_manifest_records_each_capability_with_its_methods():
    data = manifest_for("surgiplan_ablation.simulator:AblationSimulator")
    assert data["capabilities"]["checks"] == ["check_inputs", "check_target"]
    assert set(data["capabilities"]) == set(data["spec"]["capabilities"])
    assert parse_manifest(data, origin="x").capabilities == data["capabilities"]


def test_a_manifest_whose_capabilities_differ_from_its_spec_is_refused():
    data = manifest_for("surgiplan_resection.simulator:ResectionSimulator")
    data["capabilities"].pop("structures")
    with pytest.raises(BadInputError, match=r"differ from the spec's.*regenerate"):
        parse_manifest(data, origin="resection manifest")
    del data["capabilities"]  # an older manifest: the record is derived from the spec
    assert parse_manifest(data, origin="x").capabilities == \
        manifest_capabilities(parse_manifest(data, origin="x").spec)


def test_no_manifest_is_written_for_an_unimplemented_capability(tmp_path, monkeypatch):
    (tmp_path / "sp_claims.py").write_text(
        "from surgiplan.simulation import Kind, Output, SimulatorSpec\n"
        "class Claims:\n"
        "    spec = SimulatorSpec(id='claims', title='c', version='0.1', kind=Kind.RESECTION,\n"
        "                         capabilities=('live',), outputs=(Output(key='x', "
        "title='X'),))\n"
        "    def run(self, *a, **k):\n        raise AssertionError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BadInputError, match="'live' capability but has no live"):
        manifest_for("sp_claims:Claims")


# ---------------------------------------------------------------------------- required roles
def test_the_runner_refuses_a_case_without_a_required_role():
    sim = load_simulator("trajectory")
    context = SimulationContext(_twin(critical=False))
    with pytest.raises(BadInputError) as err:
        run_simulation(sim, context, INPUT, uncertainty=UncertaintyModel(samples=0))
    line = str(err.value)
    assert "needs a structure with the role critical" in line and "skin" in line
    assert "\n" not in line
    result = run_simulation(sim, SimulationContext(_twin()), INPUT,
                            uncertainty=UncertaintyModel(samples=0))
    assert result.ok, result.error


# ---------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    from surgiplan.io.bundle import save_bundle

    folder = tmp_path_factory.mktemp("cap_cases")
    return {name: save_bundle(_twin(critical=critical), folder / f"{name}.surgiplan")
            for name, critical in (("ok", True), ("no_critical", False))}


def _cli(capsys, case, *extra: str) -> tuple[int, str, str]:
    from surgiplan.cli.main import main

    code = main(["simulate", "trajectory", str(case), "--entry", "2,12,12", "--target",
                 "12,12,20", "--samples", "0", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_param_sets_any_declared_parameter(cases, capsys):
    code, out, _ = _cli(capsys, cases["ok"], "--param", "risk_band_mm=5", "--param",
                        "path_samples=201", "--json")
    assert code == 0
    params = json.loads(out)["provenance"]["parameters"]
    assert params["risk_band_mm"] == 5.0 and params["path_samples"] == 201
    assert params["default_margin_mm"] == 3.0  # the rest keep their defaults


@pytest.mark.parametrize("param,expected", [
    ("nope=1", "has no parameter 'nope' (its parameters: default_margin_mm, risk_band_mm"),
    ("risk_band_mm=abc", "risk_band_mm=abc: expected a number in mm"),
    ("risk_band_mm=999", "must be in [0.5, 50] mm, got 999"),
    ("path_samples=10.5", "expected a whole number"),
])
def test_a_bad_param_is_one_line_bad_input(cases, capsys, param, expected):
    code, out, err = _cli(capsys, cases["ok"], "--param", param)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_a_param_without_a_value_is_refused_by_the_parser(cases, capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli(capsys, cases["ok"], "--param", "risk_band_mm")
    assert exit_.value.code == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_a_missing_required_role_exits_2_naming_it(cases, capsys):
    code, out, err = _cli(capsys, cases["no_critical"])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "role critical" in err


def test_param_overrides_a_commands_own_option():
    import argparse

    from surgiplan.cli.param_args import cli_parameters

    sim = load_simulator("resection")
    args = argparse.Namespace(param=[("liver_condition", "cirrhosis"),
                                     ("display_meshes", "no")])
    params = cli_parameters(sim, args, {"liver_condition": "normal"})
    assert params["liver_condition"] == "cirrhosis" and params["display_meshes"] is False
    with pytest.raises(BadInputError, match="must be one of"):
        cli_parameters(sim, argparse.Namespace(param=[("liver_condition", "fatty")]))


# ---------------------------------------------------------------------------- shared helpers
def test_structure_centroid_is_one_computation_for_twin_and_context():
    twin = _twin()
    kji = np.argwhere(twin.segmentation.mask("vessel"))
    expected = twin.geometry.index_to_lps(kji[:, ::-1].astype(float)).mean(axis=0)
    np.testing.assert_allclose(twin.centroid_lps("vessel"), expected, atol=1e-9)
    np.testing.assert_allclose(SimulationContext(twin).centroid_lps("vessel"), expected)
    twin.add_structure("empty", np.zeros(twin.geometry.shape_zyx, bool), role="other")
    assert twin.centroid_lps("empty") is None


def test_lps_ras_flip_is_its_own_inverse_and_negates_x_and_y():
    from surgiplan.model.frames import RAS_FROM_LPS, lps_to_ras, ras_to_lps

    lps = np.array([[-80.0, -10.0, 20.0], [1.5, 2.5, -3.5]])
    np.testing.assert_array_equal(lps_to_ras(lps), [[80.0, 10.0, 20.0], [-1.5, -2.5, -3.5]])
    np.testing.assert_array_equal(ras_to_lps(lps_to_ras(lps)), lps)
    np.testing.assert_array_equal((RAS_FROM_LPS @ np.append(lps[0], 1.0))[:3], lps_to_ras(lps[0]))
