"""A third-party simulator gets the full treatment (issue 13 item 2): a small ablation plug-in
package written to a temporary folder and registered through a ``surgiplan.simulators`` entry
point naming its manifest (as ``pip install`` would), run in its child process like any
plug-in that is not bundled. It appears in the app's Ablation tab (chosen by kind and by the
capabilities the panel needs, none here), its form is built from its parameter schema, it
runs, and its result is shown; the command line runs it with ``--param``.

Run under a real X server: ``xvfb-run -a -s "-screen 0 1600x1000x24" pytest tests/ui``.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from surgiplan.simulation import SimulationContext, discover
from surgiplan.simulation.manifest import write as write_manifest
from tests.plugins_fixtures import install_entry_points
from tests.ui.conftest import TUMOUR_LPS, make_twin
from tests.ui.test_main_window import show

PLUGIN = "sp_cryo"
SIM_ID = "tp-cryo"

SOURCE = textwrap.dedent('''
    """A third-party cryoablation estimate: iceball radius from freeze cycles, tip depth."""

    import numpy as np

    from surgiplan.simulation import (AblationInput, IntervalKind, Kind, Metric, Output,
                                      Parameter, SimulationResult, SimulatorSpec, Status)

    EXACT = "exact: computed from the chosen parameters"


    class CryoSimulator:
        spec = SimulatorSpec(
            id="tp-cryo", title="Cryoablation (third-party test plug-in)", version="0.3",
            kind=Kind.ABLATION, required_roles=("target",),
            parameters=(
                Parameter(key="freeze_cycles", title="Freeze cycles", type="int", default=2,
                          minimum=1, maximum=3),
                Parameter(key="iceball_margin_mm", title="Iceball margin", unit="mm",
                          default=5.0, minimum=0.0, maximum=20.0),
                Parameter(key="gas", title="Gas", type="choice", default="argon",
                          choices=("argon", "nitrogen")),
            ),
            outputs=(Output(key="tip_depth_mm", title="Tip depth in the target", unit="mm"),
                     Output(key="iceball_radius_mm", title="Iceball radius", unit="mm")))

        def run(self, context, inputs: AblationInput, parameters, *, uncertainty,
                progress=None, cancel=None):
            target = inputs.target_structure or context.by_role("target")[0].name
            depth = -float(context.signed_distance_mm(target, np.array([inputs.tip_lps]))[0])
            radius = 8.0 + 4.0 * parameters["freeze_cycles"] - parameters["iceball_margin_mm"]
            return SimulationResult(status=Status.OK, metrics=[
                Metric("tip_depth_mm", "Tip depth in the target", "mm", depth,
                       structure=target, interval=IntervalKind.NONE, no_interval_reason=EXACT),
                Metric("iceball_radius_mm", "Iceball radius", "mm", radius,
                       interval=IntervalKind.NONE, no_interval_reason=EXACT)],
                details={"gas": parameters["gas"]})
''')


@pytest.fixture
def cryo_plugin(tmp_path, monkeypatch):
    """The plug-in package in ``tmp_path`` with its manifest and entry point, importable."""
    package = tmp_path / PLUGIN
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "simulator.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_manifest(f"{PLUGIN}.simulator:CryoSimulator", package / "surgiplan.json")
    install_entry_points(tmp_path, "sp-cryo", {"cryo": f"{PLUGIN}:surgiplan.json"})
    entry = {e.name: e for e in discover()}["cryo"]
    assert entry.enabled and entry.isolated, entry.reason  # third-party: its own process
    return tmp_path


def test_third_party_ablation_simulator_in_the_app(qtbot, window, cryo_plugin):
    show(qtbot, window, make_twin())
    window.rehearsal_dock.show()
    window.rehearsal_dock.raise_()
    panel = window.ablation_panel
    window.rehearsal_tabs.setCurrentWidget(panel)
    panel.refresh_simulators()
    listed = [panel.simulator_combo.itemData(n) for n in range(panel.simulator_combo.count())]
    assert SIM_ID in listed and "ablation" in listed
    assert panel.simulator.spec.id == "ablation"  # the bundled one stays the default

    assert panel.select_simulator(SIM_ID) is not None, panel.load_error
    assert panel.simulator_combo.currentData() == SIM_ID
    assert [p.key for p in panel.simulator.spec.parameters] == list(panel.form.values())
    assert panel.form.values() == {"freeze_cycles": 2, "iceball_margin_mm": 5.0,
                                   "gas": "argon"}
    assert panel.form.editor("gas").count() == 2  # a choice box from the schema
    assert not panel.optimise_button.isEnabled()  # no 'optimise' capability declared
    assert panel.device_combo.count() == 1  # no device tables: the custom zone only

    panel.form.set_values({"freeze_cycles": 3, "gas": "nitrogen"})
    panel.target_combo.setCurrentText("tumour")
    panel.set_probe(TUMOUR_LPS, TUMOUR_LPS + np.array([-60.0, 0.0, 0.0]))
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.provenance is not None,
                    timeout=60_000)
    result = panel.result
    assert result.ok, result.error
    assert result.provenance.simulator_id == SIM_ID
    assert result.provenance.parameters["freeze_cycles"] == 3
    assert result.metric("iceball_radius_mm").value == pytest.approx(8.0 + 12.0 - 5.0)
    depth = -SimulationContext(window.twin).signed_distance_mm("tumour", TUMOUR_LPS[None])[0]
    assert depth > 0  # the tip is in the tumour
    assert result.metric("tip_depth_mm", "tumour").value == pytest.approx(depth, abs=1e-4)
    shown = [panel.metrics_table.item(r, 0).text() for r in range(panel.metrics_table.rowCount())]
    assert "Iceball radius" in shown and "Tip depth in the target" in shown

    plan = panel.save_as_plan()  # a plan remembers which simulator it came from
    assert plan.interventions[-1].simulator_id == SIM_ID


def test_third_party_simulator_from_the_cli_with_params(cryo_plugin, tmp_path, capsys):
    from surgiplan.cli.main import main
    from surgiplan.io.bundle import save_bundle

    case = save_bundle(make_twin(), tmp_path / "case.surgiplan")
    tip, entry = TUMOUR_LPS, TUMOUR_LPS + np.array([-60.0, 0.0, 0.0])
    argv = ["simulate", "ablation", str(case), "--tip", ",".join(map(str, tip)),
            "--entry", ",".join(map(str, entry)), "--zone", "40x30", "--target", "tumour",
            "--simulator", SIM_ID, "--samples", "0"]
    assert main([*argv, "--param", "freeze_cycles=1", "--param", "gas=nitrogen",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["iceball_radius_mm"]["value"] == pytest.approx(8.0 + 4.0 - 5.0)
    assert data["provenance"]["parameters"]["gas"] == "nitrogen"
    assert main([*argv, "--param", "gas=helium"]) == 2
    err = capsys.readouterr().err
    assert "gas must be one of ['argon', 'nitrogen']" in err and len(err.splitlines()) == 1
