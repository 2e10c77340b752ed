"""Ablation verdicts follow the numbers: a thin field of view is not assessable (never -inf or
P = 0), a vessel is refused as the tumour, short coverage / margins are concerns, and every
result validates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgiplan.cli.main import main
from surgiplan.io.bundle import save_bundle
from surgiplan.io.twin_build import build_twin
from surgiplan.phantoms import generate_phantom
from surgiplan.simulation import (
    AblationInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
    run_simulation,
    validate_result,
)
from surgiplan.twin import Twin
from tests.conftest import real_scan, shared_phantom

CENTRE = np.array([-65.0, -25.0, 20.0])  # tumour 1 of the liver phantom, radius 12 mm
TUMOUR_METRICS = ("coverage_pct", "min_margin_mm", "p_margin_ge_5mm", "p_margin_ge_10mm",
                  "target_volume_ml")


@pytest.fixture(scope="module")
def liver():
    volume, segmentation, _ = shared_phantom("liver")
    return SimulationContext(Twin(volume, segmentation))


@pytest.fixture(scope="module")
def thin_twin():
    """The real 3-slice abdominal CT with its liver and heart label maps and a lesion drawn
    in the liver through all three slices (the field of view cuts it, as it cuts the liver)."""
    folder = real_scan("liver-ct-3slice-seg")
    twin = build_twin(folder / "dicom", labels=[folder / "labels" / f"{n}_seg.nrrd"
                                                for n in ("liver", "heart")])
    liver = twin.segmentation.mask("liver_seg")
    zyx = np.argwhere(liver)
    centre = np.rint(zyx.mean(0)).astype(int)
    _, yy, xx = np.indices(liver.shape)
    sx, sy = twin.geometry.spacing_mm[:2]
    lesion = (((yy - centre[1]) * sy) ** 2 + ((xx - centre[2]) * sx) ** 2 <= 10.0 ** 2) \
        & (liver != 0)
    twin.add_structure("lesion", lesion, role="target", margin_mm=5.0)
    twin.set_structure_properties("heart_seg", role="critical", margin_mm=5.0)
    lps = twin.geometry.index_to_lps(centre[::-1][None].astype(float))[0]
    return twin, lps


def _thin_inputs(lps) -> AblationInput:
    return AblationInput(device_id="custom", tip_lps=tuple(lps),
                         shaft_lps=tuple(lps + np.array([-60.0, 0.0, 0.0])),
                         settings={"long_mm": 40, "short_mm": 30},
                         target_structure="lesion")


def test_thin_field_of_view_is_not_assessable_with_reason_and_failed_draws(thin_twin):
    twin, lps = thin_twin
    res = run_simulation(load_simulator("ablation"), SimulationContext(twin),
                         _thin_inputs(lps), parameters={"score_paths": False},
                         uncertainty=UncertaintyModel(samples=200))
    assert res.ok, res.error
    for key in TUMOUR_METRICS:
        m = res.metric(key)
        assert not m.assessable and math.isnan(m.value) and m.ci95 is None, key
        assert "field of view" in m.not_assessable
        assert m.failed_draw_share is not None and 0.0 <= m.failed_draw_share <= 1.0
    heart = res.metric("zone_clearance_mm", "heart_seg")
    assert not heart.assessable and "past the image" in heart.not_assessable
    assert res.level("heart_seg").level != "safe"
    assert res.overall_level != "safe"
    assert any("not assessable" in line for line in res.verdict_reasons())
    assert res.metric("zone_volume_ml").assessable  # the zone itself needs no image
    assert validate_result(res) == []


def test_thin_field_of_view_through_the_cli_json(thin_twin, tmp_path, capsys):
    twin, lps = thin_twin
    bundle = save_bundle(twin, tmp_path / "thin.surgiplan")
    tip = ",".join(f"{v:.2f}" for v in lps)
    entry = ",".join(f"{v:.2f}" for v in lps + np.array([-60.0, 0.0, 0.0]))
    code = main(["simulate", "ablation", str(bundle), f"--tip={tip}", f"--entry={entry}",
                 "--zone", "40x30", "--target", "lesion", "--samples", "100", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["overall_level"] != "safe"
    margin = next(m for m in out["metrics"] if m["key"] == "min_margin_mm")
    assert margin["value"] is None and "field of view" in margin["not_assessable"]
    p5 = next(m for m in out["metrics"] if m["key"] == "p_margin_ge_5mm")
    assert p5["value"] is None and p5["not_assessable"]


def test_a_vessel_as_the_target_is_refused_by_the_simulator(liver):
    res = run_simulation(load_simulator("ablation"), liver, AblationInput(
        device_id="custom", tip_lps=(-55.0, 2.0, 5.0), shaft_lps=(-100.0, 2.0, 5.0),
        settings={"long_mm": 30, "short_mm": 24}, target_structure="portal veins"),
        parameters={"score_paths": False}, uncertainty=UncertaintyModel(samples=0))
    assert not res.ok
    assert "role critical, not target" in res.error and "tumour 1" in res.error


def test_a_vessel_as_the_target_is_refused_by_the_cli(tmp_path, capsys):
    case = tmp_path / "liver"
    generate_phantom("liver", case)
    code = main(["simulate", "ablation", str(case), "--tip=-55,2,5", "--entry=-100,2,5",
                 "--zone", "30x24", "--target", "portal veins", "--samples", "0", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "not target" in err


def _run(liver, tip, short_mm, samples=300):
    inputs = AblationInput(device_id="custom", tip_lps=tuple(tip),
                           shaft_lps=tuple(np.asarray(tip) + np.array([-45.0, 0, 0])),
                           settings={"long_mm": 44, "short_mm": short_mm},
                           target_structure="tumour 1")
    res = run_simulation(load_simulator("ablation"), liver, inputs,
                         parameters={"score_paths": False},
                         uncertainty=UncertaintyModel(samples=samples))
    assert res.ok, res.error
    assert validate_result(res) == []
    return res


def test_short_margin_and_incomplete_coverage_are_never_safe(liver):
    short = _run(liver, CENTRE, 33.4)  # concentric: margin 16.7 - 12 = 4.7 mm
    assert 4.0 < short.metric("min_margin_mm").value < 5.0
    assert short.metric("coverage_pct").value == 100.0
    assert any(c.metric_key == "min_margin_mm" and c.level == "caution"
               for c in short.concerns)
    assert short.overall_level != "safe"
    partial = _run(liver, CENTRE + np.array([0, 14.0, 0]), 30.0)
    assert 40.0 < partial.metric("coverage_pct").value < 80.0
    assert any(c.metric_key == "coverage_pct" and c.level == "breach"
               for c in partial.concerns)
    assert partial.overall_level == "breach"


def test_every_metric_has_an_interval_with_its_kind_or_a_reason(liver):
    res = _run(liver, CENTRE, 40.0)
    for m in res.metrics:
        assert m.interval in ("prediction", "confidence") or m.no_interval_reason, m.key
        if m.key.startswith("p_"):
            assert m.interval == "confidence"
    for key in ("zone_volume_ml", "target_volume_ml"):
        assert res.metric(key).interval == "prediction"
    assert any(m.key == "zone_clearance_mm" and m.interval == "prediction"
               for m in res.metrics)
    model = res.details["error_model"]
    assert "Heerink" in model["source"] and model["used"]["target_sd_mm"] == 4.9
    assert "Wang" in res.details["thresholds"]["margin_source"]
    assert "Lu DSK" in res.details["thresholds"]["heat_sink_source"]


def test_heat_sink_counts_a_vessel_near_but_outside_the_zone(liver):
    portal = np.array([-55.0, 2.0, 5.0])  # right portal branch, radius about 4.5 mm
    tip = portal + np.array([-5.0, 0.0, 22.0])  # above the branch
    inputs = AblationInput(device_id="custom", tip_lps=tuple(tip),
                           shaft_lps=tuple(tip + np.array([-45.0, 0, 0])),
                           settings={"long_mm": 30, "short_mm": 24},
                           target_structure="tumour 1")
    res = run_simulation(load_simulator("ablation"), liver, inputs,
                         parameters={"score_paths": False},
                         uncertainty=UncertaintyModel(samples=0))
    clearance = res.metric("zone_clearance_mm", "portal veins").value
    assert 0.0 < clearance < 10.0  # not touching, within the 10 mm window
    assert res.metric("heat_sink_diameter_mm", "portal veins").value > 7.0
    assert any(c.metric_key == "heat_sink_diameter_mm" for c in res.concerns)


def test_optimiser_tries_the_centred_largest_zone(liver):
    sim = load_simulator("ablation")
    inputs = AblationInput(device_id="generic-microwave",
                           tip_lps=tuple(CENTRE + np.array([3, 6, 0])),
                           shaft_lps=tuple(CENTRE + np.array([-45, 6, 0])),
                           settings={"power_w": 60, "time_min": 5},
                           target_structure="tumour 1")
    best = sim.optimise(liver, inputs, {"score_paths": False},
                        uncertainty=UncertaintyModel(samples=200), n_candidates=300, top_k=2)
    row = max(sim.devices()["generic-microwave"].settings,
              key=lambda r: (r.zone.short_mm, r.zone.long_mm))
    centroid = liver.geometry.index_to_lps(
        np.argwhere(liver.mask("tumour 1")).mean(0)[::-1][None])[0]
    tip = centroid + row.zone.tip_offset_mm * np.array([1.0, 0, 0])
    centred = sim.live_scorer(liver).score(inputs.model_copy(update={
        "tip_lps": tuple(tip), "shaft_lps": tuple(tip - np.array([45.0, 0, 0])),
        "settings": {"power_w": row.power_w, "time_min": row.time_min}}))
    top = best.candidates[0]
    assert top.min_margin_mm >= centred["min_margin_mm"] - 1e-6
