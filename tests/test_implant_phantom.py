"""Implant simulator verification on the spine phantom against its exact analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
from surgiplan_implant.pose import apply_pose
from surgiplan_implant.simulator import ImplantSimulator

from surgiplan.simulation import SimulationContext, UncertaintyModel, discover
from surgiplan.simulation.runner import run_simulation
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

CONV = np.radians(10.0)  # the phantom's pedicles converge 10 deg (anatomy_spine.py)
AXIS_POSTERIOR = np.array([np.sin(CONV), np.cos(CONV), 0.0])  # left L4 pedicle axis
LATERAL = np.array([np.cos(CONV), -np.sin(CONV), 0.0])  # across it, towards patient left
PEDICLE_CENTRE = np.array([15.0, 23.0, 0.0])
PEDICLE_HALF_WIDTH_MM = 4.5
HALF_VOXEL_MM = 0.5  # half the largest spacing of the 0.8 x 0.8 x 1 mm grid


@pytest.fixture(scope="module")
def phantom():
    image, seg, truth = shared_phantom("spine")
    return SimulationContext(Twin(image, seg)), truth


def _screw(diameter: float, medial_shift_mm: float):
    head = PEDICLE_CENTRE + 12.0 * AXIS_POSTERIOR - medial_shift_mm * LATERAL
    return ImplantSimulator().screw_input((diameter, 40.0), head, head - 40.0 * AXIS_POSTERIOR)


def _truth_breach(truth, inputs) -> float:
    vertices = np.asarray(inputs.vertices_mm)
    shank = apply_pose(np.asarray(inputs.pose), vertices[vertices[:, 2] > 1e-6])
    return float(np.min([truth.signed_distance_mm(n, shank) for n in ("L3", "L4", "L5")],
                        axis=0).max())


def test_plugin_is_discovered_like_a_third_party_one():
    entries = {e.name: e for e in discover()}
    assert entries["implant"].enabled, entries["implant"].reason
    assert entries["implant"].spec.kind == "implant"


def test_screw_through_the_medial_wall_reports_its_breach_grade_c(phantom):
    context, truth = phantom
    # 6 mm screw moved 3.6 mm medially: its medial side is ~2.1 mm past the 4.5 mm wall
    inputs = _screw(6.0, 3.6)
    expected = _truth_breach(truth, inputs)
    assert 2.0 < expected < 2.6
    result = run_simulation(ImplantSimulator(), context, inputs,
                            uncertainty=UncertaintyModel(samples=200))
    assert result.ok, result.error
    medial = result.metric("breach_medial_mm").value
    assert abs(medial - expected) <= HALF_VOXEL_MM
    assert abs(result.metric("breach_mm").value - expected) <= HALF_VOXEL_MM
    by_direction = {d: result.metric(f"breach_{d}_mm").value
                    for d in ("lateral", "superior", "inferior", "anterior")}
    assert all(v < medial for v in by_direction.values())
    assert result.details["gertzbein_grade"] == "C"
    assert result.metric("gertzbein_grade").value == 2.0
    low, high = result.metric("breach_mm").ci95
    assert low <= medial <= high + HALF_VOXEL_MM
    grid = result.details["grid"]  # the live (distance-grid) score agrees too
    assert abs(grid["breach_by_direction_mm"]["medial"] - expected) <= HALF_VOXEL_MM
    assert grid["grade"] == "C"
    assert result.level("cauda equina").min_distance_mm < 2.0  # the medial breach nears it


def test_screw_centred_in_the_pedicle_is_grade_a(phantom):
    context, truth = phantom
    inputs = _screw(7.0, 0.0)
    assert _truth_breach(truth, inputs) < 0  # wholly inside the analytic bone
    result = run_simulation(ImplantSimulator(), context, inputs,
                            uncertainty=UncertaintyModel(samples=0))
    assert result.ok, result.error
    assert result.details["gertzbein_grade"] == "A"
    assert result.metric("breach_mm").value == 0.0
    shares = [result.metric(k).value for k in
              ("cortical_share_pct", "cancellous_share_pct", "soft_tissue_share_pct")]
    assert sum(shares) == pytest.approx(100.0)
    assert shares[1] > 40.0 and shares[2] < 1.0  # in bone: cancellous core, no soft tissue
    assert {m.structure for m in result.metrics if m.key == "min_distance_mm"} == \
        {"nerve roots", "cauda equina", "aorta"}
    assert result.geometry.meshes and result.geometry.meshes[0].vertices_lps.shape[1] == 3


def test_min_distance_to_critical_structures_matches_the_analytic_shapes(phantom):
    context, truth = phantom
    inputs = _screw(7.0, 0.0)
    result = run_simulation(ImplantSimulator(), context, inputs,
                            uncertainty=UncertaintyModel(samples=0))
    placed = apply_pose(np.asarray(inputs.pose), np.asarray(inputs.vertices_mm))
    for name in ("cauda equina", "aorta"):  # exact structures of the phantom
        expected = float(truth.signed_distance_mm(name, placed).min())
        assert abs(result.metric("min_distance_mm", name).value - expected) <= HALF_VOXEL_MM


def test_auto_suggest_follows_the_pedicle_axis_through_the_isthmus(phantom):
    context, _ = phantom
    s = ImplantSimulator().suggest(context, "L4", "left")
    axis = np.asarray(s.tip_lps) - np.asarray(s.entry_lps)
    axis /= np.linalg.norm(axis)
    assert np.degrees(np.arccos(abs(axis @ AXIS_POSTERIOR))) < 3.0
    offset = np.asarray(s.isthmus_lps) - PEDICLE_CENTRE
    assert np.linalg.norm(offset - (offset @ AXIS_POSTERIOR) * AXIS_POSTERIOR) < 1.0
    assert abs(s.isthmus_width_mm - 2 * PEDICLE_HALF_WIDTH_MM) < 0.8
    assert s.diameter_mm in (6.5, 7.0)  # 80 % of 9 mm = 7.2, rounded down to the catalogue
    assert 0.8 * s.chord_mm - 5.0 < s.length_mm <= 0.8 * s.chord_mm
    right = ImplantSimulator().suggest(context, "L4", "right")
    assert right.entry_lps[0] == pytest.approx(-s.entry_lps[0], abs=0.5)


def test_live_score_equals_the_grid_part_of_the_full_run(phantom):
    context, _ = phantom
    simulator = ImplantSimulator()
    inputs = _screw(6.0, 3.6)
    live = simulator.live_scorer(context, inputs)
    score = live.score(np.asarray(inputs.pose))
    result = run_simulation(simulator, context, inputs, uncertainty=UncertaintyModel(samples=0),
                            parameters={"exact_check": False})
    assert result.details["method"] == "grid"
    assert score.breach_mm == pytest.approx(result.metric("breach_mm").value)
    assert score.grade == "C"


def test_collision_between_two_screws_is_reported(phantom):
    context, _ = phantom
    simulator = ImplantSimulator()
    first = _screw(6.0, 0.0)
    crossing = simulator.screw_input((6.0, 40.0), PEDICLE_CENTRE + [8.0, 0, 0],
                                     PEDICLE_CENTRE + [-8.0, 0, 0])
    apart = simulator.screw_input((6.0, 40.0), PEDICLE_CENTRE + [0, 0, 30.0],
                                  PEDICLE_CENTRE + [0, -40.0, 30.0])
    inputs = first.model_copy(update={"other_implants": (crossing, apart)})
    result = run_simulation(simulator, context, inputs, uncertainty=UncertaintyModel(samples=0),
                            parameters={"exact_check": False})
    clearances = [m.value for m in result.metrics if m.key == "implant_clearance_mm"]
    assert clearances[0] < 0 < clearances[1]
    assert result.metric("collisions").value == 1.0
