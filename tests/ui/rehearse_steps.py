"""Steps of a rehearsal, driven through the app's widgets with real input events, shared by the
end-to-end tests (tests/ui/test_rehearse_e2e.py on the phantoms, test_rehearse_real_ct.py on the
real abdomen CT): place with clicks in a slice view, drag, save as a plan (the panel's button),
undo/redo (Ctrl+Z, Ctrl+Shift+Z), Compare (rows clicked in the Plans table, then its button),
approve (its button), the PDF (File > Export report), review mode (its button), and the
checks of the saved numbers, the PDF text and the review text. Screenshots of each step go to
``$SURGIPLAN_TEST_ARTEFACTS`` (default: the test's tmp_path)."""

from __future__ import annotations

import html
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt

from tests.ui.test_main_window import send_drag
from tests.ui.test_rehearse_flow import click


def artefacts(tmp_path: Path) -> Path:
    """The screenshot folder: ``$SURGIPLAN_TEST_ARTEFACTS`` or ``tmp_path``."""
    folder = Path(os.environ.get("SURGIPLAN_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(widget, folder: Path, name: str) -> Path:
    """Save ``widget`` as ``folder/name.png`` (a main window with its 3D view rendered)."""
    path = folder / f"{name}.png"
    if hasattr(widget, "save_screenshot"):
        return widget.save_screenshot(path)
    widget.grab().save(str(path))
    return path


def zoom_on(qtbot, window, centre_lps, zoom: float) -> None:
    """Each slice view zoomed by ``zoom`` with a right-drag, then ``centre_lps`` brought to its
    middle with a middle-drag (the views' own mouse controls; LPS mm)."""
    import math

    from PySide6.QtCore import QPointF

    window.set_cursor(np.asarray(centre_lps, float))
    qtbot.wait(50)
    for view in window.slice_views.values():
        middle = QPointF(view.width() / 2.0, view.height() / 2.0)
        up = 200.0 * math.log(zoom / view.zoom)  # the view: zoom *= exp(-dy / 200)
        send_drag(view, Qt.MouseButton.RightButton, middle, middle - QPointF(0.0, up))
        at = view.lps_to_screen(np.asarray(centre_lps, float))
        send_drag(view, Qt.MouseButton.MiddleButton, at, middle)
    qtbot.wait(50)


def place_two(qtbot, window, panel, first: str, first_lps, second: str, second_lps,
              view_name: str = "axial", zoom: float | None = None) -> None:
    """Centre the views on ``first_lps`` (zoomed on the pair when ``zoom`` is given), then
    click each place button and its point."""
    view = window.slice_views[view_name]
    if zoom is None:
        window.set_cursor(np.asarray(first_lps, float))
    else:
        zoom_on(qtbot, window, (np.asarray(first_lps, float) + second_lps) / 2.0, zoom)
        window.set_cursor(np.asarray(first_lps, float))
    qtbot.wait(50)
    for which, point in ((first, first_lps), (second, second_lps)):
        qtbot.mouseClick(panel.place_buttons[which], Qt.MouseButton.LeftButton)
        click(view, point)
    panel.place_buttons[second].setChecked(False)


def drag_point(window, point_lps, shift_lps, view_name: str = "axial") -> None:
    """Press on ``point_lps`` in the slice view and drag it by ``shift_lps`` (LPS mm)."""
    view = window.slice_views[view_name]
    start = view.lps_to_screen(np.asarray(point_lps, float))
    send_drag(view, Qt.MouseButton.LeftButton, start,
              view.lps_to_screen(np.asarray(point_lps, float) + shift_lps))


def pdf_text(path: Path) -> str:
    """The PDF's text, whitespace collapsed, typeset ligatures (fi, fl) read as letters."""
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text() for p in PdfReader(path).pages).split())
    return unicodedata.normalize("NFKC", text)


def words(text: str) -> list[str]:
    """The words of 4+ letters (wrapped table cells interleave in pypdf's text)."""
    return re.findall(r"[A-Za-z]{4,}", text)


def numbers(text: str) -> list[str]:
    """The decimal numbers written in ``text`` (e.g. "12.3", "-0.5")."""
    return re.findall(r"-?\d+\.\d+", text)


def click_rows(qtbot, table, rows: list[int]) -> None:
    """Click the first row, Ctrl+click the others (the table's own selection by mouse)."""
    for n, row in enumerate(rows):
        rect = table.visualRect(table.model().index(row, 0))
        modifier = (Qt.KeyboardModifier.NoModifier if n == 0
                    else Qt.KeyboardModifier.ControlModifier)
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier,
                         QPoint(rect.center()))


def assert_same_numbers(saved: dict, shown) -> None:
    """The plan stores exactly the panel's full-run metrics (value and 95 % interval)."""
    from surgiplan.simulation.result import SimulationResult

    stored = {(m.key, m.structure): m for m in SimulationResult.from_json(saved).metrics}
    assert set(stored) == {(m.key, m.structure) for m in shown.metrics}
    for m in shown.metrics:
        s = stored[(m.key, m.structure)]
        assert s.value == m.value or (math.isnan(s.value) and math.isnan(m.value)), m.key
        assert s.ci95 == m.ci95, m.key


@dataclass
class Flow:
    first: Any  # the first saved plan
    second: Any  # the adjusted, second saved plan
    pdf: Path
    text: str  # the PDF's text
    review_text: str  # the review's numbers (plain text) for the first plan


