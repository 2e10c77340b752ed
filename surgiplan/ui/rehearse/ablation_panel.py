"""The ablation panel: a probe (entry and tip placed/dragged in slice views), the device and
its power/time setting (or a custom zone), the tumour; live coverage and margin while dragging,
the full Monte Carlo on release, and probe optimisation in a worker (progress, cancel).

The probe is a :class:`~surgiplan.ui.plan.trajectory_tools.TrajectoryPlan` (``entry`` = a point on
the shaft where it enters, ``target`` = the tip). Live scores come from the ablation
simulator's ``live_scorer(context, parameters).score(inputs)`` (milliseconds once its scene is
built, which the first score does in a worker); the zone (translucent) and the probe are drawn
in 3D at every move.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
)

from surgiplan.model.structures import Role
from surgiplan.simulation import (
    AblationInput,
    DisplayGeometry,
    DisplayLine,
    DisplayMesh,
    Metric,
    SimulationResult,
)
from surgiplan.simulation.capabilities import CHECKS, DEVICES, HANDLES, LIVE, OPTIMISE
from surgiplan.ui.plan.planning_panel import wrapped_label
from surgiplan.ui.rehearse.rehearsal_panels import (
    TrajectoryRehearsalPanel,
    format_point,
    mm_spin,
    named_combo,
)
from surgiplan.ui.rehearse.rehearsal_tools import MeshOutlineDecoration

CUSTOM = "custom"
ZONE_RGB = (1.0, 0.55, 0.1)


def live_metrics(scores: dict[str, Any]) -> list[Metric]:
    """Metrics of a live (nominal) ablation score; keys as the simulator's."""
    metrics = [Metric("coverage_pct", "Tumour coverage", "%", scores["coverage_pct"]),
               Metric("min_margin_mm", "Minimal ablative margin", "mm", scores["min_margin_mm"]),
               Metric("zone_volume_ml", "Zone volume", "ml", scores["zone_volume_ml"])]
    for name, ml in scores["volume_in_zone_ml"].items():
        metrics.append(Metric("volume_in_zone_ml", f"{name} inside the zone", "ml", ml, None,
                              name))
    for name, mm in scores["heat_sink_mm"].items():
        metrics.append(Metric("heat_sink_diameter_mm", f"Heat-sink vessel in {name}", "mm", mm,
                              None, name))
    return metrics


SKIN_STEP_MM = 0.5
SKIN_REACH_MM = 400.0


def skin_entry_lps(twin: Any, tip_lps: np.ndarray, shaft_lps: np.ndarray) -> np.ndarray:
    """Where the line from the tip through ``shaft_lps`` leaves the skin (the outermost
    skin-structure voxel along it, LPS mm): an entry is always on the skin surface. Without a
    skin structure, or when the line never meets it, ``shaft_lps`` is returned."""
    from scipy.ndimage import map_coordinates

    skins = [] if twin is None else [s.name for s in twin.structures if s.role is Role.SKIN]
    axis = shaft_lps - tip_lps
    norm = float(np.linalg.norm(axis))
    if not skins or norm < 1e-6:
        return shaft_lps
    steps = np.arange(0.0, SKIN_REACH_MM, SKIN_STEP_MM)
    points = tip_lps + steps[:, None] * (axis / norm)
    ijk = twin.geometry.lps_to_index(points)
    mask = twin.segmentation.mask(skins[0])
    inside = map_coordinates(mask.astype(np.uint8), ijk[:, ::-1].T, order=0, cval=0) > 0
    if not inside.any():
        return shaft_lps
    return points[np.flatnonzero(inside)[-1]]


