"""The working rehearsals survive closing and reopening the case (issue 15, item 3): the
trajectory placed with two clicks and an ablation probe are kept in ``plans/working.json`` of
the saved bundle and are back in their panels after the case is opened again; restoring is no
undo step and does not mark the case changed. A damaged entry is ignored with a message."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgiplan.io.bundle import load_bundle, save_bundle
from surgiplan.plans.working import WORKING_ENTRY, working_from_extras
from tests.ui.test_main_window import show
from tests.ui.test_planning_panel import entries as entries
from tests.ui.test_planning_panel import open_planning
from tests.ui.test_rehearse_flow import click
from tests.ui.test_third_party_plugin import cryo_plugin as cryo_plugin


def test_working_trajectory_and_probe_are_restored_on_reopen(qtbot, window, entries, tmp_path):
    panel = open_planning(qtbot, window, entries)
    view = window.slice_views["axial"]
    window.set_cursor(np.array([0.0, 0.0, 0.0]))
    qtbot.wait(50)
    from PySide6.QtCore import QPointF

    z = float(view.screen_to_lps(QPointF(5, 5))[2])
    entry_lps, target_lps = np.array([12.0, -30.0, z]), np.array([10.0, 2.0, z])
    qtbot.mouseClick(panel.entry_button, Qt.MouseButton.LeftButton)
    click(view, entry_lps)
    qtbot.mouseClick(panel.target_button, Qt.MouseButton.LeftButton)
    click(view, target_lps)
    placed = panel.plan.entry_lps.copy(), panel.plan.target_lps.copy()
    assert np.linalg.norm(placed[1] - target_lps) <= 1.5

    ablation = window.ablation_panel
    if ablation.ensure_simulator() is None:
        pytest.skip(f"the ablation plug-in is not installed: {ablation.load_error}")
    ablation.target_combo.setCurrentText("tumour")
    tip, shaft = np.array([-15.0, 10.0, -10.0]), np.array([-15.0, -30.0, -10.0])
    ablation.plan.entry_lps, ablation.plan.target_lps = shaft, tip  # set without a run

    keeper = window.working_keeper
    qtbot.waitUntil(lambda: WORKING_ENTRY in window.twin.bundle_extras, timeout=5000)
    keeper.store()  # the probe was set without a signal: store it now
    assert window.dirty
    records, problem = working_from_extras(window.twin.bundle_extras)
    assert problem == "" and set(records) == {"trajectory", "ablation"}
    path = save_bundle(window.twin, tmp_path / "case.surgiplan")

    # reopen: a fresh twin from disk, into the same window (its panels were reset)
    window.dirty = False
    show(qtbot, window, load_bundle(path))
    qtbot.waitUntil(lambda: panel.plan.complete(), timeout=5000)
    assert np.allclose(panel.plan.entry_lps, placed[0])
    assert np.allclose(panel.plan.target_lps, placed[1])
    assert ablation.plan.complete() and np.allclose(ablation.plan.target_lps, tip)
    assert ablation.target_combo.currentText() == "tumour"
    assert not window.dirty  # putting the case back is no change
    undo = window.edit_history.actions[0]
    assert not undo.isEnabled()  # ... and no undo step
    qtbot.waitUntil(lambda: panel.result is not None, timeout=20_000)  # the trajectory scores


def test_a_damaged_working_entry_is_ignored_with_a_message(qtbot, window, tmp_path):
    from tests.ui.conftest import make_twin

    twin = make_twin()
    twin.bundle_extras[WORKING_ENTRY] = b"{not json"
    show(qtbot, window, twin)
    qtbot.waitUntil(lambda: bool(window.working_keeper.message), timeout=5000)
    assert WORKING_ENTRY in window.working_keeper.message
    assert not window.planning_panel.plan.complete()


def test_every_rehearsal_kind_restores_its_simulator(qtbot, window, cryo_plugin):
    """The working state names the simulator each rehearsal used: a third-party ablation
    simulator comes back with its parameters and probe; a simulator no longer offered leaves
    the panel's own (implant, resection), the placement still restored."""
    from surgiplan.model.structures import Role
    from surgiplan.ui.rehearse.working_state import capture_all, restore
    from tests.ui.conftest import TUMOUR_LPS, make_twin
    from tests.ui.test_third_party_plugin import SIM_ID

    twin = make_twin()
    k, j, i = np.indices(twin.geometry.shape_zyx)
    lps = twin.geometry.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    twin.add_structure("organ", np.linalg.norm(lps - TUMOUR_LPS, axis=-1) <= 20.0,
                       role=Role.ORGAN)
    show(qtbot, window, twin)
    ablation, implant, resection = (window.ablation_panel, window.implant_panel,
                                    window.resection_panel)
    ablation.refresh_simulators()
    assert ablation.select_simulator(SIM_ID) is not None, ablation.load_error
    ablation.form.set_values({"freeze_cycles": 3})
    ablation.target_combo.setCurrentText("tumour")
    shaft = TUMOUR_LPS + np.array([-60.0, 0.0, 0.0])
    ablation.plan.entry_lps, ablation.plan.target_lps = shaft, TUMOUR_LPS.copy()
    if implant.ensure_simulator() is None or resection.ensure_simulator() is None:
        pytest.skip(f"a bundled plug-in is missing: {implant.load_error or resection.load_error}")
    head, tip = TUMOUR_LPS + np.array([0.0, -30.0, 0.0]), TUMOUR_LPS.copy()
    implant.plan.entry_lps, implant.plan.target_lps = head, tip
    resection.plane.blockSignals(True)
    resection.plane.set_plane(TUMOUR_LPS + np.array([5.0, 0.0, 0.0]), (1.0, 0.0, 0.0))
    resection.plane.blockSignals(False)
    records = capture_all(window)
    assert records["ablation"].simulator_id == SIM_ID
    assert records["implant"].simulator_id == "implant"
    assert records["resection"].simulator_id == "resection"

    # the user went back to the bundled ablation simulator and moved everything away
    ablation.select_simulator("ablation")
    assert ablation.simulator_id == "ablation" and not ablation.plan.complete()
    implant.plan.entry_lps = implant.plan.target_lps = None
    restore(window, "ablation", records["ablation"])
    assert ablation.simulator_id == SIM_ID and ablation.simulator_combo.currentData() == SIM_ID
    assert ablation.form.values()["freeze_cycles"] == 3
    assert np.allclose(ablation.plan.target_lps, TUMOUR_LPS)
    assert np.allclose(ablation.plan.entry_lps, shaft)

    for kind, panel in (("implant", implant), ("resection", resection)):
        gone = records[kind].model_copy(update={"simulator_id": "no-longer-installed"})
        restore(window, kind, gone)
        assert panel.simulator_id == kind and panel.simulator is not None
    assert np.allclose(implant.plan.target_lps, tip)
    assert np.allclose(resection.plane.point_lps, TUMOUR_LPS + np.array([5.0, 0.0, 0.0]))
