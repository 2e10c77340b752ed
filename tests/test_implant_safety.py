"""Implant simulator refusals and flags (issue 10, items 6-9): a thin field of view gives
not-assessable metrics (never a crash or a number), a screw in soft tissue is flagged "not in a
vertebra", a merged whole-skeleton bone is refused for auto-suggest, the default error model is
the implant's own cited profile; through the simulator and the CLI's JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from surgiplan_implant.simulator import ImplantSimulator

from surgiplan.errors import BadInputError
from surgiplan.simulation import Level, SimulationContext, UncertaintyModel, validate_result
from surgiplan.simulation.runner import run_simulation
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

SCANS = Path("/work/shared/scans")
THIN = SCANS / "liver-ct-3slice-seg"
ABDOMEN = SCANS / "abdomen-ct-contrast"
needs_scans = pytest.mark.skipif(not (THIN.is_dir() and ABDOMEN.is_dir()),
                                 reason="the real scans (/work/shared/scans) are not present")
MC = UncertaintyModel(samples=200)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surgiplan", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def spine():
    image, seg, _ = shared_phantom("spine")
    return SimulationContext(Twin(image, seg))


@pytest.fixture(scope="session")
def thin_case(tmp_path_factory) -> Path:
    """The 3-slice real CT with its spine label as the bone (role bone)."""
    if not THIN.is_dir():
        pytest.skip("the real scans (/work/shared/scans) are not present")
    out = tmp_path_factory.mktemp("thin")
    names = out / "labels.json"
    names.write_text(json.dumps({"schema": "surgiplan.labels/1", "labels": [
        {"value": 2, "name": "spine", "role": "bone"}]}), encoding="utf-8")
    case = out / "thin.surgiplan"
    done = _cli("twin", "build", str(THIN / "dicom"), "--labels",
                str(THIN / "labels" / "spine_seg.nrrd"), "--label-names", str(names),
                "--out", str(case))
    assert done.returncode == 0, done.stderr
    return case


@pytest.fixture(scope="session")
def abdomen_case(tmp_path_factory) -> Path:
    """The real abdomen CT with the ct-bone-skin-vessels preset: one merged ``bone``."""
    if not ABDOMEN.is_dir():
        pytest.skip("the real scans (/work/shared/scans) are not present")
    case = tmp_path_factory.mktemp("abdomen") / "abdomen.surgiplan"
    done = _cli("twin", "build", str(ABDOMEN), "--preset", "ct-bone-skin-vessels",
                "--out", str(case))
    assert done.returncode == 0, done.stderr
    return case


def test_default_error_model_is_the_implants_own_cited_profile(spine):
    sim = ImplantSimulator()
    profile = sim.error_profile
    assert "pedicle" in profile.name and "10.1186/s12893-022-01838-y" in profile.source
    assert profile.entry_sd_mm == pytest.approx(math.sqrt((2.2**2 + 1.4**2) / 3), abs=0.01)
    assert profile.target_sd_mm == pytest.approx(math.sqrt((1.9**2 + 1.5**2) / 3), abs=0.01)
    inputs = sim.screw_input("6.5x45", (15.0, 45.0, 0.0), (10.0, 0.0, 0.0))
    result = run_simulation(sim, spine, inputs, uncertainty=UncertaintyModel(samples=50))
    assert result.details["error_model"]["source"] == profile.source
    assert "derivation" in result.details["error_model"]
    assert result.details["uncertainty_model"]["entry_sd_mm"] == profile.entry_sd_mm
    assert result.provenance.uncertainty["entry_sd_mm"] == profile.entry_sd_mm
    assert "modified Gertzbein-Robbins" in result.details["grade_scale"]
    assert validate_result(result) == []


def test_screw_in_soft_tissue_is_not_in_a_vertebra(spine):
    sim = ImplantSimulator()
    inputs = sim.screw_input("6.5x45", (60.0, 40.0, 0.0), (60.0, 0.0, 0.0))  # in the psoas
    result = run_simulation(sim, spine, inputs, uncertainty=MC)
    assert result.ok, result.error
    assert validate_result(result) == []
    assert result.details["in_vertebra"] is False
    assert result.details["gertzbein_grade"] == "not assessable"
    assert result.metric("bone_share_pct").value == 0.0
    for key in ("breach_mm", "gertzbein_grade", "p_grade_c_or_worse"):
        assert "not in a vertebra" in result.metric(key).not_assessable
    assert any("not in a vertebra" in c.message and c.level is Level.BREACH
               for c in result.concerns)
    assert result.overall_level is Level.BREACH
    assert not any("seat it deeper" in w for w in result.warnings)


def test_thin_field_gives_not_assessable_metrics_not_a_crash(thin_case):
    from surgiplan.cli.simulate_cmd import load_case

    context = SimulationContext(load_case(thin_case))
    zyx = np.argwhere(context.mask("spine"))
    centre = context.geometry.index_to_lps(zyx.mean(axis=0)[::-1])
    sim = ImplantSimulator()
    inputs = sim.screw_input("6.5x45", centre + (15.0, 25.0, 0.0), centre + (5.0, -10.0, 0.0))
    result = run_simulation(sim, context, inputs, uncertainty=MC)
    assert result.ok, result.error
    assert validate_result(result) == []
    breach = result.metric("breach_mm")
    assert math.isnan(breach.value) and "off the image grid" in breach.not_assessable
    assert breach.failed_draw_share == 1.0
    assert result.metric("gertzbein_grade").not_assessable
    assert result.overall_level is not Level.SAFE
    # the CLI gives the same in its JSON, exit 0
    done = _cli("simulate", "implant", str(thin_case), "--screw", "6.5x45", "--entry",
                ",".join(map(str, centre + (15.0, 25.0, 0.0))), "--target",
                ",".join(map(str, centre + (5.0, -10.0, 0.0))), "--samples", "100", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    metrics = {m["key"]: m for m in data["metrics"] if m["structure"] is None}
    assert metrics["breach_mm"]["value"] is None
    assert "off the image grid" in metrics["breach_mm"]["not_assessable"]
    assert metrics["breach_mm"]["failed_draw_share"] == 1.0
    assert data["overall_level"] != "safe"


@needs_scans
def test_suggest_on_a_merged_bone_is_refused(abdomen_case):
    from surgiplan.cli.simulate_cmd import load_case

    context = SimulationContext(load_case(abdomen_case))
    with pytest.raises(BadInputError, match="not separable into vertebrae"):
        ImplantSimulator().suggest(context, "bone", "left", point_lps=(10.0, 110.0, 220.91))
    done = _cli("simulate", "implant", str(abdomen_case), "--suggest", "bone", "--side", "left",
                "--near", "10,110,220.91", "--json")
    assert done.returncode == 2
    assert "not separable into vertebrae" in done.stderr
    assert "vertebra label" in done.stderr and "Traceback" not in done.stderr


def test_soft_tissue_screw_through_the_cli_json(tmp_path):
    from surgiplan.io.bundle import save_bundle

    image, seg, _ = shared_phantom("spine")
    case = save_bundle(Twin(image, seg), tmp_path / "spine.surgiplan")
    done = _cli("simulate", "implant", str(case), "--screw", "6.5x45",
                "--entry", "60,40,0", "--target", "60,0,0", "--samples", "100", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["details"]["in_vertebra"] is False
    assert data["overall_level"] == "breach"
    assert any("not in a vertebra" in c["message"] for c in data["concerns"])