class AblationPanel(TrajectoryRehearsalPanel):
    """Ablation rehearsal (see the module docstring)."""

    kind = "ablation"
    preferred_id = "ablation"
    needs = ()  # any ablation simulator runs here; devices, live, optimise when it has them
    placing_mode = "target"
    hint = ("Place the probe tip in the tumour and its entry in a slice view; drag either. "
            "Choose the device and its power/time, or a custom zone.")

    def __init__(self, window, parent=None) -> None:
        self.devices: dict[str, Any] = {}
        self.live = None
        self._live_ready = False
        self._live_gen = 0
        self._opt_job = None
        self.optimisation = None
        super().__init__(window, parent)
        self.plan.diameter_mm = 2.0
        self.zone_outline = MeshOutlineDecoration()
        for view in window.slice_views.values():
            view.add_decoration(self.zone_outline)

    # ------------------------------------------------------------------ construction
    def _inputs_box(self) -> QGroupBox:
        box = QGroupBox("Probe")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.target_combo = named_combo("ablation_target")
        self.device_combo = named_combo("ablation_device")
        self.setting_combo = named_combo("ablation_setting")
        self.long_spin, self.short_spin = mm_spin(2.0, 150.0, 40.0), mm_spin(2.0, 150.0, 30.0)
        for spin in (self.long_spin, self.short_spin):
            spin.valueChanged.connect(lambda _v: self._settings_changed())
        form.addRow("Tumour", self.target_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Power / time", self.setting_combo)
        form.addRow("Custom zone long axis", self.long_spin)
        form.addRow("Custom zone short axis", self.short_spin)
        v.addLayout(form)
        self.device_combo.currentIndexChanged.connect(lambda _i: self._device_chosen())
        self.setting_combo.currentIndexChanged.connect(lambda _i: self._settings_changed())
        self.target_combo.currentIndexChanged.connect(lambda _i: self._settings_changed())
        buttons = self._add_placing_row(v, (("target", "Place/drag tip"),
                                            ("entry", "Place/drag entry")), "Tip: —\nEntry: —")
        self.tip_button, self.entry_button = buttons["target"], buttons["entry"]
        row = QHBoxLayout()
        self.optimise_button = QPushButton("Optimise probe")
        self.optimise_button.setObjectName("optimise_button")
        self.optimise_button.setToolTip("1,000 candidate placements and settings ranked by "
                                        "P(margin >= 5 mm), sparing critical structures")
        self.optimise_button.clicked.connect(self.optimise)
        self.optimise_cancel = QPushButton("Cancel")
        self.optimise_cancel.setEnabled(False)
        self.optimise_cancel.clicked.connect(self.cancel_optimise)
        self.apply_button = QPushButton("Use best")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(lambda: self.apply_candidate(0))
        for w in (self.optimise_button, self.optimise_cancel, self.apply_button):
            row.addWidget(w)
        v.addLayout(row)
        self.optimise_label = wrapped_label()
        v.addWidget(self.optimise_label)
        return box

    def ensure_simulator(self) -> Any:
        first = self.simulator is None and self.load_error is None
        sim = super().ensure_simulator()
        if sim is not None and first:
            self.devices = {}
            try:
                if self.supports(DEVICES):
                    self.devices = dict(sim.devices())
            except Exception as exc:  # a broken table: custom zones still work
                self.optimise_label.setText(f"Device tables not loaded: {exc}")
            self.device_combo.blockSignals(True)
            self.device_combo.clear()
            for device_id, table in self.devices.items():
                self.device_combo.addItem(table.title, device_id)
            self.device_combo.addItem("Custom zone (long x short axis)", CUSTOM)
            self.device_combo.blockSignals(False)
            self._device_chosen()
        return sim

    def capabilities_changed(self) -> None:
        self.optimise_button.setEnabled(self.supports(OPTIMISE))
        self.optimise_button.setToolTip(
            self.optimise_button.toolTip() if self.supports(OPTIMISE) else
            "the chosen simulator declares no 'optimise' capability")

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        super().reset()
        if hasattr(self, "zone_outline"):
            self.zone_outline.set_meshes([])
        self.live, self._live_ready, self.optimisation = None, False, None
        self._live_gen += 1
        self.cancel_optimise()
        self.apply_button.setEnabled(False)
        self.optimise_label.setText("")
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItems(self.structures(Role.TARGET))
        self.target_combo.blockSignals(False)
        self.points_label.setText("Tip: —\nEntry: —")

    def _device_chosen(self) -> None:
        device_id = self.device_combo.currentData()
        custom = device_id == CUSTOM
        self.setting_combo.blockSignals(True)
        self.setting_combo.clear()
        if not custom and device_id in self.devices:
            table = self.devices[device_id]
            for s in table.settings:
                self.setting_combo.addItem(
                    f"{s.power_w:g} W, {s.time_min:g} min: {s.zone.long_mm:g} x "
                    f"{s.zone.short_mm:g} mm", (s.power_w, s.time_min))
            self.setting_combo.setCurrentIndex(len(table.settings) // 2)
            self.plan.diameter_mm = table.probe_diameter_mm
        self.setting_combo.blockSignals(False)
        self.setting_combo.setEnabled(not custom)
        self.long_spin.setEnabled(custom)
        self.short_spin.setEnabled(custom)
        self._settings_changed()

    def set_device(self, device_id: str, power_w: float | None = None,
                   time_min: float | None = None) -> None:
        """Choose a device (or ``"custom"``) and, for a device, its power (W) and time (min)."""
        self.ensure_simulator()
        index = self.device_combo.findData(device_id)
        if index < 0:
            raise KeyError(f"no ablation device {device_id!r}")
        self.device_combo.setCurrentIndex(index)
        if power_w is not None and time_min is not None:
            for n in range(self.setting_combo.count()):
                pw, tm = self.setting_combo.itemData(n)
                if abs(pw - power_w) < 1e-6 and abs(tm - time_min) < 1e-6:
                    self.setting_combo.setCurrentIndex(n)
                    return
            raise KeyError(f"device {device_id} has no setting {power_w:g} W {time_min:g} min")

    def _settings_changed(self) -> None:
        self.live, self._live_ready = None, False
        self._live_gen += 1
        if self.plan.complete():
            self._plan_changed(False)
            self.run_full()

    def parameters_changed(self) -> None:
        self._settings_changed()

    def device_settings(self) -> tuple[str, dict[str, float]]:
        device_id = self.device_combo.currentData() or CUSTOM
        if device_id == CUSTOM:
            return CUSTOM, {"long_mm": self.long_spin.value(),
                            "short_mm": self.short_spin.value()}
        power, minutes = self.setting_combo.currentData()
        return device_id, {"power_w": float(power), "time_min": float(minutes)}

    def inputs(self) -> AblationInput | None:
        if not self.plan.complete() or not self.target_combo.currentText():
            return None
        device_id, settings = self.device_settings()
        return AblationInput(device_id=device_id, tip_lps=tuple(self.plan.target_lps),
                             shaft_lps=tuple(self.plan.entry_lps), settings=settings,
                             target_structure=self.target_combo.currentText())

    def set_probe(self, tip_lps, entry_lps) -> None:
        """Place the probe (LPS mm) and score it (live, then the full run)."""
        self.plan.set_points(entry_lps, tip_lps)
        self.run_full()

    # ------------------------------------------------------------------ placing
    def _plan_changed(self, dragging: bool) -> None:
        self._dragging = dragging
        self.points_label.setText(f"Tip: {format_point(self.plan.target_lps)}\n"
                                  f"Entry: {format_point(self.plan.entry_lps)}")
        if self.plan.complete():
            self.rescore_live()

    # ------------------------------------------------------------------ live scoring
    def rescore_live(self) -> SimulationResult | None:
        """Nominal coverage and margin of the current probe (no Monte Carlo), zone in 3D."""
        if self.context is None or self.ensure_simulator() is None:
            return None
        try:
            inputs = self.inputs()
            if inputs is None:
                return None
            if self.supports(CHECKS):
                self.simulator.check_inputs(inputs, self.form.values())
            if self.supports(HANDLES):
                self._draw_live(inputs)
        except Exception as exc:
            self.show_result(SimulationResult.failed(str(exc)))
            return None
        if not self.supports(LIVE):
            return None  # no live score: the full run follows on release
        if self.live is None:
            self.live = self.simulator.live_scorer(self.context, self.form.values())
        if not self._live_ready:
            self._warm_up(inputs)
            return None
        if getattr(self, "_dragging", False):  # a drag frame: the zone now, numbers follow
            self.status_label.setText("Live: updating the numbers…")
            self._drag_frames.request()
            return None
        self._drag_frames.cancel()
        return self._score_now(inputs)

    def _score_now(self, inputs: AblationInput) -> SimulationResult | None:
        try:
            scores = self.timed_live(lambda: self.live.score(inputs))
        except Exception as exc:
            self.show_result(SimulationResult.failed(f"live score: {exc}"))
            return None
        self.show_live(live_metrics(scores))
        return self.result

    def _drag_frame(self) -> None:
        """The dragged probe's numbers, once per event-loop pass: on this thread while the
        live score is cheap (a few ms), else in a worker (latest position wins)."""
        inputs = self.inputs()
        if inputs is None or self.live is None or not self._live_ready:
            return
        if self.live_on_gui_thread():
            self._score_now(inputs)
        else:
            live = self.live
            self.score_in_worker(lambda: live.score(inputs),
                                 lambda scores: self.show_live(live_metrics(scores)),
                                 current=lambda: live is self.live)

    def _warm_up(self, inputs: AblationInput) -> None:
        """The first score builds the scene around the tumour: in a worker."""
        self._live_gen += 1
        gen, live = self._live_gen, self.live
        self.status_label.setText("Preparing the ablation scene… (live scores follow)")

        def ready(_scores) -> None:
            self._live_ready = True

        self.prepare_live_in_worker("Preparing ablation scoring", lambda: live.score(inputs),
                                    current=lambda: gen == self._live_gen and live is self.live,
                                    on_ready=ready)

    def _draw_live(self, inputs: AblationInput) -> None:
        probes = self.simulator.resolve_probes(inputs, custom_modality=self.form.values().get(
            "custom_modality", "microwave"))
        geometry = DisplayGeometry()
        for k, p in enumerate(probes, start=1):
            vertices, faces = p.zone.mesh()
            geometry.meshes.append(DisplayMesh(f"zone {k}", vertices, faces, ZONE_RGB, 0.35))
            geometry.lines.append(DisplayLine(f"probe {k}", (tuple(p.shaft_lps),
                                                             tuple(p.tip_lps)),
                                              p.diameter_mm / 2))
        self.zone_outline.set_meshes(geometry.meshes)
        for view in self.window.slice_views.values():
            view.update()
        self._live_geometry = geometry
        if getattr(self, "_dragging", False):
            self._scene_timer.start()  # 3D follows when the drag pauses (a render ~0.5 s)
        else:
            self._draw_live_3d()

    def _deferred_scene(self) -> None:
        self._draw_live_3d()

    def _draw_live_3d(self) -> None:
        self._scene_timer.stop()
        geometry = getattr(self, "_live_geometry", None)
        if geometry is not None:
            self.scene3d.remove("result")
            self.scene3d.show_geometry(geometry, part="live")

    def show_geometry(self, result: SimulationResult) -> None:
        self._scene_timer.stop()
        self._live_geometry = None
        self.scene3d.remove("live")
        self.scene3d.show_geometry(result.geometry, part="result")
        self.zone_outline.set_meshes(result.geometry.meshes)  # the zone on the 2D slices
        for view in self.window.slice_views.values():
            view.update()

    # ------------------------------------------------------------------ optimisation
    def optimise(self) -> None:
        """Rank 1,000 candidate placements/settings in a worker (progress, cancel)."""
        inputs = self.inputs() if self.ensure_simulator() is not None else None
        if not self.supports(OPTIMISE):
            self.optimise_label.setText("The chosen simulator cannot optimise.")
            return
        if inputs is None or self.context is None:
            self.optimise_label.setText("Place the probe (tip and entry) and choose a tumour "
                                        "first.")
            return
        self.cancel_optimise()
        fn = partial(self.simulator.optimise, self.context, inputs, self.form.values(),
                     uncertainty=self.uncertainty())
        self.optimise_label.setText("Optimising…")
        self.optimise_cancel.setEnabled(True)
        self._opt_job = self.window.runner.submit(
            "Optimising the probe", lambda progress=None, cancel=None: fn(progress=progress,
                                                                          cancel=cancel),
            on_done=self._optimised, on_error=self._optimise_failed,
            on_cancel=lambda: self._optimise_failed(None))

    def cancel_optimise(self) -> None:
        if self._opt_job is not None:
            self._opt_job.cancel()

    def _optimise_failed(self, exc: BaseException | None) -> None:
        self._opt_job = None
        self.optimise_cancel.setEnabled(False)
        self.optimise_label.setText("Optimisation cancelled." if exc is None else
                                    f"Optimisation FAILED: {type(exc).__name__}: {exc}")

    def _optimised(self, result: Any) -> None:
        self._opt_job = None
        self.optimise_cancel.setEnabled(False)
        self.optimisation = result
        lines = [f"{result.n_evaluated} candidates in {result.total_time_s:.2f} s "
                 f"(scoring {result.scoring_time_s:.2f} s)."]
        for c in result.candidates[:3]:
            p = "—" if c.p_margin_ge_5mm is None else f"{c.p_margin_ge_5mm:.2f}"
            settings = ", ".join(f"{k} {v:g}" for k, v in c.inputs.settings.items())
            lines.append(f"#{c.rank}: P(margin >= 5 mm) {p}, margin {c.min_margin_mm:.1f} mm, "
                         f"coverage {c.coverage_pct:.0f} % ({settings})")
        self.optimise_label.setText("\n".join(lines + list(result.warnings)))
        self.apply_button.setEnabled(bool(result.candidates))

    def apply_candidate(self, index: int) -> None:
        """Use an optimised placement (and its setting)."""
        if self.optimisation is None or index >= len(self.optimisation.candidates):
            return
        c = self.optimisation.candidates[index].inputs
        if c.device_id != CUSTOM:
            self.set_device(c.device_id, c.settings["power_w"], c.settings["time_min"])
        self.live, self._live_ready = None, False
        tip = np.asarray(c.tip_lps, float)
        self.set_probe(tip, skin_entry_lps(self.twin, tip, np.asarray(c.shaft_lps, float)))
