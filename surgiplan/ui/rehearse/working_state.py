"""The working rehearsals survive closing the case (issue 15, item 3): whatever is placed in the
planning and rehearsal panels is kept in the case (``plans/working.json``, see
:mod:`surgiplan.plans.working`) and put back when the case is opened again.

:class:`WorkingKeeper` watches the panels; a finished change (not each drag step) is written
into ``twin.bundle_extras`` a moment later and marks the case changed (so saving or the
autosave carries it). When a case is opened, its working rehearsals are restored: the points
and settings are put back without running a simulation (the panels score when next touched,
the trajectory re-scores at once as its live score costs milliseconds), and the restore is no
undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer

from surgiplan.plans.working import WorkingRehearsal, store_working, working_from_extras
from surgiplan.ui.rehearse.curved_cut import curve_heights_mm, set_curve_heights
from surgiplan.ui.rehearse.rehearsal_panels import format_point

if TYPE_CHECKING:
    from surgiplan.ui.shell.main_window import MainWindow

STORE_DELAY_MS = 300
PANELS = (("trajectory", "planning_panel"), ("implant", "implant_panel"),
          ("ablation", "ablation_panel"), ("resection", "resection_panel"))


def _xyz(point: Any) -> list[float] | None:
    return None if point is None else [float(x) for x in np.asarray(point, float).reshape(3)]


def _simulator_id(panel: Any) -> str | None:
    entry = panel.entry() if hasattr(panel, "entry") else None
    if entry is not None:
        return entry.spec.id
    return getattr(panel, "simulator_id", None) or None


def capture(kind: str, panel: Any) -> WorkingRehearsal | None:
    """The panel's working state, or None when nothing is placed."""
    if kind == "resection":
        extra = _resection_extra(panel)
    else:
        plan = panel.plan
        if not plan.complete():
            return None
        extra = {"entry_lps": _xyz(plan.entry_lps), "target_lps": _xyz(plan.target_lps)}
        if kind == "trajectory":
            extra["diameter_mm"] = float(panel.tool_form.values()["diameter_mm"])
        elif kind == "implant":
            extra["size_mm"] = list(panel.size_mm())
        elif kind == "ablation":
            device_id, settings = panel.device_settings()
            extra.update(device_id=device_id, settings=settings,
                         target=panel.target_combo.currentText())
    if extra is None:
        return None
    return WorkingRehearsal(simulator_id=_simulator_id(panel), extra=extra,
                            parameters=_json_values(panel.form.values()))


def _resection_extra(panel: Any) -> dict[str, Any] | None:
    if panel.organ() is None or not panel.plane.is_set():
        return None
    extra = {"organ": panel.organ(), "target": panel.target(),
             "margin_mm": float(panel.margin_spin.value()),
             "use_plane": panel.use_plane.isChecked(),
             "point_lps": _xyz(panel.plane.point_lps),
             "normal_lps": _xyz(panel.plane.normal_lps)}
    heights = curve_heights_mm(panel)
    if heights is not None:
        extra["heights_mm"] = heights
    return extra


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}


def capture_all(window: MainWindow) -> dict[str, WorkingRehearsal]:
    out = {}
    for kind, attr in PANELS:
        panel = getattr(window, attr, None)
        if panel is None:
            continue
        try:
            record = capture(kind, panel)
        except Exception:  # a panel without its simulator has nothing to keep
            record = None
        if record is not None:
            out[kind] = record
    return out


# ---------------------------------------------------------------------------- restoring
def restore(window: MainWindow, kind: str, record: WorkingRehearsal) -> None:
    """Put one working rehearsal back into its panel (see the module docstring)."""
    panel = getattr(window, dict(PANELS)[kind], None)
    if panel is None:
        return
    extra = record.extra
    if kind == "trajectory":
        _restore_trajectory(panel, record)
        return
    _choose_simulator(panel, record.simulator_id)
    if kind == "resection":
        _restore_resection(panel, extra)
    else:
        if panel.ensure_simulator() is None:
            return
        if record.parameters:
            _set_quietly(panel.form, record.parameters)
        if kind == "implant":
            _restore_implant(panel, extra)
        else:
            _restore_ablation(panel, extra)


def _choose_simulator(panel: Any, simulator_id: str | None) -> None:
    """Rehearse again with the simulator the working rehearsal used, when it is still offered
    (else the panel keeps its own choice)."""
    if not simulator_id or simulator_id == panel.simulator_id:
        return
    if panel.simulator_combo.count() == 0:
        panel.refresh_simulators()
    if panel.simulator_combo.findData(simulator_id) >= 0:
        panel.select_simulator(simulator_id)


def _set_quietly(form: Any, values: dict[str, Any]) -> None:
    form.blockSignals(True)
    try:
        form.set_values(values)
    finally:
        form.blockSignals(False)


def _restore_trajectory(panel: Any, record: WorkingRehearsal) -> None:
    extra = record.extra
    if record.simulator_id and panel.entries:
        panel.select_simulator(record.simulator_id)
    if "diameter_mm" in extra:
        _set_quietly(panel.tool_form, {"diameter_mm": extra["diameter_mm"]})
    if record.parameters:
        _set_quietly(panel.form, record.parameters)
    panel.plan.set_points(extra["entry_lps"], extra["target_lps"])


def _set_ends(panel: Any, entry_lps: Any, target_lps: Any) -> None:
    panel.plan.entry_lps = np.asarray(entry_lps, float)
    panel.plan.target_lps = np.asarray(target_lps, float)


