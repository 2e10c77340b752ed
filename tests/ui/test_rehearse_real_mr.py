"""The trajectory rehearsal on the real head MR (issue 15, acceptance; slow: SURGIPLAN_SLOW=1, the
scan from ../shared/scans), with the steps of tests/ui/rehearse_steps.py (real input events):
the twin from the mr-head-planning preset, two clicks in the axial view place entry and target
within one voxel, the full run is saved as a plan (Plans: New from trajectory), the entry is
dragged along the skin and the re-run saved as a second plan, Ctrl+Z / Ctrl+Shift+Z undo and
redo the save, Compare shows both, the first is approved, File > Export report writes the PDF
(plan name, approver, every metric with its value, interval and source), review mode shows every
value; the working trajectory comes back after the case is saved and reopened. Screenshots of
each step go to ``$SURGIPLAN_TEST_ARTEFACTS`` (default: the test's tmp_path)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.conftest import real_scan
from tests.ui import rehearse_steps as steps
from tests.ui.conftest import wait_ready
from tests.ui.test_planning_panel import entries as entries
from tests.ui.test_rehearse_flow import click

APPROVER = "Dr Test, neurosurgeon"
pytestmark = pytest.mark.skipif(os.environ.get("SURGIPLAN_SLOW") != "1",
                                reason="real head MR end to end: minutes; set SURGIPLAN_SLOW=1")


def show(qtbot, window, twin) -> None:
    """Load ``twin`` into the window; a real scan's surfaces take minutes on a loaded machine."""
    def action() -> None:
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action, timeout=600_000)


def wait_full_run(qtbot, panel) -> None:
    """Until the panel's full Monte Carlo run of the current trajectory is shown."""
    qtbot.waitUntil(lambda: panel._mc_job is None and panel.result is not None
                    and panel.result.provenance is not None, timeout=600_000)
    assert panel.result.ok, panel.result.error


def save_trajectory(qtbot, plans):
    """Click the Plans tab's "New from trajectory"; the new plan."""
    before = {p.name for p in plans.plans()}
    qtbot.mouseClick(plans.buttons["new"], Qt.MouseButton.LeftButton)
    added = [p for p in plans.plans() if p.name not in before]
    assert len(added) == 1, "New from trajectory did not add one plan"
    return added[0]


