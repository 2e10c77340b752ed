"""The structures list: property edits emit model events, show in the overlays and undo;
renaming with anatomy names; the live volume column."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog

from tests.ui.conftest import TUMOUR_LPS
from tests.ui.test_main_window import pixel, show


@pytest.fixture
def shown(qtbot, window, twin):
    show(qtbot, window, twin)
    window.set_cursor(TUMOUR_LPS)
    window.structures_panel.opacity_slider.setValue(100)
    qtbot.wait(20)
    events: list[tuple[str, dict]] = []
    twin.events.connect(lambda event, /, **payload: events.append((event, payload)))
    return window, events


def test_role_margin_opacity_edits_emit_events_and_undo(qtbot, shown):
    win, events = shown
    panel, twin = win.structures_panel, win.twin
    row = panel.row_of("tumour")
    panel.table.cellWidget(row, 3).setCurrentText("critical")
    panel.table.cellWidget(row, 5).setValue(3.5)
    panel.table.cellWidget(row, 4).setValue(0.4)
    assert twin.structure("tumour").role == "critical"
    assert twin.structure("tumour").margin_mm == 3.5
    assert twin.structure("tumour").opacity == pytest.approx(0.4)
    fields = [p["fields"] for n, p in events if n == "structure_properties_changed"]
    assert fields == [["role"], ["margin_mm"], ["opacity"]]
    win.segment_panel.undo()
    win.segment_panel.undo()
    qtbot.wait(20)
    assert twin.structure("tumour").margin_mm == 0.0
    assert panel.table.cellWidget(row, 5).value() == 0.0, "the row follows the undo"


def test_colour_swatch_changes_the_overlay_colour(qtbot, shown, monkeypatch):
    win, events = shown
    panel, axial = win.structures_panel, win.slice_views["axial"]
    at = axial.lps_to_screen(TUMOUR_LPS)
    r, g, b = pixel(axial, at)
    assert r > 200 and g > 200 and b < 60, "tumour drawn yellow"
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor(255, 0, 0)))
    panel.table.cellWidget(panel.row_of("tumour"), 1).click()
    qtbot.wait(30)
    assert win.twin.structure("tumour").color == pytest.approx((1.0, 0.0, 0.0))
    assert ("structure_properties_changed", {"name": "tumour", "fields": ["color"]}) in events
    r, g, b = pixel(axial, at)
    assert r > 200 and g < 60 and b < 60, "the overlay shows the new colour"
    assert "rgb(255,0,0)" in panel.table.cellWidget(panel.row_of("tumour"), 1).styleSheet()


def test_visibility_hides_the_overlay(qtbot, shown):
    win, _ = shown
    axial = win.slice_views["axial"]
    at = axial.lps_to_screen(TUMOUR_LPS)
    win.structures_panel.visibility_box("tumour").setChecked(False)
    qtbot.wait(30)
    r, _g, b = pixel(axial, at)
    assert abs(r - b) < 10, "grey again without the overlay"


def test_rename_with_an_anatomy_name_brings_its_defaults(qtbot, shown):
    from surgiplan.segmentation.anatomy_names import lookup_anatomy

    win, events = shown
    panel, twin = win.structures_panel, win.twin
    editor = panel.name_editor("tumour")
    completions = editor.completer().model()
    names = [completions.index(n, 0).data() for n in range(completions.rowCount())]
    assert "liver tumour" in names and "spinal cord" in names
    editor.setText("liver tumour")
    editor.editingFinished.emit()
    qtbot.wait(30)
    entry = lookup_anatomy("liver tumour")
    s = twin.structure("liver tumour")
    assert (s.role, s.color, s.margin_mm) == (entry.role, entry.color, entry.margin_mm)
    assert ("structure_renamed", {"name": "liver tumour", "old_name": "tumour"}) in events
    assert panel.row_of("liver tumour") == 0
    assert win.segment_panel.structure_combo.findText("liver tumour") >= 0
    win.segment_panel.undo()  # rename + defaults are one step
    qtbot.wait(30)
    assert twin.segmentation.names() == ["tumour", "body"]
    assert twin.structure("tumour").color == (1.0, 1.0, 0.0)
    panel.name_editor("tumour").setText("body")  # taken: refused, name restored
    panel.name_editor("tumour").editingFinished.emit()
    assert twin.segmentation.names() == ["tumour", "body"]
    assert panel.name_editor("tumour").text() == "tumour"


def test_volume_column_is_live(qtbot, shown):
    win, _ = shown
    panel, twin = win.structures_panel, win.twin
    before = float(panel.volume_text("tumour"))
    assert before == pytest.approx(twin.volume_ml("tumour"), abs=0.01) and before > 1.5
    win.segment_panel.select_structure("tumour")
    win.segment_panel.editor.paint("tumour", TUMOUR_LPS + [12.0, 0.0, 0.0], 3.0, axis=2)
    qtbot.waitUntil(lambda: float(panel.volume_text("tumour")) > before, timeout=3000)
    assert float(panel.volume_text("tumour")) == pytest.approx(twin.volume_ml("tumour"),
                                                                abs=0.01)


def test_review_column_marks_an_automatic_structure_reviewed(qtbot, window, twin):
    """An automatic structure reads 'Mark reviewed'; a click flags it reviewed by the user in
    provenance (dirty case, row updated); a later voxel edit asks for a review again."""
    from surgiplan.model.provenance import EDITED, REVIEWED

    twin.provenance.record_automatic("tumour", "test method")
    show(qtbot, window, twin)
    panel = window.structures_panel
    others = [n for n in twin.segmentation.names() if n != "tumour"]
    assert panel.review_text("tumour") == "Mark reviewed"
    assert all(not panel.review_button(n).isEnabled() for n in others), "hand-drawn: nothing"
    window.dirty = False
    panel.review_button("tumour").click()
    qtbot.wait(20)
    entry = twin.provenance.automatic["tumour"]
    assert entry.quality == REVIEWED and entry.reviewed_by
    assert panel.review_text("tumour") == "✓ reviewed"
    assert window.dirty, "the review is part of the case: it must be saved"
    assert window.segment_panel.editor.paint("tumour", TUMOUR_LPS, 25.0), "voxels changed"
    qtbot.wait(20)
    assert twin.provenance.automatic["tumour"].quality == EDITED
    assert panel.review_text("tumour") == "Mark reviewed (edited)"
