"""Cohort view (issue 19): the results table of ``surgiplan cohort run`` in the app.

* Metric list: each (metric, structure) the template produced, with n, median and the 5-95 %
  range of the values, and the share of slots (twin x placed plan) meeting its threshold with
  the Wilson 95 % confidence interval (:func:`surgiplan.cohort.report.summarise`).
* Distribution plot of the chosen metric (matplotlib, Qt Agg canvas): the histogram with the
  threshold line, and every slot's value with its 95 % interval, sorted (the interval kind is
  in the axis label; values without an interval are open circles).
* Table of the chosen metric's rows: twin, slot, value, 95 % interval, threshold, met or not,
  verdict, or why the value is not assessable.
* Twins without results: twins whose task failed (no rows: re-running the same command retries
  them), twins that could not be run, and slots the template could not place or simulate, each
  with its reason.
* Open twin (double-click a row, or the button): the twin is re-made with its templated plan
  (:func:`surgiplan.cohort.runner.open_twin`, in a worker) into the user cache and opened in
  the main window, where the plan is in the Plans dock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from surgiplan.cohort.report import MetricSummary, summarise
from surgiplan.cohort.runner import open_twin, read_meta, read_rows
from surgiplan.ui.widgets.jobs import JobRunner

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

PSEUDO_METRICS = ("plan", "twin", "result")  # rows that say why a slot or twin has no metrics
COLUMNS = ("Twin", "Slot", "Value", "95 % interval", "Threshold", "Meets", "Verdict",
           "Not assessable")
MISS_FG = QColor(255, 110, 110)
TASK_FAILED = "its task failed (no rows): re-run the same 'surgiplan cohort run' to retry it"


def failures(rows: list[dict[str, Any]], twin_ids: list[str]) -> list[tuple[str, str, str]]:
    """(twin, slot, reason) of every twin without rows and every unplaced/failed slot."""
    seen = {r["twin_id"] for r in rows}
    out = [(t, "", TASK_FAILED) for t in twin_ids if t not in seen]
    out += [(r["twin_id"], r["slot"], r["not_assessable"] or r["title"]) for r in rows
            if r["metric"] in PSEUDO_METRICS]
    return out


def bundle_path(results: Path, twin_id: str) -> Path:
    """Where the opened twin of ``results`` is kept (user cache; one folder per table file
    and version, so a re-run table never reuses a stale twin)."""
    from surgiplan.training.cases import cache_dir

    stat = results.stat()
    key = hashlib.sha256(f"{results.resolve()}|{stat.st_mtime_ns}|{stat.st_size}".encode())
    return cache_dir().parent / "cohort" / key.hexdigest()[:16] / f"{twin_id}.surgiplan"


def make_bundle(results: Path, twin_id: str, **_kwargs: Any) -> Path:
    """The twin's case bundle with its templated plan (made once, then reused)."""
    out = bundle_path(results, twin_id)
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        open_twin(results, twin_id, out)
    return out


def _fmt(value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g} {unit}".strip()


