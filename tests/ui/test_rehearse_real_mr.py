"""The trajectory rehearsal on the real head MR (issue 15, acceptance; slow: SURGIPLAN_SLOW=1, the
scan from ../shared/scans): the twin from the mr-head-planning preset, two clicks in the axial
view place entry and target within one voxel, the rehearsal is saved as a plan, approved, the
PDF names the plan and every metric, review mode opens; the working trajectory comes back after
the case is saved and reopened. Screenshots go to ``$SURGIPLAN_TEST_ARTEFACTS``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgiplan.ui.plan import plans_panel as plans_module
from tests.conftest import real_scan
from tests.ui.conftest import wait_ready
from tests.ui.test_planning_panel import entries as entries
from tests.ui.test_rehearse_flow import click

pytestmark = pytest.mark.skipif(os.environ.get("SURGIPLAN_SLOW") != "1",
                                reason="real head MR end to end: minutes; set SURGIPLAN_SLOW=1")


def show(qtbot, window, twin) -> None:
    """Load ``twin`` into the window; a real scan's surfaces take minutes on a loaded machine."""
    def action() -> None:
        window._loading = True
        window.set_twin(twin)

    wait_ready(qtbot, window, action, timeout=600_000)


def test_trajectory_on_the_real_head_mr_from_clicks_to_report(qtbot, window, entries,
                                                              tmp_path, monkeypatch):
    from pypdf import PdfReader

    from surgiplan.io.bundle import load_bundle, save_bundle
    from surgiplan.io.twin_build import load_image
    from surgiplan.model.structures import Segmentation
    from surgiplan.segmentation.presets import preset_masks
    from surgiplan.twin import Twin
    from surgiplan.ui.report.export import export_report

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
    qtbot.waitUntil(lambda: panel._mc_job is None and panel.result is not None
                    and panel.result.provenance is not None, timeout=600_000)
    folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(folder / "real_mr_1_placed.png"))

    plans = window.plans_panel
    qtbot.mouseClick(plans.buttons["new"], Qt.MouseButton.LeftButton)
    name = plans.plans()[0].name
    plans.select(name)
    monkeypatch.setattr(plans_module, "ask_text", lambda *a, **k: "Dr Test, neurosurgeon")
    qtbot.mouseClick(plans.buttons["approve"], Qt.MouseButton.LeftButton)
    pdf = export_report(window, tmp_path / "real_mr.pdf", plan=name)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf).pages).split())
    assert name in text and "Dr Test" in text
    for m in plans.plans()[0].interventions[0].result["metrics"]:
        assert all(w in text for w in re.findall(r"[A-Za-z]{4,}", m["title"])), m["title"]
    qtbot.mouseClick(plans.buttons["review"], Qt.MouseButton.LeftButton)
    review = plans.review_windows[-1]
    qtbot.waitUntil(review.isVisible, timeout=10_000)
    review.grab().save(str(folder / "real_mr_2_review.png"))
    review.close()

    window.working_keeper.store()  # the working trajectory survives save and reopen
    path = save_bundle(window.twin, tmp_path / "real_mr.surgiplan")
    placed = panel.plan.entry_lps.copy(), panel.plan.target_lps.copy()
    window.dirty = False
    show(qtbot, window, load_bundle(path))
    qtbot.waitUntil(panel.plan.complete, timeout=60_000)
    assert np.allclose(panel.plan.entry_lps, placed[0])
    assert np.allclose(panel.plan.target_lps, placed[1])
