"""The cohort view in the app: File > Open cohort results…, metric list with threshold shares,
the distribution plot with intervals, twins without results and their reasons, and opening a
twin with its templated plan in the main window.

The results table is real: two liver twins (4 mm grid, 4 Monte Carlo samples) scored in
process and written as ``surgiplan cohort run`` writes it, with a third twin in the cohort
whose task "failed" (no rows). Needs a display (Xvfb) like tests/ui.
"""

from __future__ import annotations

import math

import pytest

from surgiplan.cohort.cohort import generated_refs
from surgiplan.cohort.rows import run_twin
from surgiplan.cohort.runner import write_table
from surgiplan.cohort.templates import template_from_json

TEMPLATE = template_from_json({"kind": "ablation", "name": "ablate targets", "samples": 4})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    refs = generated_refs("liver", phantom="liver", count=3, spacing_mm=4.0)
    rows = [row for r in refs[:2] for row in run_twin(TEMPLATE.to_json(), r.to_json())]
    path = tmp_path_factory.mktemp("cohort") / "results.parquet"
    write_table(rows, path, {"template": TEMPLATE.to_json(),
                             "twins": [r.to_json() for r in refs]})
    return path, refs, rows


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from surgiplan.ui.shell.autosave import Autosave
    from surgiplan.ui.shell.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, autosave=Autosave(tmp_path / "autosave"))

    def before_close(w) -> None:
        w.dirty = False
        w.ask_rehearsals_on_close = False
        for box in list(w.error_dialogs):
            box.close()
        for view in list(w.cohort_views):
            view.close()

    qtbot.addWidget(win, before_close_func=before_close)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_cohort_view_shows_distributions_failures_and_opens_a_twin(qtbot, window, results):
    from surgiplan.plans.store import read_plans
    from surgiplan.ui.modes.cohort_window import TASK_FAILED, open_cohort

    path, refs, rows = results
    file_menu = next(a.menu() for a in window.menuBar().actions()
                     if a.text().replace("&", "") == "File")
    assert window.cohort_action in file_menu.actions()
    view = open_cohort(window, path)
    assert view is not None and view.isVisible()
    texts = [view.metric_list.item(i).text() for i in range(view.metric_list.count())]
    coverage = next(i for i, s in enumerate(view.summaries) if s.metric == "coverage_pct")
    assert "coverage" in texts[coverage].lower() and "n 4" in texts[coverage]
    view.metric_list.setCurrentRow(coverage)
    shown = [r for r in rows if r["metric"] == "coverage_pct"]
    assert view.table.rowCount() == len(shown) == 4  # 2 twins x 2 tumours
    assert {view.table.item(i, 0).text() for i in range(4)} == {refs[0].twin_id,
                                                                 refs[1].twin_id}
    values = sorted(r["value"] for r in shown)
    (bars,) = view.ranked_axes.containers  # the error-bar plot: value and 95 % interval
    assert list(bars.lines[0].get_ydata()) == pytest.approx(values)
    interval = view.table.item(0, 3).text()
    assert interval.startswith("[") and math.isfinite(shown[0]["ci95_low"])
    failed = [view.failed_list.item(i).text() for i in range(view.failed_list.count())]
    assert failed == [f"{refs[2].twin_id}: {TASK_FAILED}"]
    with qtbot.waitSignal(window.ready, timeout=120_000):
        view.open_row(0)
    opened = view.shown_rows[0]["twin_id"]
    assert window.twin is not None and window.case_path.stem == opened
    (plan,) = read_plans(window.case_path).plans
    assert [i.label for i in plan.interventions] == ["tumour 1", "tumour 2"]


def test_a_file_that_is_not_a_cohort_table_is_refused_with_a_message(window, tmp_path):
    from surgiplan.ui.modes.cohort_window import open_cohort

    bad = tmp_path / "notes.parquet"
    bad.write_text("not parquet")
    assert open_cohort(window, bad) is None
    assert window.error_dialogs and "not a cohort results table" in \
        window.error_dialogs[-1].text()
