"""A thin field of view (the real 3-slice abdominal CT, 3 mm thick, with its heart label): a
structure cut by the image edge, or a path leaving the image, gives "not assessable" with the
reason and the failed-draw share, never a number (it used to give the heart an interval up to
+14 mm), through the CLI's JSON and the simulator alike."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgiplan.cli.main import main
from surgiplan.simulation import (
    Level,
    SimulationContext,
    TrajectoryInput,
    UncertaintyModel,
    load_simulator,
    validate_result,
)
from tests.conftest import real_scan

NAMES = {"schema": "surgiplan.labels/1", "labels": [
    {"value": 1, "name": "liver", "role": "organ"},
    {"value": 2, "name": "spine", "role": "bone"},
    {"value": 3, "name": "heart", "role": "critical", "margin_mm": 3.0}]}
SLICE_Z = -127.7  # the middle slice (LPS mm); the slab spans -129.19 .. -126.19
THROUGH_HEART = ((10.0, 1.7, SLICE_Z), (69.7, 1.7, SLICE_Z))
FAR_FROM_HEART = ((-120.0, -33.0, SLICE_Z), (-74.0, -33.0, SLICE_Z))
LEAVES_IMAGE = ((10.0, 1.7, SLICE_Z), (69.7, 1.7, SLICE_Z + 20.0))
HEART_KEYS = ("min_distance_mm", "risk", "breach_probability")


def _thin_twin(folder):
    from surgiplan.io.twin_build import build_twin

    scan = real_scan("liver-ct-3slice-seg")
    names = folder / "labels.json"
    names.write_text(json.dumps(NAMES), encoding="utf-8")
    labels = [scan / "labels" / f"{n}_seg.nrrd" for n in ("heart", "liver", "spine")]
    return build_twin(scan / "dicom", labels=labels, label_names=names)


@pytest.fixture(scope="module")
def thin_case(tmp_path_factory):
    from surgiplan.io.bundle import save_bundle

    folder = tmp_path_factory.mktemp("thin")
    twin = _thin_twin(folder)
    return save_bundle(twin, folder / "thin.surgiplan"), twin


def _cli(bundle, path, capsys) -> dict:
    (entry, target) = path
    code = main(["simulate", "trajectory", str(bundle), "--entry", ",".join(map(str, entry)),
                 "--target", ",".join(map(str, target)), "--samples", "300", "--json"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def _heart(metrics: list[dict]) -> dict[str, dict]:
    return {m["key"]: m for m in metrics if m["structure"] == "heart"}


@pytest.mark.parametrize("path, reason", [(THROUGH_HEART, "cut by the image edge"),
                                          (FAR_FROM_HEART, "cut by the image edge"),
                                          (LEAVES_IMAGE, "leaves the image")])
def test_cli_json_says_not_assessable_with_reason_and_share(thin_case, capsys, path, reason):
    bundle, _ = thin_case
    out = _cli(bundle, path, capsys)
    heart = _heart(out["metrics"])
    assert set(HEART_KEYS) <= set(heart)
    for key in HEART_KEYS:
        m = heart[key]
        assert m["value"] is None and m["ci95"] is None, m
        assert reason in m["not_assessable"], m
        assert m["failed_draw_share"] is not None and 0 < m["failed_draw_share"] <= 1, m
    clearance = next(m for m in out["metrics"] if m["key"] == "clearance_mm")
    assert clearance["value"] is None and clearance["not_assessable"]
    assert out["overall_level"] != "safe"
    if path is LEAVES_IMAGE:
        assert any("leaves the image" in w for w in out["warnings"])
    if path is THROUGH_HEART:  # the tool visibly enters the heart: a breach, depth unknown
        assert out["levels"][0]["level"] == "breach"


def test_simulator_results_validate_and_never_give_a_heart_number(thin_case):
    _, twin = thin_case
    context = SimulationContext(twin)
    sim = load_simulator("trajectory")
    for samples in (0, 300):
        for entry, target in (THROUGH_HEART, FAR_FROM_HEART, LEAVES_IMAGE):
            result = sim.run(context, TrajectoryInput(entry_lps=entry, target_lps=target),
                             sim.spec.defaults(), uncertainty=UncertaintyModel(samples=samples))
            assert validate_result(result) == []
            assert result.overall_level is not Level.SAFE
            for m in result.metrics:
                if m.structure == "heart":
                    assert not m.assessable and math.isnan(m.value) and m.ci95 is None
            length = result.metric("path_length_mm")  # the plan's own geometry: known
            assert length.assessable
            assert abs(length.value - np.linalg.norm(np.subtract(target, entry))) < 1e-9


def test_search_rejects_entries_whose_clearance_is_unknown(tmp_path):
    """With a body outline as skin, every candidate path lies within 1.5 mm of the slab's faces
    that cut the heart: each is either visibly at the heart or rejected as not assessable."""
    from surgiplan.simulation import PathSearchRequest

    twin = _thin_twin(tmp_path)
    body = twin.image.array > -300
    twin.add_structure("body", body, role="skin")
    context = SimulationContext(twin)
    sim = load_simulator("trajectory")
    request = PathSearchRequest(target_lps=(-74.0, -33.0, SLICE_Z), max_length_mm=200.0,
                                max_angle_deg=90.0, top_k=3)
    result = sim.search(context, request, sim.spec.defaults())
    assert result.n_candidates > 100
    in_reach = result.n_candidates - result.rejected["too_long"]  # the rest are not scored
    assert in_reach > 100
    assert result.rejected["not_assessable"] > 0.9 * in_reach, result.rejected
    for c in result.candidates:
        assert abs(c.clearance_mm + request.diameter_mm / 2) <= 1.5
