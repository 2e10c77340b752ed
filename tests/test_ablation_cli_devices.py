"""Ablation plug-in: discovery, device tables, the exact spheroid kernel, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.cli.main import main
from surgiplan.errors import BadInputError
from surgiplan.phantoms import generate_phantom
from surgiplan.phantoms.primitives import Ellipsoid
from surgiplan.simulation import discover, load_simulator

FIXED_KEYS = {"coverage_pct", "min_margin_mm", "p_margin_ge_5mm", "volume_in_zone_ml"}


def test_plugin_is_discovered_like_a_third_party_one():
    entry = next(e for e in discover() if e.name == "ablation")
    assert entry.enabled, entry.reason
    assert entry.distribution.startswith("surgiplan-ablation")
    assert {o.key for o in entry.spec.outputs} >= FIXED_KEYS


def test_shipped_device_tables_state_their_source_and_refuse_unknown_settings():
    from surgiplan_ablation.devices import get_device, load_devices

    devices = load_devices()
    assert {"generic-microwave", "generic-rf"} <= set(devices)
    for table in devices.values():
        assert table.source and table.illustrative
    zone = devices["generic-microwave"].zone(100, 10)
    assert (zone.long_mm, zone.short_mm) == (48.0, 36.0)
    with pytest.raises(BadInputError, match="no setting 77 W"):
        devices["generic-rf"].zone(77, 1)
    with pytest.raises(BadInputError, match="no ablation device"):
        get_device("nope")


def test_a_broken_device_table_is_one_line_naming_the_file(tmp_path):
    from surgiplan_ablation.devices import load_device

    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\ntitle = "x"\nmodality = "laser"\nprobe_diameter_mm = 1\n'
                   'illustrative = true\nsource = "me"\n'
                   'columns = ["power_w", "time_min", "long_mm", "short_mm", "tip_offset_mm"]\n'
                   'rows = [[1, 1, 10, 8, 2]]\n')
    with pytest.raises(BadInputError) as err:
        load_device(bad)
    assert "bad.toml" in str(err.value) and "modality" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("semi", [(25.0, 15.0), (20.0, 20.0), (10.0, 18.0)])
def test_spheroid_kernel_equals_the_exact_ellipsoid_distance(semi):
    from surgiplan_ablation.kernel import zone_signed_distance

    rng = np.random.default_rng(1)
    points = rng.uniform(-40, 40, (20000, 3))
    axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    centre = np.array([2.0, -3.0, 5.0])
    e1 = np.cross(axis, [1.0, 0, 0])
    e1 /= np.linalg.norm(e1)
    exact = Ellipsoid(centre, (semi[1], semi[1], semi[0]),
                      np.column_stack([e1, np.cross(axis, e1), axis])).signed_distance(points)
    ours = zone_signed_distance(points, centre[None], axis[None], np.array([semi[0]]),
                                np.array([semi[1]]))
    assert np.abs(ours - exact).max() < 1e-6


@pytest.fixture(scope="module")
def liver_case(tmp_path_factory):
    out = tmp_path_factory.mktemp("liver")
    generate_phantom("liver", out)
    return out


def test_cli_json_has_the_fixed_keys(liver_case, capsys):
    code = main(["simulate", "ablation", str(liver_case), "--tip=-65,-25,20",
                 "--entry=-110,-25,20", "--zone", "40x34", "--target", "tumour 1",
                 "--samples", "200", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "ok"
    keys = {m["key"] for m in out["metrics"]}
    assert keys >= FIXED_KEYS
    margin = next(m for m in out["metrics"] if m["key"] == "min_margin_mm")
    assert margin["value"] == pytest.approx(5.0, abs=0.75) and len(margin["ci95"]) == 2
    assert out["geometry"]["meshes"][0]["n_faces"] > 100
    assert out["provenance"]["simulator_id"] == "ablation"


def test_cli_device_setting_and_bad_input(liver_case, capsys):
    assert main(["simulate", "ablation", str(liver_case), "--tip=-60,-25,20",
                 "--entry=-110,-25,20", "--device", "generic-rf", "--power", "200", "--time",
                 "12", "--samples", "0"]) == 0
    assert "Minimal ablative margin" in capsys.readouterr().out
    assert main(["simulate", "ablation", str(liver_case), "--tip=-60,-25,20",
                 "--entry=-110,-25,20", "--device", "generic-rf", "--power", "201",
                 "--time", "12", "--samples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no setting 201 W" in err and len(err.splitlines()) == 1


def test_load_simulator_returns_the_ablation_plugin():
    sim = load_simulator("ablation")
    assert sim.spec.kind == "ablation" and callable(sim.optimise)
