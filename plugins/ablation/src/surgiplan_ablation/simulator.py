"""The ablation simulator: one or several probes, their composite zone (union of prolate
ellipsoids from a device table or given axes), tumour coverage, minimal ablative margin,
critical structures in the zone, heat-sink vessels, insertion-path risk, with Monte Carlo 95 %
intervals; :meth:`AblationSimulator.live_scorer` for live re-scoring and
:meth:`AblationSimulator.optimise` for probe placement (optimise.py).

Metrics (keys fixed):

* ``coverage_pct``: % of the tumour's voxels whose centres lie inside the zone;
* ``min_margin_mm``: minimal ablative margin, min over the tumour surface of the signed
  distance to the zone boundary (+ inside the zone; negative: tumour left outside);
* ``p_margin_ge_5mm`` / ``p_margin_ge_10mm``: probability (Monte Carlo) of a margin >= 5 mm
  (the minimum) / >= 10 mm (the aim);
* per critical structure: ``volume_in_zone_ml`` and ``zone_clearance_mm`` (min over its voxel
  centres of the zone's signed distance; negative: inside the zone);
* per vessel (critical structure named like one): ``heat_sink_diameter_mm``, the largest
  centreline diameter > ``heat_sink_min_diameter_mm`` whose wall touches or enters the zone
  (0 if none); a touching vessel is a heat-sink risk, ``high`` for RF, ``moderate`` for
  microwave (microwave heating is less sensitive to perfusion-mediated cooling);
* per probe path: the trajectory simulator's ``min_distance_mm`` (as ``path_min_distance_mm``).

Uncertainty: zone size SDs from the chart-vs-measured correlation in 93 liver tumours
(PubMed 27425001, J Vasc Interv Radiol 2016): measured long axis 58 +/- 13 mm with r = 0.51,
short axis 37 +/- 8 mm with r = 0.63. The error left once the chart has predicted is
``SD * sqrt(1 - r^2)``: 11.2 mm (19 % of 58 mm) and 6.2 mm (17 % of 37 mm). Placement error is
the run's error model (tip = target SD, shaft point = entry SD).

Capabilities (optional public methods a host panel may call on the simulator object it got
from discovery, instead of importing this package's modules): ``devices()`` (the device
tables by id), ``resolve_probes(inputs, custom_modality=...)`` (each probe with its zone, for
drawing), ``check_inputs``, ``live_scorer`` and ``optimise``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    AblationInput,
    DisplayGeometry,
    DisplayLine,
    DisplayMesh,
    DisplayPoint,
    Kind,
    Metric,
    Output,
    Parameter,
    SimulationContext,
    SimulationResult,
    SimulatorSpec,
    Status,
    StructureLevel,
    TrajectoryInput,
    UncertaintyModel,
    level_for,
)
from surgiplan.simulation.uncertainty import interval95, probability95
from surgiplan_ablation import __version__
from surgiplan_ablation.kernel import score_zones, zone_signed_distance
from surgiplan_ablation.montecarlo import draw_zones
from surgiplan_ablation.probes import Probe, resolve_probes, target_name
from surgiplan_ablation.scene import AblationScene, build_scene
from surgiplan_ablation.zone import ZoneBatch

ZONE_SD_SOURCE = ("residual SD of measured vs chart-predicted microwave zones in 93 liver "
                  "tumours: long 13 mm x sqrt(1 - 0.51^2) = 11.2 mm of 58 mm, short 8 mm x "
                  "sqrt(1 - 0.63^2) = 6.2 mm of 37 mm (PubMed 27425001, J Vasc Interv Radiol "
                  "2016)")
HEAT_SINK_SOURCE = ("vessels >= 3 mm next to the tumour predict incomplete RF ablation (Lu DSK "
                    "et al., J Vasc Interv Radiol 2003;14(10):1267-1274)")
MIN_MARGIN_MM = 5.0
AIM_MARGIN_MM = 10.0
ROI_PAD_MM = 4.0

SPEC = SimulatorSpec(
    id="ablation",
    title="Tumour ablation (microwave, RF): coverage, ablative margin, heat sink",
    version=__version__,
    kind=Kind.ABLATION,
    required_roles=(Role.TARGET,),
    capabilities=("optimise", "live"),
    parameters=(
        Parameter(key="zone_long_sd_pct", title="Zone long-axis SD", unit="%", default=19.0,
                  minimum=0.0, maximum=60.0, source=ZONE_SD_SOURCE),
        Parameter(key="zone_short_sd_pct", title="Zone short-axis SD", unit="%", default=17.0,
                  minimum=0.0, maximum=60.0, source=ZONE_SD_SOURCE),
        Parameter(key="heat_sink_min_diameter_mm", title="Heat-sink vessel diameter", unit="mm",
                  default=3.0, minimum=0.5, maximum=20.0, source=HEAT_SINK_SOURCE),
        Parameter(key="custom_modality", title="Modality of a custom zone", type="choice",
                  default="microwave", choices=("microwave", "rf")),
        Parameter(key="score_paths", title="Score each probe's insertion path", type="bool",
                  default=True, description="with the installed trajectory simulator"),
    ),
    outputs=(
        Output(key="coverage_pct", title="Tumour coverage", unit="%"),
        Output(key="min_margin_mm", title="Minimal ablative margin", unit="mm"),
        Output(key="p_margin_ge_5mm", title="P(margin >= 5 mm)", unit=""),
        Output(key="p_margin_ge_10mm", title="P(margin >= 10 mm)", unit=""),
        Output(key="zone_volume_ml", title="Zone volume", unit="ml"),
        Output(key="target_volume_ml", title="Tumour volume", unit="ml"),
        Output(key="volume_in_zone_ml", title="Volume inside the zone", unit="ml",
               per_structure=True),
        Output(key="zone_clearance_mm", title="Zone clearance", unit="mm", per_structure=True),
        Output(key="heat_sink_diameter_mm", title="Heat-sink vessel diameter", unit="mm",
               per_structure=True),
        Output(key="path_min_distance_mm", title="Insertion path clearance", unit="mm",
               per_structure=True),
    ),
    description="Composite ablation zone from device tables; coverage and minimal ablative "
                "margin with Monte Carlo 95 % intervals over zone size and probe placement; "
                "heat-sink vessels; probe optimisation.",
)


def target_box(context: SimulationContext, target: str) -> np.ndarray:
    """LPS box (2, 3) of the target's voxel centres."""
    idx = np.argwhere(context.mask(target))
    if idx.size == 0:
        raise BadInputError(f"the target {target!r} is empty", action="segment the tumour")
    corners = context.geometry.index_to_lps(np.array([idx.min(0), idx.max(0)])[:, ::-1]
                                            .astype(float))
    return np.vstack([corners.min(0), corners.max(0)])