class CohortView(QWidget):
    """A top-level window over one results table (see the module docstring)."""

    def __init__(self, results: str | Path, *, open_case: Callable[[Path], None],
                 report_error: Callable[[BaseException], Any] | None = None,
                 runner: JobRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("cohort_view")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.results = Path(results)
        self.open_case = open_case
        self.report_error = report_error or (lambda exc: None)
        self.meta = read_meta(self.results)  # BadInputError: not a results table
        self.rows = read_rows(self.results)
        self.twin_ids = [t["twin_id"] for t in self.meta.get("twins", [])]
        self.summaries = [s for s in summarise(self.rows, results=str(self.results))
                          if s.metric not in PSEUDO_METRICS]
        self.failed = failures(self.rows, self.twin_ids)
        self._own_runner = runner is None
        self.runner = runner if runner is not None else JobRunner(self)
        self.opening: str | None = None
        self.setWindowTitle(f"Cohort: {self.results.name}")
        self.resize(1200, 780)
        self._build()
        if self.summaries:
            self.metric_list.setCurrentRow(0)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        template = self.meta.get("template", {})
        placed = len({r["twin_id"] for r in self.rows if r["metric"] not in PSEUDO_METRICS})
        self.header = QLabel(
            f"<b>{template.get('name', '?')}</b> ({template.get('kind', '?')}) over "
            f"{len(self.twin_ids)} twins: {placed} with metrics, "
            f"{len(self.failed)} twins or slots without (listed below).")
        self.header.setObjectName("cohort_header")
        self.header.setWordWrap(True)
        self.metric_list = QListWidget()
        self.metric_list.setObjectName("cohort_metrics")
        for s in self.summaries:
            item = QListWidgetItem(self._metric_text(s))
            item.setToolTip(self._metric_text(s))
            self.metric_list.addItem(item)
        self.metric_list.currentRowChanged.connect(self.show_metric)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("cohort_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_row(row))
        self.failed_list = QListWidget()
        self.failed_list.setObjectName("cohort_failed")
        for twin, slot, reason in self.failed:
            item = QListWidgetItem(f"{twin}" + (f" · {slot}" if slot else "") + f": {reason}")
            item.setData(Qt.ItemDataRole.UserRole, twin)
            item.setToolTip(reason)
            self.failed_list.addItem(item)
        self.failed_list.itemDoubleClicked.connect(
            lambda item: self.open_twin(item.data(Qt.ItemDataRole.UserRole)))
        self.open_button = QPushButton("Open twin with its plan")
        self.open_button.setObjectName("cohort_open")
        self.open_button.clicked.connect(self.open_selected)
        self.status = QLabel("Double-click a row to open that twin with its templated plan.")
        self.status.setObjectName("cohort_status")
        self._layout()

    def _layout(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(7, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(QLabel("Metrics (share meeting the threshold, Wilson 95 % CI)"))
        col.addWidget(self.metric_list, 2)
        col.addWidget(QLabel("Twins and slots without results"))
        col.addWidget(self.failed_list, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.canvas)
        right.addWidget(self.table)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 820])
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    @staticmethod
    def _metric_text(s: MetricSummary) -> str:
        text = f"{s.label}: n {s.n}, median {_fmt(s.median, s.unit)}"
        if s.n:
            text += f" [{_fmt(s.p05, s.unit)} – {_fmt(s.p95, s.unit)}]"
        if s.share_meets is not None and s.share_ci95 is not None:
            op = ">=" if s.threshold_kind == "min" else "<="
            text += (f"; {op} {s.threshold:g}: {100 * s.share_meets:.0f} % "
                     f"[{100 * s.share_ci95[0]:.0f}, {100 * s.share_ci95[1]:.0f}]")
        if s.n_not_assessable:
            text += f"; {s.n_not_assessable} not assessable"
        return text

    # ------------------------------------------------------------------ one metric
    def metric_rows(self, index: int) -> list[dict[str, Any]]:
        s = self.summaries[index]
        return [r for r in self.rows
                if r["metric"] == s.metric and (r["structure"] or "") == s.structure]

    def show_metric(self, index: int) -> None:
        """Fill the table and draw the distribution of summary ``index``."""
        if not 0 <= index < len(self.summaries):
            return
        s = self.summaries[index]
        rows = self.metric_rows(index)
        self.shown_rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, text in enumerate(self._cells(r)):
                item = QTableWidgetItem(text)
                if r["meets"] == 0.0:
                    item.setForeground(QBrush(MISS_FG))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.draw(s, rows)

    @staticmethod
    def _cells(r: dict[str, Any]) -> list[str]:
        unit = r["unit"]
        low, high = r["ci95_low"], r["ci95_high"]
        interval = (f"[{_fmt(low, unit)}, {_fmt(high, unit)}] {r['interval']}"
                    if math.isfinite(low) and math.isfinite(high) else "none")
        threshold = "-" if not math.isfinite(r["threshold"]) else \
            f"{'>=' if r['threshold_kind'] == 'min' else '<='} {_fmt(r['threshold'], unit)}"
        meets = {1.0: "yes", 0.0: "NO"}.get(r["meets"], "-")
        return [r["twin_id"], r["slot"], _fmt(r["value"], unit), interval, threshold, meets,
                r["verdict"], r["not_assessable"]]

    def draw(self, s: MetricSummary, rows: list[dict[str, Any]]) -> None:
        """Histogram with the threshold, and every slot's value with its 95 % interval."""
        self.figure.clear()
        hist, ranked = self.figure.subplots(1, 2)
        values = np.array([r["value"] for r in rows], float)
        ok = np.isfinite(values)
        label = f"{s.label} [{s.unit}]" if s.unit else s.label
        hist.hist(values[ok], bins=min(20, max(5, int(ok.sum()))), color="#4a7ab5",
                  edgecolor="white")
        hist.set_xlabel(label, fontsize=8)
        hist.set_ylabel("slots (twin x plan)", fontsize=8)
        order = [i for i in np.argsort(values, kind="stable") if ok[i]]
        x = np.arange(len(order))
        v = values[order]
        low = np.array([rows[i]["ci95_low"] for i in order], float)
        high = np.array([rows[i]["ci95_high"] for i in order], float)
        has = np.isfinite(low) & np.isfinite(high)
        kinds = sorted({rows[i]["interval"] for i, h in zip(order, has, strict=True) if h})
        ranked.errorbar(x[has], v[has], yerr=[v[has] - low[has], high[has] - v[has]],
                        fmt="o", ms=3, color="#4a7ab5", ecolor="#9bb7d9",
                        label=f"value, 95 % {'/'.join(kinds)} interval")
        if (~has).any():
            ranked.plot(x[~has], v[~has], "o", ms=3, mfc="none", color="#555555",
                        label="value, no interval")
        ranked.set_xlabel("slots, sorted by value", fontsize=8)
        ranked.set_ylabel(label, fontsize=8)
        if s.threshold is not None:
            op = ">=" if s.threshold_kind == "min" else "<="
            hist.axvline(s.threshold, color="#c0392b", linestyle="--")
            ranked.axhline(s.threshold, color="#c0392b", linestyle="--",
                           label=f"threshold {op} {s.threshold:g} {s.unit}")
        ranked.legend(loc="best", fontsize=7)
        extra = f", {s.n_not_assessable} not assessable" if s.n_not_assessable else ""
        hist.set_title(f"{s.label}: n = {s.n}{extra}", fontsize=9)
        for ax in (hist, ranked):
            ax.tick_params(labelsize=7)
        self.ranked_axes = ranked
        self.canvas.draw_idle()

    # ------------------------------------------------------------------ opening a twin
    def open_selected(self) -> None:
        if self.failed_list.hasFocus() and self.failed_list.currentItem() is not None:
            self.open_twin(self.failed_list.currentItem().data(Qt.ItemDataRole.UserRole))
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_row(rows[0].row())
        else:
            self.status.setText("Select a row (or a twin without results) first.")

    def open_row(self, row: int) -> None:
        if 0 <= row < len(getattr(self, "shown_rows", [])):
            self.open_twin(self.shown_rows[row]["twin_id"])

    def open_twin(self, twin_id: str) -> None:
        """Re-make ``twin_id`` with its templated plan (worker), then open it."""
        if self.opening is not None:
            self.status.setText(f"Still preparing {self.opening}…")
            return
        self.opening = twin_id
        self.status.setText(f"Preparing {twin_id} with its templated plan…")
        self.runner.submit(f"Preparing cohort twin {twin_id}",
                           partial(make_bundle, self.results, twin_id),
                           on_done=self._prepared, on_error=self._failed)

    def _prepared(self, path: Path) -> None:
        self.status.setText(f"Opened {self.opening} ({path.name}); its plan is in the Plans "
                            "dock.")
        self.opening = None
        self.open_case(path)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not open {self.opening}: {exc}")
        self.opening = None
        self.report_error(exc)

    def closeEvent(self, event) -> None:
        if self._own_runner:
            self.runner.wait_for_threads(10_000)
        super().closeEvent(event)


def open_cohort(window: MainWindow, results: str | Path) -> CohortView | None:
    """Open a cohort view over ``results`` beside ``window`` (None, with the error shown,
    when the file is not a cohort results table)."""
    from surgiplan.errors import BadInputError

    try:
        view = CohortView(results, open_case=window.open_path, report_error=window.report_error,
                          runner=window.runner, parent=window)
    except BadInputError as exc:
        window.report_error(exc)
        return None
    window.cohort_views.append(view)
    view.destroyed.connect(lambda _=None, v=view: _forget(window, v))
    view.show()
    return view


def _forget(window: MainWindow, view: CohortView) -> None:
    if view in window.cohort_views:
        window.cohort_views.remove(view)


def install_cohort(window: MainWindow) -> None:
    """File > Open cohort results… (a ``surgiplan cohort run`` table)."""
    from PySide6.QtGui import QAction

    window.cohort_views = []
    file_menu = next((a.menu() for a in window.menuBar().actions()
                      if a.text().replace("&", "") == "File"), None)
    action = QAction("Open &cohort results…", window)
    action.setObjectName("action_cohort")

    def choose() -> None:
        path, _ = QFileDialog.getOpenFileName(window, "Open cohort results", "",
                                              "Cohort results (*.parquet);;All files (*)")
        if path:
            open_cohort(window, path)

    action.triggered.connect(lambda _=False: choose())
    if file_menu is not None:
        file_menu.insertAction(file_menu.actions()[3] if len(file_menu.actions()) > 3
                               else None, action)
    else:
        window.menuBar().addAction(action)
    window.cohort_action = action
