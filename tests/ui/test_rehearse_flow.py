"""Issue 15 in the app, through real input events: two clicks place a trajectory where they
land (the views do not move between them), the rehearsal is saved as a plan, Edit > Undo and
Ctrl+Z reach plan edits and trajectory moves, selecting a plan draws it, the mouse wheel over an
unfocused spin box scrolls instead of changing a parameter, and closing with an unsaved
rehearsal asks first. Screenshots go to ``$SURGIPLAN_TEST_ARTEFACTS`` (default: tmp_path)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from surgiplan.ui.plan import plans_panel as plans_module
from surgiplan.ui.rehearse import rehearsal_panels
from surgiplan.ui.rehearse.rehearsal_tools import mesh_section_lps
from tests.ui.test_main_window import send_drag
from tests.ui.test_planning_panel import entries as entries
from tests.ui.test_planning_panel import open_planning


def artefact(window, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rehearse_flow_{name}.png"
    window.grab().save(str(path))
    return path


def click(view, point_lps) -> None:
    at = view.lps_to_screen(np.asarray(point_lps, float))
    send_drag(view, Qt.MouseButton.LeftButton, at, at, steps=1)


def wheel(widget, delta: int = 120) -> None:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, widget.mapToGlobal(centre), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def voxel_mm(twin) -> np.ndarray:
    return np.asarray(twin.geometry.spacing_mm, float)


def test_place_save_undo_select_wheel_and_close(qtbot, window, entries, tmp_path,
                                                monkeypatch):
    panel = open_planning(qtbot, window, entries)
    twin = window.twin
    view = window.slice_views["axial"]
    window.set_cursor(np.array([0.0, 0.0, 0.0]))
    qtbot.wait(50)
    entry_lps = np.array([12.0, -30.0, view.screen_to_lps(QPointF(5, 5))[2]])
    target_lps = np.array([10.0, 2.0, entry_lps[2]])

    # 2: two clicks in succession land where they were aimed; nothing moves in between
    qtbot.mouseClick(panel.entry_button, Qt.MouseButton.LeftButton)
    geometry = (view.size(), view.slice_index, view.lps_to_screen(target_lps))
    click(view, entry_lps)
    qtbot.wait(100)
    assert (view.size(), view.slice_index, view.lps_to_screen(target_lps)) == geometry
    qtbot.mouseClick(panel.target_button, Qt.MouseButton.LeftButton)
    click(view, target_lps)
    qtbot.wait(100)
    assert not window.probe_dock.isVisible()
    assert np.all(np.abs(panel.plan.entry_lps - entry_lps) <= voxel_mm(twin))
    assert np.all(np.abs(panel.plan.target_lps - target_lps) <= voxel_mm(twin))
    artefact(window, tmp_path, "1_placed")

    # 5: no-go structures and a zone at the crosshair go into the search request
    panel.nogo_edit.setText("tumour, body")
    panel.add_nogo_at_cursor()
    request = panel.search_request()
    assert request.no_go_structures == ("tumour", "body")
    assert len(request.no_go_spheres_lps) == 1 and request.no_go_spheres_lps[0][3] == 20.0
    panel.nogo_clear.click()
    panel.nogo_edit.clear()

    # 10: the wheel over an unfocused parameter scrolls; with focus it changes the value
    spin = panel.tool_form.editor("diameter_mm")
    before = spin.value()
    wheel(spin)
    assert spin.value() == before
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    wheel(spin)
    assert spin.value() != before
    spin.setValue(before)
    view.setFocus()

    # 1 + 4: save as a plan from the Plans tab; selecting it draws it in the slice views
    plans = window.plans_panel
    qtbot.mouseClick(plans.buttons["new"], Qt.MouseButton.LeftButton)
    assert len(plans.plans()) == 1
    saved = plans.plans()[0].interventions[0].inputs
    assert np.allclose(saved["entry_lps"], panel.plan.entry_lps)
    assert np.allclose(saved["target_lps"], panel.plan.target_lps)
    plans.select(plans.plans()[0].name)
    axes = plans.shown_axes()
    assert len(axes) == 1 and np.allclose(axes[0][1], panel.plan.target_lps)
    assert rehearsal_panels.unsaved_rehearsals(window) == []
    artefact(window, tmp_path, "2_saved_and_selected")

    # 8: approve (the dialog answered), write the PDF: only the plan's own objects are drawn
    from pypdf import PdfReader

    from surgiplan.ui.report.capture import capture_plan_views
    from surgiplan.ui.report.export import export_report

    monkeypatch.setattr(plans_module, "ask_text", lambda *a, **k: "Dr Test, neurosurgeon")
    qtbot.mouseClick(plans.buttons["approve"], Qt.MouseButton.LeftButton)
    name = plans.plans()[0].name
    assert plans.plans()[0].approved_by == "Dr Test, neurosurgeon"
    working = list(view._decorations)
    images = capture_plan_views(window, plans.plans()[0])
    folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
    images["axial"].save(str(folder / "rehearse_flow_report_axial.png"))
    assert view._decorations == working  # the working trajectory is back after the capture
    pdf = export_report(window, tmp_path / "report.pdf", plan=name)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf).pages).split())
    assert name in text and "Dr Test" in text
    undo_plan_edits = 2  # the approval, then the new plan

    # review mode (button): every stored metric of the plan shows a value
    qtbot.mouseClick(plans.buttons["review"], Qt.MouseButton.LeftButton)
    review = plans.review_windows[-1]
    qtbot.waitUntil(review.isVisible, timeout=5000)
    review.go_to(1)
    shown = review.numbers_label.text()
    result = plans.plans()[0].interventions[0].result
    assert result is not None
    review.grab().save(str(folder / "rehearse_flow_review.png"))
    review.close()
    per_structure = {"min_distance_mm", "risk", "breach_probability"}  # in the level lines
    for metric in result["metrics"]:
        if metric["key"] in per_structure and metric.get("structure"):
            assert f"{metric['structure']}: closest" in shown
            continue
        row = shown.split(html.escape(metric["title"]), 1)[1].split("</tr>", 1)[0]
        assert "not assessable" in row or f"<b>{metric['value']:.1f}</b>" in row, row

    # 3: Ctrl+Z / Edit > Undo reach the plan edit, then a trajectory move
    undo, redo = window.edit_history.actions
    assert undo.isEnabled()
    for _ in range(undo_plan_edits):
        undo.trigger()
    assert plans.plans() == []
    for _ in range(undo_plan_edits):
        redo.trigger()
    assert len(plans.plans()) == 1 and plans.plans()[0].approved_by
    placed = panel.plan.target_lps.copy()
    moved_lps = placed + np.array([0.0, 8.0, 0.0])
    send_drag(view, Qt.MouseButton.LeftButton, view.lps_to_screen(placed),
              view.lps_to_screen(moved_lps))
    assert np.linalg.norm(panel.plan.target_lps - moved_lps) <= 2.0
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.allclose(panel.plan.target_lps, placed)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert np.linalg.norm(panel.plan.target_lps - moved_lps) <= 2.0

    # 1: the moved trajectory is in no plan: closing asks; Cancel keeps the window open
    assert [k for k, _ in rehearsal_panels.unsaved_rehearsals(window)] == ["trajectory"]
    asked = []
    monkeypatch.setattr(rehearsal_panels, "ask_save_rehearsals",
                        lambda w, kinds: asked.append(kinds) or QMessageBox.StandardButton.Cancel)
    window.dirty = False
    assert not window.close()
    assert asked == [["trajectory"]] and window.isVisible()
    monkeypatch.setattr(rehearsal_panels, "ask_save_rehearsals",
                        lambda w, kinds: QMessageBox.StandardButton.Save)
    assert rehearsal_panels.confirm_unsaved_rehearsals(window)
    assert len(plans.plans()) == 2 and rehearsal_panels.unsaved_rehearsals(window) == []
    assert plans_module.EditHistory  # the router class the window uses
    artefact(window, tmp_path, "3_after_undo_redo_save")


@pytest.mark.parametrize("kind", ["implant", "ablation"])
def test_rehearsal_saves_as_a_plan_from_its_panel(qtbot, window, kind):
    """The implant and ablation panels save their placement through their own button."""
    from tests.ui.conftest import TUMOUR_LPS, make_twin
    from tests.ui.test_main_window import show

    show(qtbot, window, make_twin())
    panel = getattr(window, f"{kind}_panel")
    window.rehearsal_dock.raise_()
    window.rehearsal_tabs.setCurrentWidget(panel)
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    if panel.ensure_simulator() is None:
        pytest.skip(f"the {kind} plug-in is not installed: {panel.load_error}")
    qtbot.mouseClick(panel.save_new_button, Qt.MouseButton.LeftButton)
    assert window.plans_panel.plans() == []  # nothing placed: an error, no plan
    for box in list(window.error_dialogs):
        box.close()
    panel.plan.set_points(TUMOUR_LPS + np.array([0.0, -30.0, 0.0]), TUMOUR_LPS)
    qtbot.mouseClick(panel.save_new_button, Qt.MouseButton.LeftButton)
    plans = window.plans_panel.plans()
    assert len(plans) == 1 and plans[0].interventions[0].kind == kind
    assert rehearsal_panels.unsaved_rehearsals(window) == []
    if kind == "ablation":  # item 7: the zone is outlined on the 2D slices
        qtbot.waitUntil(lambda: bool(panel.zone_outline.meshes), timeout=60_000)
        window.set_cursor(TUMOUR_LPS)
        qtbot.wait(50)
        view = window.slice_views["axial"]
        from surgiplan.ui.rehearse.rehearsal_tools import view_plane_lps
        vertices, faces, _c, _n = panel.zone_outline.meshes[0]
        a, _b = mesh_section_lps(vertices, faces, *view_plane_lps(view))
        assert len(a) > 8
        folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", "/tmp"))
        view.grab().save(str(folder / "rehearse_flow_ablation_zone_axial.png"))


def test_mesh_section_of_a_sphere_is_its_circle():
    import pyvista as pv

    sphere = pv.Sphere(radius=10.0, theta_resolution=60, phi_resolution=60)
    faces = sphere.faces.reshape(-1, 4)[:, 1:]
    a, b = mesh_section_lps(np.asarray(sphere.points), faces, np.array([0.0, 0.0, 6.0]),
                            np.array([0.0, 0.0, 1.0]))
    radii = np.linalg.norm(np.vstack([a, b])[:, :2], axis=1)
    assert len(a) > 40 and np.allclose(np.vstack([a, b])[:, 2], 6.0)
    assert np.all(np.abs(radii - 8.0) < 0.1)  # sqrt(10^2 - 6^2)


def test_use_best_entry_lands_on_the_skin():
    """Item 6: the optimiser keeps its path length; the panel moves the entry along the
    probe's line to where it leaves the skin (within a voxel of the analytic ellipsoid)."""
    from surgiplan.ui.rehearse.ablation_panel import skin_entry_lps
    from tests.ui.conftest import make_twin

    twin = make_twin()
    tip = np.array([-15.0, 10.0, -10.0])
    skin_y = -38.0 * np.sqrt(1 - (15 / 34) ** 2 - (10 / 45) ** 2)  # body ellipsoid, anterior
    for shaft_y in (-10.0, -60.0):  # inside the body, and 13-19 mm off it
        entry = skin_entry_lps(twin, tip, np.array([-15.0, shaft_y, -10.0]))
        assert abs(entry[1] - skin_y) <= max(twin.geometry.spacing_mm)
        assert np.allclose(entry[[0, 2]], tip[[0, 2]])
