"""The "write your own simulator" example in docs/ runs as a real installed entry point."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from surgiplan.simulation import TrajectoryInput, UncertaintyModel, discover, run_simulation
from tests.plugins_fixtures import install_entry_points
from tests.test_simulation_plugins import small_context

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-simulator.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_example_is_at_most_50_lines():
    assert len(_example().strip().splitlines()) <= 50


def test_example_installs_lists_and_runs(tmp_path, monkeypatch):
    (tmp_path / "tipcheck.py").write_text(_example(), encoding="utf-8")
    entry = re.search(r'^tipcheck = "(.+)"$', DOC.read_text(), re.M).group(1)
    install_entry_points(tmp_path, "tipcheck", {"tipcheck": entry})
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {e.name: e for e in discover()}["tipcheck"]
    assert found.enabled, found.reason
    context = small_context()
    inputs = TrajectoryInput(entry_lps=(2.0, 12.0, 12.0), target_lps=(12.0, 12.0, 19.0))
    result = run_simulation(found.simulator, context, inputs,
                            uncertainty=UncertaintyModel(samples=500, seed=3))
    assert result.ok, result.error
    metric = result.metric("tip_distance_mm", "vessel")
    expected = float(context.signed_distance_mm("vessel", np.array([[12.0, 12.0, 19.0]]))[0])
    assert metric.value == expected and metric.ci95[0] < expected < metric.ci95[1]
    assert result.level("vessel").level == ("safe" if expected >= 2.0 else "caution")
    assert result.provenance.simulator_id == "tipcheck" and result.provenance.samples == 500