def save_plan(qtbot, panel, plans) -> Any:
    """Click the panel's "Save as new plan"; the new plan."""
    before = {p.name for p in plans.plans()}
    qtbot.mouseClick(panel.save_new_button, Qt.MouseButton.LeftButton)
    added = [p for p in plans.plans() if p.name not in before]
    assert len(added) == 1, "Save as new plan did not add one plan"
    return added[0]


def undo_redo(qtbot, window, plans, names_before: list[str], names_after: list[str]) -> None:
    """Ctrl+Z in the axial view undoes the last save, Ctrl+Shift+Z redoes it."""
    view = window.slice_views["axial"]
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=5000)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [p.name for p in plans.plans()] == names_before
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert [p.name for p in plans.plans()] == names_after


def compare_two(qtbot, window, folder: Path, stem: str, key: str, names: list[str]):
    """Select the two plans with the mouse, click Compare; check ``key``'s row is filled."""
    plans = window.plans_panel
    rows = [n for n in range(plans.table.rowCount())
            if plans.table.item(n, 0).text() in names]
    click_rows(qtbot, plans.table, rows)
    assert sorted(plans.selected_names()) == sorted(names)
    qtbot.mouseClick(plans.buttons["compare"], Qt.MouseButton.LeftButton)
    compare = plans.compare_windows[-1]
    qtbot.waitUntil(compare.isVisible, timeout=10_000)
    row = next(r for r in compare.comparison.rows if r.key == key)
    assert all(c.value is not None for c in row.cells)
    for name in names:
        assert compare.table_cell(row.id, name).text() not in ("", "—")
    shot(compare, folder, f"{stem}_3_compare")
    compare.close()


def approve(qtbot, window, monkeypatch, name: str, approver: str) -> Any:
    """Select ``name`` with a click, click Approve (the approver's name asked)."""
    from surgiplan.ui.plan import plans_panel as plans_module

    plans = window.plans_panel
    row = next(n for n in range(plans.table.rowCount()) if plans.table.item(n, 0).text() == name)
    click_rows(qtbot, plans.table, [row])
    monkeypatch.setattr(plans_module, "ask_text", lambda *a, **k: approver)
    qtbot.mouseClick(plans.buttons["approve"], Qt.MouseButton.LeftButton)
    approved = plans.plan_set.get(name)
    assert approved.approved_by == approver
    return approved


def write_pdf(window, monkeypatch, path: Path) -> Path:
    """File > Export report… with the save dialog answered ``path``."""
    from surgiplan.ui.report import export as export_module

    monkeypatch.setattr(export_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(path), "PDF (*.pdf)")))
    window.export_report_action.trigger()
    assert path.is_file(), f"no report written to {path}"
    return path


def check_pdf(window, text: str, plan_name: str, approver: str) -> None:
    """The PDF names the plan and approver and, for every metric line the report holds
    (``build_content``, the report's own rows), its title, value, interval and source."""
    from surgiplan.plans.store import plan_set_of_twin
    from surgiplan.ui.report.content import build_content

    assert plan_name in text and approver.split(",")[0] in text
    content = build_content(window.twin, plan_set_of_twin(window.twin), plan_name)
    assert content.metrics, "the report holds no metric"
    for line in content.metrics:
        for part in (line.title, line.value, line.interval, line.source):
            missing = [w for w in words(part) + numbers(part) if w not in text]
            assert not missing, f"{line.title}: {missing} of {part!r} not in the PDF"
    assert "prediction" in text and "Legend" in text


def check_review(text: str, plan: Any) -> None:
    """Review mode's numbers show every metric of the plan: the title and its value (per
    structure: the structure and its closest distance)."""
    from surgiplan.simulation.result import SimulationResult
    from surgiplan.ui.modes.review_mode import _mm
    from surgiplan.ui.plan.trajectory_tools import grade_letter

    result = SimulationResult.from_json(plan.interventions[0].result)
    for m in result.metrics:
        if m.structure and m.key in ("min_distance_mm", "risk", "breach_probability"):
            assert m.structure in text, m.structure
            if m.key == "min_distance_mm":
                shown = _mm(m.value) if math.isfinite(m.value) else "not assessable"
                assert shown in text, (m.structure, m.value)
            continue
        assert m.title in text, m.title
        if m.not_assessable:
            assert "not assessable" in text, m.title
        else:
            shown = grade_letter(m.value) if m.key == "gertzbein_grade" else _mm(m.value)
            assert shown in text, (m.title, shown)


def review(qtbot, window, folder: Path, stem: str, plan: Any, check=None) -> str:
    """Click OR review… on the selected plan; the first step's numbers (plain text).
    ``check(review_window)`` runs on the open window."""
    plans = window.plans_panel
    qtbot.mouseClick(plans.buttons["review"], Qt.MouseButton.LeftButton)
    shown = plans.review_windows[-1]
    qtbot.waitUntil(shown.isVisible, timeout=10_000)
    shown.go_to(1)
    qtbot.wait(50)
    text = html.unescape(re.sub(r"<[^>]+>", " ", shown.numbers_label.text()))
    text = " ".join(text.split())
    shot(shown, folder, f"{stem}_5_review")
    if check is not None:
        check(shown)
    shown.close()
    check_review(text, plan)
    return text