def scene_roi(context: SimulationContext, target: str, batches: list[ZoneBatch], *,
              pad_mm: float = ROI_PAD_MM, box: np.ndarray | None = None) -> np.ndarray:
    """LPS box (2, 3) holding the target (``box`` if known) and every zone, padded."""
    box = target_box(context, target) if box is None else box
    boxes = [box[0], box[1]]
    for b in batches:
        reach = np.maximum(b.semi_long_mm, b.semi_short_mm)[..., None]
        boxes += [(b.centres_lps - reach).reshape(-1, 3).min(0),
                  (b.centres_lps + reach).reshape(-1, 3).max(0)]
    stacked = np.vstack(boxes)
    return np.vstack([stacked.min(0) - pad_mm, stacked.max(0) + pad_mm])


class LiveScorer:
    """Fast nominal scoring for dragging (no Monte Carlo): build once, ``score`` per move.

    The scene is rebuilt when a zone leaves its region or the target changes; rebuild it
    yourself (``LiveScorer(...)`` again) after the twin is edited.
    """

    def __init__(self, context: SimulationContext, parameters: dict[str, Any] | None = None,
                 *, reach_mm: float = 40.0) -> None:
        self.context = context
        self.parameters = {**SPEC.defaults(), **(parameters or {})}
        self.reach_mm = reach_mm
        self.scene: AblationScene | None = None
        self._boxes: dict[str, np.ndarray] = {}

    def score(self, inputs: AblationInput) -> dict[str, Any]:
        """Nominal metrics of ``inputs`` in milliseconds: the keys of :func:`nominal_scores`."""
        probes = resolve_probes(inputs, custom_modality=self.parameters["custom_modality"])
        target = target_name(self.context, inputs)
        batch = ZoneBatch.of([[p.zone for p in probes]])
        if target not in self._boxes:
            self._boxes[target] = target_box(self.context, target)
        tbox = self._boxes[target]
        box = scene_roi(self.context, target, [batch], pad_mm=0.0, box=tbox)
        if self.scene is None or self.scene.target != target or not self.scene.contains_box(box):
            roi = scene_roi(self.context, target, [batch], pad_mm=self.reach_mm, box=tbox)
            self.scene = build_scene(
                self.context, target, roi,
                vessel_min_diameter_mm=self.parameters["heat_sink_min_diameter_mm"])
        return nominal_scores(self.scene, batch, probes)


