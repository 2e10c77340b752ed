"""Following the patient over time in the Fusion dock (issue 18): a structure at baseline
against the same structure on the registered follow-up series (drawn there, or carried onto the
reference grid), both twin structures on the reference grid.

The comparison (volumes in ml, change in ml and %, largest growth and shrinkage of the surface in
mm: :func:`surgiplan.registration.longitudinal.structure_change`) runs in the worker and is kept
with the follow-up series' transform (``quality["structure_changes"]``): it was measured through
that transform, so a new registration drops it; it is saved in the bundle and listed in the PDF
report.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QWidget

if TYPE_CHECKING:
    from surgiplan.model.series_transform import SeriesTransform
    from surgiplan.twin import Twin
    from surgiplan.ui.shell.main_window import MainWindow


def stored_changes(transform: SeriesTransform) -> list[dict[str, Any]]:
    """The structure comparisons kept with a follow-up series' transform."""
    return list(transform.quality.get("structure_changes", []))


def change_text(change: dict[str, Any]) -> str:
    """One comparison in words (ml, %, mm)."""
    percent = change.get("change_percent")
    pct = "" if percent is None else f" ({percent:+.1f} %)"
    return (f"{change['baseline']} -> {change['followup']}: {change['baseline_ml']:.2f} -> "
            f"{change['followup_ml']:.2f} ml, {change['change_ml']:+.2f} ml{pct}; surface grew "
            f"up to {change['max_growth_mm']:.1f} mm, shrank up to "
            f"{change['max_shrink_mm']:.1f} mm (mean {change['mean_surface_change_mm']:+.1f} mm)")


class LongitudinalPanel(QWidget):
    """Baseline structure, follow-up structure, Compare; the readout of every comparison kept
    with the chosen series."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__()
        self.window_ = window
        self.twin: Twin | None = None
        self.key: str | None = None
        self.baseline_box = QComboBox()
        self.baseline_box.setObjectName("fusion_baseline_structure")
        self.followup_box = QComboBox()
        self.followup_box.setObjectName("fusion_followup_structure")
        self.compare_button = QPushButton("Compare (volume and surface change)")
        self.compare_button.setObjectName("fusion_compare")
        self.compare_button.clicked.connect(self.compare)
        self.readout = QLabel()
        self.readout.setObjectName("fusion_changes")
        self.readout.setWordWrap(True)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Baseline", self.baseline_box)
        form.addRow("Follow-up", self.followup_box)
        form.addRow(self.compare_button)
        form.addRow(self.readout)
        self.set_series(None, None)

    def set_series(self, twin: Twin | None, key: str | None) -> None:
        """Follow the twin and the series chosen in the Fusion dock."""
        self.twin, self.key = twin, key
        names = [] if twin is None else twin.segmentation.names()
        for box in (self.baseline_box, self.followup_box):
            keep = box.currentText()
            box.clear()
            box.addItems(names)
            if keep in names:
                box.setCurrentText(keep)
        if len(names) > 1 and self.followup_box.currentIndex() == 0:
            self.followup_box.setCurrentIndex(1)
        self.compare_button.setEnabled(key is not None and len(names) > 1)
        self._show()

    def compare(self) -> None:
        """Compare the chosen structures in the worker; the result is kept with the series."""
        from surgiplan.registration.longitudinal import structure_change

        twin, key = self.twin, self.key
        base, follow = self.baseline_box.currentText(), self.followup_box.currentText()
        if twin is None or key is None or not base or not follow:
            return

        def work(progress: Any, cancel: Any) -> dict[str, Any]:
            change = structure_change(base, twin.segmentation.mask(base),
                                      twin.segmentation.mask(follow), twin.geometry)
            return {**change.to_json(), "baseline": base, "followup": follow, "series": key}

        def done(change: dict[str, Any]) -> None:
            entry = twin.series_by_key(key)
            kept = [c for c in stored_changes(entry.transform)
                    if (c["baseline"], c["followup"]) != (base, follow)]
            transform = entry.transform
            twin.set_series_transform(key, replace(transform, quality={
                **transform.quality, "structure_changes": [*kept, change]}))
            twin.provenance.notes.append(f"structure change {base!r} -> {follow!r} measured "
                                         f"through series {key!r}")
            self.window_.mark_dirty()
            self._show()

        self.window_.runner.submit(f"comparing {base} and {follow}", work, on_done=done,
                                   on_error=lambda exc: self.readout.setText(f"Failed: {exc}"))

    def _show(self) -> None:
        if self.twin is None or self.key is None:
            self.readout.setText("Follow-up: choose a registered series.")
            return
        changes = stored_changes(self.twin.series_by_key(self.key).transform)
        self.readout.setText("\n".join(change_text(c) for c in changes) if changes else
                             "Follow-up: no comparison yet (choose two structures, Compare).")