def _restore_implant(panel: Any, extra: dict[str, Any]) -> None:
    size = extra.get("size_mm")
    if size is not None:
        for spin, value in zip((panel.diameter_spin, panel.length_spin), size, strict=True):
            spin.blockSignals(True)
            spin.setValue(float(value))
            spin.blockSignals(False)
    _set_ends(panel, extra["entry_lps"], extra["target_lps"])
    panel.plan.diameter_mm = panel.size_mm()[0]
    head, tip = panel.head_tip()
    panel.points_label.setText(f"Head: {format_point(head)}\nTip: {format_point(tip)}")


def _restore_ablation(panel: Any, extra: dict[str, Any]) -> None:
    index = panel.target_combo.findText(extra.get("target") or "")
    if index >= 0:
        panel.target_combo.blockSignals(True)
        panel.target_combo.setCurrentIndex(index)
        panel.target_combo.blockSignals(False)
    device_id, settings = extra.get("device_id"), extra.get("settings") or {}
    try:
        if device_id == "custom":
            panel.device_combo.setCurrentIndex(panel.device_combo.findData(device_id))
            panel.long_spin.setValue(settings.get("long_mm", panel.long_spin.value()))
            panel.short_spin.setValue(settings.get("short_mm", panel.short_spin.value()))
        elif device_id:
            panel.set_device(device_id, settings.get("power_w"), settings.get("time_min"))
    except KeyError:
        pass  # the device list changed since: the panel's own default stays
    _set_ends(panel, extra["entry_lps"], extra["target_lps"])
    panel.points_label.setText(f"Tip: {format_point(panel.plan.target_lps)}\n"
                               f"Entry: {format_point(panel.plan.entry_lps)}")


def _restore_resection(panel: Any, extra: dict[str, Any]) -> None:
    for combo, name in ((panel.organ_combo, extra.get("organ")),
                        (panel.target_combo, extra.get("target") or "(none)")):
        index = combo.findText(name or "")
        if index >= 0:
            combo.blockSignals(True)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)
    for widget, setter, value in ((panel.margin_spin, "setValue", extra.get("margin_mm")),
                                  (panel.use_plane, "setChecked", extra.get("use_plane"))):
        if value is not None:
            widget.blockSignals(True)
            getattr(widget, setter)(value)
            widget.blockSignals(False)
    set_curve_heights(panel, extra.get("heights_mm"), run=False)
    panel.plane.blockSignals(True)
    try:
        panel.plane.set_plane(extra["point_lps"], extra["normal_lps"])
    finally:
        panel.plane.blockSignals(False)
    p, n = panel.plane.point_lps, panel.plane.normal_lps
    panel._show_handle()
    panel.plane_label.setText(f"Plane: {format_point(p)}, "
                              f"normal ({n[0]:.2f}, {n[1]:.2f}, {n[2]:.2f})")


# ---------------------------------------------------------------------------- the keeper
class WorkingKeeper(QObject):
    """Keeps the window's working rehearsals in its twin and restores them on open."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.restoring = False
        self.message = ""
        self._timer = QTimer(self, singleShot=True, interval=STORE_DELAY_MS)
        self._timer.timeout.connect(self.store)
        for _kind, attr in PANELS:
            panel = getattr(window, attr, None)
            if panel is None:
                continue
            placement = getattr(panel, "plan", None) or getattr(panel, "plane", None)
            if placement is not None:
                placement.changed.connect(self._changed)
                placement.released.connect(self._schedule)
            panel.form.values_changed.connect(lambda _v: self._schedule())
        window.case_loaded.connect(lambda _twin: QTimer.singleShot(0, self, self.restore_all))

    def _changed(self, dragging: bool = False) -> None:
        if not dragging:
            self._schedule()

    def _schedule(self) -> None:
        if not self.restoring and self.window.twin is not None:
            self._timer.start()

    def store(self) -> bool:
        """Write the working rehearsals into the twin now; True (and the case marked
        changed) when they differ from what it held."""
        self._timer.stop()
        twin = self.window.twin
        if twin is None or self.restoring:
            return False
        changed = store_working(twin.bundle_extras, capture_all(self.window))
        if changed:
            self.window.mark_dirty()
        return changed

    def restore_all(self) -> list[str]:
        """Restore the twin's working rehearsals; returns the kinds restored."""
        twin = self.window.twin
        if twin is None:
            return []
        records, self.message = working_from_extras(twin.bundle_extras)
        if self.message:
            self.window.statusBar().showMessage(self.message, 10000)
        history = getattr(self.window, "edit_history", None)
        restored = []
        self.restoring = True
        if history is not None:
            history._replaying = True  # putting the case back is no edit to undo
        try:
            for kind, record in records.items():
                try:
                    restore(self.window, kind, record)
                    restored.append(kind)
                except Exception as exc:  # one broken record must not stop the others
                    self.window.statusBar().showMessage(
                        f"The working {kind} rehearsal could not be restored: {exc}", 10000)
        finally:
            self.restoring = False
            if history is not None:
                history._replaying = False
        for view in self.window.slice_views.values():
            view.update()
        return restored


def install_working_keeper(window: MainWindow) -> WorkingKeeper:
    """Keep ``window``'s working rehearsals in its case (``window.working_keeper``)."""
    window.working_keeper = WorkingKeeper(window)
    return window.working_keeper