def nominal_scores(scene: AblationScene, batch: ZoneBatch, probes: list[Probe]
                   ) -> dict[str, Any]:
    """Coverage, margin (and its tumour-surface point), critical volumes, heat sink."""
    raw = score_zones(batch, np.zeros(1), scene)
    arg = int(raw["margin_arg"][0])
    zones = batch.zones(0)
    return {
        "coverage_pct": float(raw["coverage_pct"][0]),
        "min_margin_mm": float(raw["margin_mm"][0]),
        "margin_point_lps": None if arg < 0 else tuple(scene.surface_lps[arg]),
        "volume_in_zone_ml": {n: float(c) * scene.voxel_ml for n, c in
                              zip(scene.critical_names, raw["critical_voxels"][0], strict=True)},
        "heat_sink_mm": dict(zip(scene.vessel_names, map(float, raw["heat_sink_mm"][0]),
                                 strict=True)),
        "zone_volume_ml": float(sum(z.volume_ml for z in zones)),
        "modalities": sorted({p.modality for p in probes}),
    }


class AblationSimulator:
    """The ablation plug-in (entry point ``ablation``)."""

    spec = SPEC

    def check_inputs(self, inputs: AblationInput, parameters: dict[str, Any] | None = None
                     ) -> None:
        """Raise ``BadInputError`` now for an unknown device or setting (before any run)."""
        params = {**SPEC.defaults(), **(parameters or {})}
        resolve_probes(inputs, custom_modality=params["custom_modality"])

    def live_scorer(self, context: SimulationContext,
                    parameters: dict[str, Any] | None = None) -> LiveScorer:
        return LiveScorer(context, parameters)

    # ------------------------------------------------------------------ capabilities
    @staticmethod
    def devices() -> dict[str, Any]:
        """Every shipped device table (zone size by power and time), by device id."""
        from surgiplan_ablation.devices import load_devices

        return load_devices()

    @staticmethod
    def resolve_probes(inputs: AblationInput, *, custom_modality: str = "microwave"
                       ) -> list[Probe]:
        """Every probe of ``inputs`` with its zone (``probe.zone.mesh()`` -> LPS mesh)."""
        return resolve_probes(inputs, custom_modality=custom_modality)

    def optimise(self, context: SimulationContext, inputs: AblationInput,
                 parameters: dict[str, Any] | None = None, *,
                 uncertainty: UncertaintyModel | None = None, **kwargs: Any):
        """Best probe placements (and settings) for P(margin >= 5 mm); see optimise.py."""
        from surgiplan_ablation.optimise import optimise_probe

        return optimise_probe(context, inputs, {**SPEC.defaults(), **(parameters or {})},
                              uncertainty=uncertainty or UncertaintyModel(), **kwargs)

    def run(
        self,
        context: SimulationContext,
        inputs: AblationInput,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult:
        params = {**SPEC.defaults(), **parameters}
        probes = resolve_probes(inputs, custom_modality=params["custom_modality"])
        target = target_name(context, inputs)
        report(progress, 0.05, "building the ablation scene")
        nominal = ZoneBatch.of([[p.zone for p in probes]])
        draws, offsets = self._draws(context, probes, params, uncertainty)
        roi = scene_roi(context, target, [nominal] + ([draws] if draws is not None else []))
        spacing = context.geometry.spacing_mm
        max_offset = 0.0 if draws is None else float(np.max(np.abs(offsets), initial=0.0))
        scene = build_scene(context, target, roi, max_offset_mm=max_offset,
                            vessel_min_diameter_mm=params["heat_sink_min_diameter_mm"])
        check(cancel)
        report(progress, 0.3, "scoring the zone")
        nom = nominal_scores(scene, nominal, probes)
        mc = None
        if draws is not None:
            report(progress, 0.4, f"Monte Carlo over {len(draws)} zones")
            mc = score_zones(draws, offsets, scene)
        check(cancel)
        warnings = _warnings(context, probes, scene, nom)
        metrics, levels = _metrics(context, scene, nominal, nom, mc)
        heat = _heat_sink(scene, nom, mc, probes, warnings)
        metrics += heat
        geometry = _display(probes, nom, scene)
        details: dict[str, Any] = {
            "target": target, "probes": [_probe_json(p) for p in probes],
            "heat_sink": [{"structure": m.structure, "diameter_mm": m.value,
                           "risk": _heat_risk(nom["modalities"])} for m in heat if m.value > 0],
            "margin_point_lps": nom["margin_point_lps"], "spacing_mm": list(spacing)}
        if params["score_paths"]:
            report(progress, 0.7, "scoring the insertion paths")
            self._paths(context, probes, uncertainty, metrics, levels, warnings, details)
        report(progress, 1.0, "ablation scored")
        return SimulationResult(status=Status.OK, metrics=metrics, levels=levels,
                                geometry=geometry, warnings=warnings, details=details)

    def _draws(self, context, probes, params, model):
        if model.samples <= 0:
            return None, None
        tips = np.array([p.tip_lps for p in probes])
        shafts = np.array([p.shaft_lps for p in probes])
        sizes = np.array([[p.size.long_mm, p.size.short_mm, p.size.tip_offset_mm]
                          for p in probes])
        return draw_zones(model, tips, shafts, sizes, sd_long=params["zone_long_sd_pct"] / 100,
                          sd_short=params["zone_short_sd_pct"] / 100,
                          spacing_mm=context.geometry.spacing_mm)

    def _paths(self, context, probes, model, metrics, levels, warnings, details) -> None:
        """Each probe's insertion path, scored by the installed trajectory simulator."""
        from surgiplan.simulation import load_simulator

        try:
            trajectory = load_simulator("trajectory")
        except BadInputError as exc:
            warnings.append(f"insertion paths not scored: {exc}")
            return
        details["paths"] = []
        worst: dict[str, StructureLevel] = {}
        for k, p in enumerate(probes, start=1):
            inputs = TrajectoryInput(entry_lps=tuple(p.shaft_lps), target_lps=tuple(p.tip_lps),
                                     diameter_mm=p.diameter_mm)
            res = trajectory.run(context, inputs, trajectory.spec.defaults(), uncertainty=model)
            details["paths"].append({"probe": k, "metrics": [m.to_json() for m in res.metrics],
                                     "traversed": res.details.get("traversed", [])})
            for m in res.metrics:
                if m.key == "min_distance_mm":
                    metrics.append(Metric("path_min_distance_mm", f"Probe {k} path: clearance "
                                          f"to {m.structure}", "mm", m.value, m.ci95,
                                          m.structure))
            for lv in res.levels:
                if lv.structure not in worst or lv.min_distance_mm < \
                        worst[lv.structure].min_distance_mm:
                    worst[lv.structure] = lv
            warnings += [f"probe {k} path: {w}" for w in res.warnings]
        for lv in worst.values():
            if lv.level.value == "breach":
                warnings.append(f"an insertion path enters {lv.structure}")
        details["path_levels"] = [lv.to_json() for lv in worst.values()]


def _metrics(context, scene, nominal, nom, mc) -> tuple[list[Metric], list[StructureLevel]]:
    cov_ci = margin_ci = p5 = p10 = None
    p5_value = p10_value = math.nan
    if mc is not None:
        cov_ci, margin_ci = interval95(mc["coverage_pct"]), interval95(mc["margin_mm"])
        p5_value, p5 = probability95(mc["margin_mm"] >= MIN_MARGIN_MM)
        p10_value, p10 = probability95(mc["margin_mm"] >= AIM_MARGIN_MM)
    metrics = [
        Metric("coverage_pct", f"Coverage of {scene.target}", "%", nom["coverage_pct"], cov_ci),
        Metric("min_margin_mm", "Minimal ablative margin", "mm", nom["min_margin_mm"],
               margin_ci),
        Metric("p_margin_ge_5mm", "P(margin >= 5 mm)", "", p5_value, p5),
        Metric("p_margin_ge_10mm", "P(margin >= 10 mm)", "", p10_value, p10),
        Metric("zone_volume_ml", "Zone volume", "ml", nom["zone_volume_ml"]),
        Metric("target_volume_ml", f"Volume of {scene.target}", "ml", scene.tumour_volume_ml),
    ]
    levels = []
    zone = nominal.zones(0)
    centres = np.array([z.centre_lps for z in zone])
    axes = np.array([z.axis_lps for z in zone])
    sa = np.array([z.semi_long_mm for z in zone])
    sb = np.array([z.semi_short_mm for z in zone])
    for n, name in enumerate(scene.critical_names):
        ml = nom["volume_in_zone_ml"][name]
        ci = p_hit = None
        if mc is not None:
            ci = interval95(mc["critical_voxels"][:, n] * scene.voxel_ml)
            p_hit = probability95(mc["critical_voxels"][:, n] > 0)[0]
        metrics.append(Metric("volume_in_zone_ml", f"{name} inside the zone", "ml", ml, ci,
                              name))
        pts = scene.critical_lps[scene.critical_index == n]
        clearance = float(zone_signed_distance(pts, centres, axes, sa, sb).min()) \
            if len(pts) else math.inf
        metrics.append(Metric("zone_clearance_mm", f"Zone to {name}", "mm", clearance,
                              None, name))
        margin = context.structure(name).margin_mm
        levels.append(StructureLevel(name, level_for(clearance, margin), clearance, margin,
                                     p_hit))
    return metrics, levels


def _heat_risk(modalities: list[str]) -> str:
    return "high" if "rf" in modalities else "moderate"


def _heat_sink(scene, nom, mc, probes, warnings) -> list[Metric]:
    metrics = []
    risk = _heat_risk(nom["modalities"])
    for n, name in enumerate(scene.vessel_names):
        value = nom["heat_sink_mm"][name]
        ci = None if mc is None else interval95(mc["heat_sink_mm"][:, n])
        metrics.append(Metric("heat_sink_diameter_mm", f"Heat-sink vessel in {name}", "mm",
                              value, ci, name))
        if value > 0:
            warnings.append(f"heat-sink risk ({risk}): a {value:.1f} mm vessel of {name} "
                            f"touches the ablation zone")
    return metrics


def _warnings(context, probes: list[Probe], scene, nom) -> list[str]:
    warnings = []
    for k, p in enumerate(probes, start=1):
        if p.device is not None and p.device.illustrative:
            warnings.append(f"probe {k}: device table {p.device.id} holds illustrative "
                            "numbers, not vendor data")
        if not context.geometry.contains_lps(p.tip_lps[None])[0]:
            warnings.append(f"probe {k}: the tip lies outside the image")
    if nom["min_margin_mm"] < MIN_MARGIN_MM:
        warnings.append(f"the minimal ablative margin {nom['min_margin_mm']:.1f} mm is below "
                        f"the {MIN_MARGIN_MM:g} mm minimum")
    return warnings


def _display(probes: list[Probe], nom, scene) -> DisplayGeometry:
    geometry = DisplayGeometry()
    for k, p in enumerate(probes, start=1):
        vertices, faces = p.zone.mesh()
        geometry.meshes.append(DisplayMesh(f"ablation zone {k}", vertices, faces,
                                           (1.0, 0.55, 0.1), 0.35))
        geometry.lines.append(DisplayLine(f"probe {k}", (tuple(p.shaft_lps), tuple(p.tip_lps)),
                                          p.diameter_mm / 2))
        geometry.points.append(DisplayPoint(f"probe {k} tip", tuple(p.tip_lps)))
        geometry.points.append(DisplayPoint(f"zone {k} centre", tuple(p.zone.centre_lps)))
    if nom["margin_point_lps"] is not None:
        geometry.points.append(DisplayPoint("minimal margin", nom["margin_point_lps"]))
    return geometry


def _probe_json(p: Probe) -> dict[str, Any]:
    zone = p.zone
    return {"device": p.label(), "modality": p.modality, "tip_lps": p.tip_lps.tolist(),
            "shaft_lps": p.shaft_lps.tolist(), "long_mm": p.size.long_mm,
            "short_mm": p.size.short_mm, "tip_offset_mm": p.size.tip_offset_mm,
            "zone_centre_lps": list(zone.centre_lps), "zone_axis_lps": list(zone.axis_lps),
            "source": None if p.device is None else p.device.source}
