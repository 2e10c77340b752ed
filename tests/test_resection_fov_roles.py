"""The resection simulator on a thin field of view (the real 3-slice liver CT: every volume and
margin reaches the image's edge, so they are not assessable, with the reason) and with wrong
roles (refused: the CLI exits 2 with one line, the simulator returns a failed result), and the
verdict following the numbers (a short margin, a small remnant are never safe)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgiplan.model.structures import Role
from surgiplan.simulation import (
    Level,
    ResectionInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
    validate_result,
)
from tests.conftest import real_scan

pytest.importorskip("surgiplan_resection", reason="install it: pip install -e plugins/resection")


@pytest.fixture(scope="module")
def thin_case(tmp_path_factory):
    from surgiplan.io.bundle import save_bundle
    from surgiplan.io.twin_build import build_twin

    folder = real_scan("liver-ct-3slice-seg")
    twin = build_twin(folder / "dicom", labels=[folder / "labels" / f"{n}_seg.nrrd"
                                                for n in ("liver", "spine")])
    twin.set_structure_properties("liver_seg", role=Role.ORGAN)
    liver = twin.segmentation.mask("liver_seg")
    j, i = np.median(np.argwhere(liver[1]), axis=0).astype(int)
    zz, yy, xx = np.indices(liver.shape)
    lesion = (zz == 1) & ((yy - j) ** 2 + (xx - i) ** 2 <= 36) & liver
    twin.set_structure_mask("liver_seg", liver & ~lesion)
    twin.add_structure("lesion", lesion, role=Role.TARGET)
    path = save_bundle(twin, tmp_path_factory.mktemp("thin") / "thin.surgiplan")
    return twin, path


def _cli(argv, capsys):
    from surgiplan.cli.main import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_thin_field_metrics_are_not_assessable_through_the_cli(thin_case, capsys):
    _, path = thin_case
    code, out, _ = _cli(["simulate", "resection", str(path), "--organ", "liver_seg",
                         "--target", "lesion", "--margin-mm", "5", "--samples", "50",
                         "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    metrics = {m["key"]: m for m in data["metrics"]}
    for key in ("organ_volume_ml", "remnant_volume_ml", "remnant_pct", "margin_mm"):
        assert metrics[key]["value"] is None, key
        assert "edge of the image" in metrics[key]["not_assessable"], key
        assert metrics[key]["failed_draw_share"] == 1.0
    assert data["overall_level"] != "safe"
    assert any("not assessable" in w for w in data["warnings"])


def test_thin_field_result_from_the_simulator_validates(thin_case):
    twin, _ = thin_case
    sim = load_simulator("resection")
    result = sim.run(SimulationContext(twin), ResectionInput(
        organ_structure="liver_seg", target_structure="lesion", margin_mm=5.0),
        sim.spec.defaults(), uncertainty=UncertaintyModel(samples=50).resolved_for(sim))
    assert result.ok
    assert validate_result(result) == []
    assert not result.metric("organ_volume_ml").assessable
    assert result.overall_level is not Level.SAFE


@pytest.mark.parametrize("organ,target,option", [("spine_seg", None, "--organ"),
                                                  ("liver_seg", "spine_seg", "--target")])
def test_wrong_roles_are_refused_by_the_cli(thin_case, capsys, organ, target, option):
    _, path = thin_case
    argv = ["simulate", "resection", str(path), "--organ", organ, "--samples", "0", "--json"]
    if target:
        argv += ["--target", target]
    code, out, err = _cli(argv, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "role" in lines[0]


def test_wrong_roles_give_a_failed_simulator_result(thin_case):
    twin, _ = thin_case
    sim = load_simulator("resection")
    result = sim.run(SimulationContext(twin), ResectionInput(
        organ_structure="spine_seg", target_structure="lesion", margin_mm=5.0),
        sim.spec.defaults(), uncertainty=UncertaintyModel(samples=0))
    assert not result.ok
    assert "not organ" in result.error and "liver_seg" in result.error
