"""A structure's level accounts for its Monte Carlo breach probability (every simulator):
P(breach) >= 5 % is at least caution, >= 50 % a breach; never "safe" next to P(breach) 43 %."""

from __future__ import annotations

import math

import pytest

from surgiplan.simulation import (
    Level,
    SimulationResult,
    Status,
    StructureLevel,
    level_for,
    level_for_probability,
)


@pytest.mark.parametrize(("p", "level"), [(None, Level.SAFE), (math.nan, Level.SAFE),
                                          (0.0, Level.SAFE), (0.049, Level.SAFE),
                                          (0.05, Level.CAUTION), (0.30, Level.CAUTION),
                                          (0.43, Level.CAUTION), (0.50, Level.BREACH),
                                          (0.9, Level.BREACH)])
def test_probability_floor(p, level) -> None:
    assert level_for_probability(p) is level
    assert level_for(20.0, 2.0, p) is level  # far by the nominal clearance


def test_clearance_still_counts() -> None:
    assert level_for(-1.0, 2.0, 0.0) is Level.BREACH
    assert level_for(1.0, 2.0, 0.0) is Level.CAUTION
    assert level_for(math.nan, 2.0, 0.6) is Level.BREACH


def test_structure_level_never_safe_with_sizeable_breach_probability() -> None:
    lv = StructureLevel("liver vessels", Level.SAFE, 12.0, 2.0, 0.43)
    assert lv.level is Level.CAUTION
    result = SimulationResult(Status.OK, levels=[lv])
    assert result.overall_level is Level.CAUTION
    assert any("P(breach) 43 %" in line for line in result.verdict_reasons())
    back = SimulationResult.from_json(result.to_json())  # what Compare/review/PDF read
    assert back.level("liver vessels").level is Level.CAUTION
    # an older saved result that said "safe" is read back with the floor applied
    data = result.to_json()
    data["levels"][0]["level"] = "safe"
    assert SimulationResult.from_json(data).overall_level is Level.CAUTION
    assert StructureLevel("x", Level.SAFE, 12.0, 2.0, 0.5).level is Level.BREACH


def test_reason_line_puts_no_unit_after_a_missing_clearance() -> None:
    result = SimulationResult(Status.OK, levels=[
        StructureLevel("face", Level.CAUTION, math.nan, 3.0, None),
        StructureLevel("vessel", Level.CAUTION, 1.25, 3.0, None)])
    lines = result.verdict_reasons()
    assert any("clearance not assessable, margin 3 mm" in line for line in lines), lines
    assert any("clearance 1.2 mm, margin 3 mm" in line for line in lines), lines
    assert not any("not assessable mm" in line for line in lines), lines
