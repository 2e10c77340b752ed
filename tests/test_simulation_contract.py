"""Specs, parameters, inputs of the four kinds, levels, results and seeded uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from surgiplan.errors import BadInputError
from surgiplan.simulation import (
    AblationInput,
    ImplantInput,
    Kind,
    Level,
    Metric,
    Output,
    Parameter,
    ResectionInput,
    SimulationResult,
    SimulatorSpec,
    Status,
    TrajectoryInput,
    UncertaintyModel,
    level_for,
    validate_parameters,
)
from surgiplan.simulation.spec import parse_spec
from surgiplan.simulation.uncertainty import draw_placements, probability95

SPEC = SimulatorSpec(id="demo", title="Demo", version="1", kind=Kind.TRAJECTORY,
                     parameters=(Parameter(key="band_mm", title="Band", unit="mm", default=5.0,
                                           minimum=1.0, maximum=10.0),),
                     outputs=(Output(key="x", title="X"),))


def test_parameters_are_typed_and_ranged():
    assert validate_parameters(SPEC, None) == {"band_mm": 5.0}
    assert validate_parameters(SPEC, {"band_mm": 2}) == {"band_mm": 2.0}
    for bad in ({"band_mm": 11.0}, {"band_mm": "x"}, {"nope": 1}):
        with pytest.raises(BadInputError) as err:
            validate_parameters(SPEC, bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValidationError):
        Parameter(key="a", title="A", default=20.0, maximum=10.0)


def test_invalid_spec_is_one_line_bad_input():
    with pytest.raises(BadInputError, match="plug-in x: invalid simulator spec"):
        parse_spec({"id": "Bad Id", "title": "t", "version": "1", "kind": "trajectory"},
                   origin="plug-in x")


def test_inputs_of_all_four_kinds():
    TrajectoryInput(entry_lps=(0, 0, 0), target_lps=(1, 2, 3), diameter_mm=1.2)
    with pytest.raises(ValidationError):
        TrajectoryInput(entry_lps=(0, 0, 0), target_lps=(0, 0, 0))
    ImplantInput(implant_id="screw", vertices_mm=((0, 0, 0), (1, 0, 0), (0, 1, 0)),
                 faces=((0, 1, 2),), pose=tuple(map(tuple, np.eye(4))))
    with pytest.raises(ValidationError):
        ImplantInput(implant_id="s", vertices_mm=(), faces=(),
                     pose=tuple(map(tuple, 2 * np.eye(4))))
    AblationInput(device_id="mwa", tip_lps=(0, 0, 0), shaft_lps=(0, 0, 10), settings={"W": 60})
    ResectionInput(target_structure="tumour", margin_mm=10)
    with pytest.raises(ValidationError):
        ResectionInput()


def test_levels_against_margin():
    assert level_for(-0.1, 2.0) is Level.BREACH
    assert level_for(0.0, 2.0) is Level.CAUTION
    assert level_for(2.0, 2.0) is Level.SAFE


def test_result_json_and_failed():
    result = SimulationResult(Status.OK, metrics=[Metric("d", "D", "mm", 1.0, (0.5, 1.5), "v")])
    assert result.to_json()["metrics"][0]["ci95"] == [0.5, 1.5]
    failed = SimulationResult.failed("boom\n  twice")
    assert failed.to_json()["status"] == "failed" and failed.error == "boom twice"


def test_draws_are_seeded_and_have_the_stated_spread():
    model = UncertaintyModel(entry_sd_mm=1.0, target_sd_mm=2.0, samples=20000, seed=4)
    a = draw_placements(model, np.zeros(3), np.ones(3), n_structures=2, spacing_mm=(1, 1, 3))
    b = draw_placements(model, np.zeros(3), np.ones(3), n_structures=2, spacing_mm=(1, 1, 3))
    assert np.array_equal(a.entries, b.entries)
    assert np.allclose(a.entries.std(axis=0), 1.0, atol=0.03)
    assert np.allclose(a.targets.std(axis=0), 2.0, atol=0.05)
    assert np.allclose(a.boundary.std(axis=0), 3.0, atol=0.08)  # default: one voxel (largest)
    p, (low, high) = probability95(np.arange(1000) < 100)
    assert p == 0.1 and low < 0.1 < high
    with pytest.raises(BadInputError):
        UncertaintyModel(entry_sd_mm=-1)
