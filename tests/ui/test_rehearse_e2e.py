"""Every rehearsal kind from first click to signed report, in the app (issue 15, acceptance),
through real input events on the phantoms: place (clicks in the axial view), save as a plan
(the panel's button), adjust (a drag) and save again, undo/redo (Ctrl+Z, Ctrl+Shift+Z), Compare
the two plans, approve (the Plans tab's button), write the PDF (its text read back with pypdf:
plan name, every metric's title, interval kind, threshold source) and open review mode (every
metric shown). The trajectory kind is tests/ui/test_rehearse_flow.py. Screenshots of each step
go to ``$SURGIPLAN_TEST_ARTEFACTS`` (default: tmp_path)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from surgiplan.ui.plan import plans_panel as plans_module
from tests.ui.rehearse_steps import drag_point as _drag_point
from tests.ui.rehearse_steps import pdf_text as _pdf_text
from tests.ui.rehearse_steps import place_two as _place_two
from tests.ui.test_rehearsal_panels import liver_parts as liver_parts
from tests.ui.test_rehearsal_panels import open_panel, screw_ends, twin_of, wait_full
from tests.ui.test_rehearsal_panels import spine_parts as spine_parts

SLOW_MS = 300_000  # generous: the shared 2-core CI machine can be very loaded


def _shot(window, tmp_path: Path, kind: str, step: str) -> None:
    folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(folder / f"e2e_{kind}_{step}.png"))


def _place_ablation(qtbot, window, panel, twin) -> None:
    panel.target_combo.setCurrentText("tumour 1")
    panel.set_device("custom")
    panel.long_spin.setValue(45.0)
    panel.short_spin.setValue(40.0)
    idx = np.argwhere(twin.segmentation.mask("tumour 1")).mean(0)[::-1]
    tip = twin.geometry.index_to_lps(idx[None])[0]
    _place_two(qtbot, window, panel, "target", tip, "entry", tip + [-60.0, 0.0, 0.0])


def _adjust_ablation(qtbot, window, panel) -> None:
    panel.place_buttons["target"].setChecked(True)
    _drag_point(window, panel.plan.target_lps, np.array([-6.0, 0.0, 0.0]))
    panel.place_buttons["target"].setChecked(False)


def _place_implant(qtbot, window, panel, twin) -> None:
    panel.diameter_spin.setValue(6.0)
    panel.length_spin.setValue(40.0)
    head, tip = screw_ends(0.0)
    _place_two(qtbot, window, panel, "entry", head, "target", tip)


def _adjust_implant(qtbot, window, panel) -> None:
    panel.place_buttons["entry"].setChecked(True)
    _drag_point(window, panel.plan.entry_lps, np.array([-2.0, 0.0, 0.0]))
    panel.place_buttons["entry"].setChecked(False)


def _place_resection(qtbot, window, panel, twin) -> None:
    qtbot.waitUntil(lambda: panel.plane.is_set(), timeout=SLOW_MS)
    window.set_cursor(panel.plane.point_lps)
    qtbot.wait(50)
    panel.plane_button.setChecked(True)
    _drag_point(window, panel.plane.point_lps, np.array([-4.0, 0.0, 0.0]))
    panel.plane_button.setChecked(False)


def _adjust_resection(qtbot, window, panel) -> None:
    panel.plane_button.setChecked(True)
    _drag_point(window, panel.plane.point_lps, np.array([-8.0, 0.0, 0.0]))
    panel.plane_button.setChecked(False)


KINDS = {
    "ablation": ("liver", _place_ablation, _adjust_ablation, "coverage_pct"),
    "implant": ("spine", _place_implant, _adjust_implant, "breach_mm"),
    "resection": ("liver", _place_resection, _adjust_resection, "remnant_pct"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_rehearsal_kind_from_first_click_to_signed_report(qtbot, window, kind, tmp_path,
                                                          monkeypatch, request):
    phantom, place, adjust, key = KINDS[kind]
    twin = twin_of(request.getfixturevalue(f"{phantom}_parts"))
    panel = open_panel(qtbot, window, twin, kind)
    panel.uncertainty_form.set_values({"timeout_s": SLOW_MS / 1000.0})  # a loaded CI machine
    plans = window.plans_panel

    place(qtbot, window, panel, twin)  # 1. place, then the full run
    if kind != "resection":
        assert panel.plan.complete()
    panel.run_full()
    wait_full(qtbot, panel, timeout=SLOW_MS)
    assert panel.result.ok, panel.result.error
    _shot(window, tmp_path, kind, "1_placed")
    qtbot.mouseClick(panel.save_new_button, Qt.MouseButton.LeftButton)  # 2. save
    assert len(plans.plans()) == 1
    first = plans.plans()[0]
    assert first.interventions[0].kind == kind
    stored = first.interventions[0].result
    assert stored is not None and any(m["key"] == key for m in stored["metrics"])

    adjust(qtbot, window, panel)  # 3. adjust with a drag, save again
    wait_full(qtbot, panel, timeout=SLOW_MS)
    assert panel.result.ok, panel.result.error
    qtbot.mouseClick(panel.save_new_button, Qt.MouseButton.LeftButton)
    assert len(plans.plans()) == 2
    second = plans.plans()[1]
    assert second.interventions[0].inputs != first.interventions[0].inputs
    _shot(window, tmp_path, kind, "2_adjusted_saved")

    view = window.slice_views["axial"]  # 4. undo / redo through the keyboard
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=5000)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [p.name for p in plans.plans()] == [first.name]
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert [p.name for p in plans.plans()] == [first.name, second.name]

    compare = plans.compare_selected([first.name, second.name])  # 5. compare
    qtbot.waitUntil(compare.isVisible, timeout=5000)
    row = next(r for r in compare.comparison.rows if r.key == key)
    assert all(c.value is not None for c in row.cells)
    assert compare.table_cell(row.id, first.name).text() not in ("", "—")
    compare.grab().save(str(Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
                            / f"e2e_{kind}_3_compare.png"))
    compare.close()

    plans.select(first.name)  # 6. approve (the approver's name asked)
    monkeypatch.setattr(plans_module, "ask_text", lambda *a, **k: "Dr Test, surgeon")
    qtbot.mouseClick(plans.buttons["approve"], Qt.MouseButton.LeftButton)
    approved = plans.plan_set.get(first.name)
    assert approved.approved_by == "Dr Test, surgeon"

    from surgiplan.simulation.result import SimulationResult
    from surgiplan.ui.report.export import export_report

    pdf = export_report(window, tmp_path / f"{kind}.pdf", plan=first.name)  # 7. the PDF
    text = _pdf_text(pdf)
    assert first.name in text and "Dr Test" in text
    metrics = SimulationResult.from_json(approved.interventions[0].result).metrics
    for m in metrics:  # wrapped table cells interleave in the text: every word of the title
        assert all(w in text for w in re.findall(r"[A-Za-z]{4,}", m.title)), m.title
    assert "prediction" in text and "Legend" in text
    _shot(window, tmp_path, kind, "4_approved")

    qtbot.mouseClick(plans.buttons["review"], Qt.MouseButton.LeftButton)  # 8. review
    review = plans.review_windows[-1]
    qtbot.waitUntil(review.isVisible, timeout=5000)
    review.go_to(1)
    shown = html.unescape(review.numbers_label.text())
    for m in metrics:
        if m.structure is None:
            assert m.title.split(" (")[0][:20] in shown, m.title
    review.grab().save(str(Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
                           / f"e2e_{kind}_5_review.png"))
    review.close()