def test_trajectory_on_the_real_head_mr_from_clicks_to_report(qtbot, window, entries,
                                                              tmp_path, monkeypatch):
    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.io.twin_build import load_image
    from surgiplan.model.structures import Segmentation
    from surgiplan.segmentation.presets import preset_masks
    from surgiplan.twin import Twin

    volume = load_image(real_scan("head-mr-t1-mprage"))
    twin = Twin(volume, Segmentation(geometry=volume.geometry))
    for p in preset_masks(volume, "mr-head-planning"):
        twin.add_structure(p.name, p.mask, role=p.role)
    g = volume.geometry
    ventricles = g.index_to_lps(np.argwhere(twin.segmentation.mask("ventricles"))[:, ::-1]
                                .mean(axis=0))
    target = ventricles + np.array([12.0, 0.0, -8.0])  # the left thalamus
    skin = twin.segmentation.mask(next(s.name for s in twin.structures
                                       if str(s.role) == "skin"))
    started = time.perf_counter()
    times: dict[str, float] = {}
    show(qtbot, window, twin)
    panel = window.planning_panel
    panel.set_entries(entries)
    window.planning_dock.raise_()
    qtbot.waitUntil(panel.is_prepared, timeout=600_000)
    panel.tool_form.set_values({"diameter_mm": 0.8})
    panel.uncertainty_form.set_values({"timeout_s": 600.0})
    window.set_cursor(target)
    qtbot.wait(100)
    view = window.slice_views["axial"]
    along = target + np.arange(0.0, 150.0, 0.5)[:, None] * np.array([1.0, 0.0, 0.0])
    idx = np.rint(g.lps_to_index(along)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(g.size)), axis=1)
    on_skin = np.zeros(len(along), bool)
    on_skin[inside] = skin[tuple(idx[inside][:, ::-1].T)]
    entry = along[np.nonzero(on_skin)[0].max() - 2]  # the patient's left skin, same LPS z
    from surgiplan.ui.rehearse.rehearsal_tools import view_plane_lps

    origin, normal = view_plane_lps(view)  # the known points, on the slice the view shows
    entry, target = ((p - ((p - origin) @ normal) * normal) for p in (entry, target))
    qtbot.mouseClick(panel.entry_button, Qt.MouseButton.LeftButton)
    click(view, entry)
    qtbot.mouseClick(panel.target_button, Qt.MouseButton.LeftButton)
    click(view, target)
    voxel = float(max(g.spacing_mm))  # within one voxel (an oblique grid: its largest side)
    assert np.linalg.norm(panel.plan.entry_lps - entry) <= voxel
    assert np.linalg.norm(panel.plan.target_lps - target) <= voxel
    wait_full_run(qtbot, panel)
    folder = steps.artefacts(tmp_path)
    steps.shot(window, folder, "real_mr_1_placed")
    times["place+run"] = time.perf_counter() - started

    plans = window.plans_panel  # 2. save as a plan (Plans tab: New from trajectory)
    first = save_trajectory(qtbot, plans)
    steps.assert_same_numbers(first.interventions[0].result, panel.result)
    placed_entry = panel.plan.entry_lps.copy()  # 3. adjust: drag the entry along the skin
    steps.drag_point(window, placed_entry, np.array([0.0, 6.0, 0.0]))
    assert np.linalg.norm(panel.plan.entry_lps - (placed_entry + [0.0, 6.0, 0.0])) <= voxel
    qtbot.wait(50)
    wait_full_run(qtbot, panel)
    second = save_trajectory(qtbot, plans)
    assert second.interventions[0].inputs != first.interventions[0].inputs
    steps.assert_same_numbers(second.interventions[0].result, panel.result)
    steps.shot(window, folder, "real_mr_2_adjusted_saved")
    times["adjust+run"] = time.perf_counter() - started - sum(times.values())

    steps.undo_redo(qtbot, window, plans, [first.name], [first.name, second.name])  # 4.
    steps.compare_two(qtbot, window, folder, "real_mr", "path_length_mm",  # 5.
                      [first.name, second.name])
    times["compare"] = time.perf_counter() - started - sum(times.values())
    approved = steps.approve(qtbot, window, monkeypatch, first.name, APPROVER)  # 6.
    pdf = steps.write_pdf(window, monkeypatch, tmp_path / "real_mr.pdf")  # 7.
    steps.check_pdf(window, steps.pdf_text(pdf), first.name, APPROVER)
    steps.shot(window, folder, "real_mr_4_approved")
    times["approve+pdf"] = time.perf_counter() - started - sum(times.values())
    unassessable = [f"{m['title']}: {m['not_assessable']}"
                    for m in approved.interventions[0].result["metrics"] if m.get("not_assessable")]
    print("\nnot assessable on the real head MR:", unassessable or "none")
    steps.review(qtbot, window, folder, "real_mr", approved)  # 8.
    times["review"] = time.perf_counter() - started - sum(times.values())
    print("\ntrajectory on the real head MR: " + ", ".join(f"{k} {v:.1f} s"
                                                         for k, v in times.items())
          + f"; screenshots in {folder}")

    window.working_keeper.store()  # the working trajectory survives save and reopen
    path = save_bundle(window.twin, tmp_path / "real_mr.surgiplan")
    placed = panel.plan.entry_lps.copy(), panel.plan.target_lps.copy()
    window.dirty = False
    show(qtbot, window, load_bundle(path))
    qtbot.waitUntil(panel.plan.complete, timeout=60_000)
    assert np.allclose(panel.plan.entry_lps, placed[0])
    assert np.allclose(panel.plan.target_lps, placed[1])
