"""The ablation simulator: one or several probes, their composite zone (union of prolate
ellipsoids from a device table or given axes), tumour coverage, minimal ablative margin,
critical structures in and near the zone, heat-sink vessels, insertion-path risk, with 95 %
intervals that carry every stated error source (intervals.py); :meth:`AblationSimulator.
live_scorer` for live re-scoring and :meth:`AblationSimulator.optimise` for probe placement.

Metrics (keys fixed):

* ``coverage_pct``: % of the tumour's voxels whose centres lie inside the zone;
* ``min_margin_mm``: minimal ablative margin, min over the tumour surface of the signed
  distance to the zone boundary (+ inside the zone; negative: tumour left outside);
* ``p_margin_ge_5mm`` / ``p_margin_ge_10mm``: probability of a margin >= 5 mm (the minimum) /
  >= 10 mm (the aim), thresholds from Wang 2013 (evidence.py); confidence intervals;
* ``zone_volume_ml``: volume of the composite zone (the union: overlaps counted once);
* ``target_volume_ml``: the tumour's volume;
* per critical structure: ``volume_in_zone_ml`` and ``zone_clearance_mm`` (min over the
  structure of the zone's signed distance; negative: inside the zone);
* per vessel (critical structure named like one): ``heat_sink_diameter_mm``, the largest
  centreline diameter >= ``heat_sink_min_diameter_mm`` whose wall lies within
  ``heat_sink_reach_mm`` of the zone (0 if none); such a vessel is a heat-sink risk, ``high``
  for RF, ``moderate`` for microwave;
* per probe path: the trajectory simulator's ``min_distance_mm`` (as ``path_min_distance_mm``).

Error model: :data:`~surgiplan_ablation.evidence.ABLATION_PROFILE` (CT-guided freehand
placement, Heerink 2019) unless the run's model says otherwise; zone-size SDs from the chart
study (PubMed 27425001); boundary SD one voxel; the SDs' own uncertainty and the grid's
discretisation (evidence.py). A metric whose inputs leave the image (the field of view cuts
the tumour, a zone reaches past the image) is not assessable, with the reason and the share of
failed draws. The verdict follows the numbers: coverage below 100 %, a margin below 5 mm,
P(margin >= 5 mm) below one half, a heat-sink vessel and a breached insertion path are
concerns.

Capabilities (optional public methods a host panel may call on the simulator object it got
from discovery, instead of importing this package's modules): ``devices()`` (the device
tables by id), ``resolve_probes(inputs, custom_modality=...)`` (each probe with its zone, for
drawing), ``check_inputs``, ``live_scorer`` and ``optimise``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    AblationInput,
    Concern,
    DisplayGeometry,
    DisplayLine,
    DisplayMesh,
    DisplayPoint,
    IntervalKind,
    Kind,
    Level,
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
from surgiplan_ablation import __version__
from surgiplan_ablation.evidence import (
    ABLATION_PROFILE,
    AIM_MARGIN_MM,
    BOUNDARY_SD_LOG_SD,
    HEAT_SINK_MIN_DIAMETER_MM,
    HEAT_SINK_REACH_MM,
    HEAT_SINK_SOURCE,
    MARGIN_SOURCE,
    MIN_MARGIN_MM,
    PLACEMENT_SD_LOG_SD,
    ZONE_LONG_SD_PCT,
    ZONE_SD_LOG_SD,
    ZONE_SD_SOURCE,
    ZONE_SHORT_SD_PCT,
)
from surgiplan_ablation.intervals import MAX_FAILED_SHARE, prediction95, probability95
from surgiplan_ablation.kernel import score_zones, zone_signed_distance
from surgiplan_ablation.montecarlo import HyperModel, ZoneDraws, draw_zones
from surgiplan_ablation.probes import Probe, check_target_role, resolve_probes, target_name
from surgiplan_ablation.scene import AblationScene, build_scene, critical_structures
from surgiplan_ablation.zone import ZoneBatch, union_volume_ml, zones_in_image

ROI_PAD_MM = HEAT_SINK_REACH_MM + 2.0
NOMINAL_VOLUME_DIRS = 20000

SPEC = SimulatorSpec(
    id="ablation",
    title="Tumour ablation (microwave, RF): coverage, ablative margin, heat sink",
    version=__version__,
    kind=Kind.ABLATION,
    required_roles=(Role.TARGET,),
    capabilities=("live", "handles", "checks", "devices", "optimise"),
    parameters=(
        Parameter(key="zone_long_sd_pct", title="Zone long-axis SD", unit="%",
                  default=ZONE_LONG_SD_PCT, minimum=0.0, maximum=60.0, source=ZONE_SD_SOURCE),
        Parameter(key="zone_short_sd_pct", title="Zone short-axis SD", unit="%",
                  default=ZONE_SHORT_SD_PCT, minimum=0.0, maximum=60.0, source=ZONE_SD_SOURCE),
        Parameter(key="heat_sink_min_diameter_mm", title="Heat-sink vessel diameter", unit="mm",
                  default=HEAT_SINK_MIN_DIAMETER_MM, minimum=0.5, maximum=20.0,
                  source=HEAT_SINK_SOURCE),
        Parameter(key="heat_sink_reach_mm", title="Heat-sink distance from the zone",
                  unit="mm", default=HEAT_SINK_REACH_MM, minimum=0.0, maximum=30.0,
                  source=HEAT_SINK_SOURCE),
        Parameter(key="custom_modality", title="Modality of a custom zone", type="choice",
                  default="microwave", choices=("microwave", "rf")),
        Parameter(key="score_paths", title="Score each probe's insertion path", type="bool",
                  default=True, description="with the installed trajectory simulator"),
        Parameter(key="zone_sd_log_sd", title="Uncertainty of the zone-size SDs (log-SD)",
                  default=ZONE_SD_LOG_SD, minimum=0.0, maximum=1.0, source=ZONE_SD_SOURCE),
        Parameter(key="placement_sd_log_sd", title="Uncertainty of the placement SDs (log-SD)",
                  default=PLACEMENT_SD_LOG_SD, minimum=0.0, maximum=1.0,
                  source=ABLATION_PROFILE.source),
        Parameter(key="boundary_sd_log_sd", title="Uncertainty of the boundary SD (log-SD)",
                  default=BOUNDARY_SD_LOG_SD, minimum=0.0, maximum=1.0,
                  source="assumption: one voxel known to a factor of 2"),
        Parameter(key="discretisation", title="Include the voxel grid's discretisation error",
                  type="bool", default=True,
                  description="surfaces within half a voxel (surgiplan.processing.distance)"),
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
                "margin with 95 % intervals over placement, zone size, segmentation boundary "
                "and discretisation; heat-sink vessels; probe optimisation.",
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
        return nominal_scores(self.scene, batch, probes,
                              heat_reach_mm=float(self.parameters["heat_sink_reach_mm"]))


def nominal_scores(scene: AblationScene, batch: ZoneBatch, probes: list[Probe], *,
                   heat_reach_mm: float = HEAT_SINK_REACH_MM, volume_dirs: int = 4000
                   ) -> dict[str, Any]:
    """Coverage, margin (and its tumour-surface point), critical volumes, heat sink, zone
    volume (the union of the probes' zones)."""
    raw = score_zones(batch, np.zeros(1), scene, heat_reach_mm=heat_reach_mm)
    arg = int(raw["margin_arg"][0])
    return {
        "coverage_pct": float(raw["coverage_pct"][0]),
        "min_margin_mm": float(raw["margin_mm"][0]),
        "margin_point_lps": None if arg < 0 else tuple(scene.surface_lps[arg]),
        "volume_in_zone_ml": {n: float(c) * scene.voxel_ml for n, c in
                              zip(scene.critical_names, raw["critical_voxels"][0], strict=True)},
        "clearance_mm": dict(zip(scene.critical_names, map(float, raw["clearance_mm"][0]),
                                 strict=True)),
        "heat_sink_mm": dict(zip(scene.vessel_names, map(float, raw["heat_sink_mm"][0]),
                                 strict=True)),
        "zone_volume_ml": float(union_volume_ml(batch, n_dirs=volume_dirs)[0]),
        "modalities": sorted({p.modality for p in probes}),
        "zones": batch.zones(0),
    }


class AblationSimulator:
    """The ablation plug-in (entry point ``ablation``)."""

    spec = SPEC
    error_profile = ABLATION_PROFILE

    def check_inputs(self, inputs: AblationInput, parameters: dict[str, Any] | None = None
                     ) -> None:
        """Raise ``BadInputError`` now for an unknown device or setting (before any run)."""
        params = {**SPEC.defaults(), **(parameters or {})}
        resolve_probes(inputs, custom_modality=params["custom_modality"])

    @staticmethod
    def check_target(context: SimulationContext, inputs: AblationInput) -> str:
        """The tumour's name; ``BadInputError`` if it is missing or not a target."""
        name = target_name(context, inputs)
        check_target_role(context, name)
        return name

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

        model = (uncertainty or UncertaintyModel()).resolved(ABLATION_PROFILE)
        return optimise_probe(context, inputs, {**SPEC.defaults(), **(parameters or {})},
                              uncertainty=model, **kwargs)

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
        model = uncertainty.resolved(ABLATION_PROFILE)
        probes = resolve_probes(inputs, custom_modality=params["custom_modality"])
        try:
            target = self.check_target(context, inputs)
        except BadInputError as exc:
            return SimulationResult.failed(str(exc))
        report(progress, 0.05, "building the ablation scene")
        spacing = context.geometry.spacing_mm
        hyper = _hyper(params, spacing)
        nominal = ZoneBatch.of([[p.zone for p in probes]])
        draws = _draws(context, target, probes, params, model, hyper)
        reach = float(params["heat_sink_reach_mm"])
        roi = scene_roi(context, target, [nominal] + ([draws.batch] if draws else []),
                        pad_mm=max(ROI_PAD_MM, reach + 2.0))
        grow = 0.0 if draws is None else float(np.max(np.maximum(
            draws.tumour_offset_mm + draws.disc_mm, draws.tumour_offset_mm), initial=0.0)
            + max(spacing) / 2.0)  # the map is short by up to h/2 (tumour_volume_law_mm)
        scene = _nearest_first(build_scene(
            context, target, roi, max_offset_mm=grow,
            vessel_min_diameter_mm=params["heat_sink_min_diameter_mm"]), nominal)
        check(cancel)
        report(progress, 0.3, "scoring the zone")
        nom = nominal_scores(scene, nominal, probes, heat_reach_mm=reach,
                             volume_dirs=NOMINAL_VOLUME_DIRS)
        mc = None
        if draws is not None:
            report(progress, 0.4, f"Monte Carlo over {len(draws)} zones")
            mc = _score_draws(context, scene, draws, reach,
                              float(params["heat_sink_min_diameter_mm"]))
        check(cancel)
        fov = _fov(context, scene, nominal, reach)
        warnings = _warnings(context, probes, nom)
        metrics, levels = _metrics(context, scene, nom, mc, draws, hyper, model, fov)
        metrics += _heat_sink(scene, nom, mc, fov, warnings)
        concerns = _concerns(metrics, nom, reach)
        details: dict[str, Any] = {
            "target": target, "probes": [_probe_json(p) for p in probes],
            "heat_sink": [{"structure": m.structure, "diameter_mm": m.value,
                           "risk": _heat_risk(nom["modalities"])}
                          for m in metrics if m.key == "heat_sink_diameter_mm"
                          and m.assessable and m.value > 0],
            "margin_point_lps": nom["margin_point_lps"], "spacing_mm": list(spacing),
            "error_model": {**ABLATION_PROFILE.to_json(), "used": model.to_json(spacing),
                            "zone_long_sd_pct": params["zone_long_sd_pct"],
                            "zone_short_sd_pct": params["zone_short_sd_pct"],
                            "sd_log_sds": dict(zip(("placement", "zone_size", "boundary"),
                                                   map(float, hyper.log_sds()), strict=True)),
                            "discretisation_half_band_mm": hyper.half_voxel_mm},
            "thresholds": {"min_margin_mm": MIN_MARGIN_MM, "aim_margin_mm": AIM_MARGIN_MM,
                           "margin_source": MARGIN_SOURCE,
                           "heat_sink_min_diameter_mm": params["heat_sink_min_diameter_mm"],
                           "heat_sink_reach_mm": reach, "heat_sink_source": HEAT_SINK_SOURCE},
            "intervals": "prediction: 2.5-97.5th percentiles over draws of placement, zone "
                         "size, boundary and discretisation errors with the SDs' uncertainty; "
                         "confidence (probabilities): Monte Carlo noise, SD uncertainty and "
                         "discretisation (surgiplan_ablation.intervals)"}
        if params["score_paths"]:
            report(progress, 0.7, "scoring the insertion paths")
            self._paths(context, probes, model, metrics, concerns, warnings, details)
        report(progress, 1.0, "ablation scored")
        return SimulationResult(status=Status.OK, metrics=metrics, levels=levels,
                                geometry=_display(probes, nom), warnings=warnings,
                                details=details, concerns=concerns)

    def _paths(self, context, probes, model, metrics, concerns, warnings, details) -> None:
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
            res = trajectory.run(context, inputs, trajectory.spec.defaults(),
                                 uncertainty=model)  # the probe's own placement accuracy
            details["paths"].append({"probe": k, "metrics": [m.to_json() for m in res.metrics],
                                     "traversed": res.details.get("traversed", [])})
            metrics += [replace(m, key="path_min_distance_mm",
                                title=f"Probe {k} path: clearance to {m.structure}")
                        for m in res.metrics if m.key == "min_distance_mm"]
            for lv in res.levels:
                if lv.structure not in worst or lv.min_distance_mm < \
                        worst[lv.structure].min_distance_mm:
                    worst[lv.structure] = lv
            warnings += [f"probe {k} path: {w}" for w in res.warnings]
        for lv in worst.values():
            if lv.level is Level.SAFE:
                continue
            how = (f"comes {lv.min_distance_mm:.1f} mm from"
                   if math.isfinite(float(lv.min_distance_mm)) else "cannot be assessed against")
            concerns.append(Concern(Level(lv.level), f"an insertion path {how} {lv.structure} "
                                    f"(margin {lv.margin_mm:g} mm)", "path_min_distance_mm"))
        details["path_levels"] = [lv.to_json() for lv in worst.values()]


def _nearest_first(scene: AblationScene, nominal: ZoneBatch) -> AblationScene:
    """The scene with its clearance points sorted by the nominal zone's signed distance (and
    its tumour-surface points the other way), so that the kernel's bounds prune almost every
    point of every draw."""
    sd = zone_signed_distance(scene.clearance_lps, nominal.centres_lps[0], nominal.axes_lps[0],
                              nominal.semi_long_mm[0], nominal.semi_short_mm[0])
    order = np.argsort(sd, kind="stable")
    outer = np.argsort(-zone_signed_distance(
        scene.surface_lps, nominal.centres_lps[0], nominal.axes_lps[0],
        nominal.semi_long_mm[0], nominal.semi_short_mm[0]), kind="stable")
    return replace(scene, clearance_lps=np.ascontiguousarray(scene.clearance_lps[order]),
                   clearance_index=np.ascontiguousarray(scene.clearance_index[order]),
                   surface_lps=np.ascontiguousarray(scene.surface_lps[outer]))


def _hyper(params: dict[str, Any], spacing: tuple[float, float, float]) -> HyperModel:
    return HyperModel(float(params["placement_sd_log_sd"]), float(params["zone_sd_log_sd"]),
                      float(params["boundary_sd_log_sd"]),
                      max(spacing) / 2.0 if params["discretisation"] else 0.0)


def _draws(context, target, probes, params, model: UncertaintyModel, hyper
           ) -> ZoneDraws | None:
    if model.samples <= 0:
        return None
    tips = np.array([p.tip_lps for p in probes])
    shafts = np.array([p.shaft_lps for p in probes])
    sizes = np.array([[p.size.long_mm, p.size.short_mm, p.size.tip_offset_mm]
                      for p in probes])
    return draw_zones(model, tips, shafts, sizes, sd_long=params["zone_long_sd_pct"] / 100,
                      sd_short=params["zone_short_sd_pct"] / 100,
                      boundary_sd_mm=model.boundary_sd_for(context.geometry.spacing_mm),
                      n_critical=len(critical_structures(context, target)), hyper=hyper,
                      tumour_depth_mm=tumour_depth_mm(context, target))


def tumour_depth_mm(context: SimulationContext, target: str) -> float:
    """The target's depth (mm): the largest distance from a voxel centre inside it to its
    surface (the Euclidean distance transform to the nearest voxel outside, on its bounding
    box, less half the largest spacing: the surface lies between the two voxel centres)."""
    from scipy.ndimage import distance_transform_edt

    mask = context.mask(target)
    idx = np.argwhere(mask)
    if idx.size == 0:
        return 0.0
    lo, hi = idx.min(0), idx.max(0) + 1
    crop = np.pad(mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))], 1)
    sampling = tuple(context.geometry.spacing_mm[::-1])  # (z, y, x) array axes
    depth = float(distance_transform_edt(crop, sampling=sampling).max())
    return max(0.0, depth - max(context.geometry.spacing_mm) / 2.0)


def _score_draws(context, scene: AblationScene, draws: ZoneDraws, reach: float,
                 min_diameter_mm: float) -> dict[str, np.ndarray]:
    """Every metric per draw (arrays over draws), with the surfaces' offsets applied."""
    grow = draws.tumour_offset_mm + draws.disc_mm
    raw = score_zones(draws.batch, grow, scene, heat_reach_mm=reach)
    crit = draws.critical_offset_mm
    heat = raw["heat_sink_mm"].copy()
    for n, name in enumerate(scene.vessel_names):
        grown = heat[:, n] + 2 * crit[:, scene.critical_names.index(name)]
        heat[:, n] = np.where((heat[:, n] > 0) & (grown >= min_diameter_mm), grown, 0.0)
    order = np.sort(scene.tumour_sd)
    volume_law = tumour_volume_law_mm(scene, float(np.max(np.abs(draws.tumour_offset_mm),
                                                          initial=0.0)))
    return {"coverage_pct": raw["coverage_pct"], "margin_mm": raw["margin_mm"],
            "margin_raw_mm": raw["margin_mm"] + draws.disc_mm,
            "critical_ml": raw["critical_voxels"] * scene.voxel_ml,
            "clearance_mm": raw["clearance_mm"] - crit, "heat_sink_mm": heat,
            "zone_volume_ml": union_volume_ml(draws.batch, n_dirs=2000),
            # boundary error only: a voxel count averages the discretisation out (evidence.py)
            "target_volume_ml": np.searchsorted(volume_law, draws.tumour_offset_mm)
            * scene.voxel_ml,
            "tumour_failed": (grow >= scene.fov_margin_mm) | (grow <= order[0]),
            "tumour_left_image": grow >= scene.fov_margin_mm,
            "tumour_vanished": grow <= order[0],
            "zone_failed": ~zones_in_image(draws.batch, context.geometry),
            "heat_failed": ~zones_in_image(draws.batch, context.geometry, grow_mm=reach)}


def tumour_volume_law_mm(scene: AblationScene, reach_mm: float = np.inf) -> np.ndarray:
    """Sorted signed distances (mm, + outside) of the scene's tumour voxel centres to the
    tumour's sub-voxel surface (``scene.surface_lps``, the points margins are measured to):
    the tumour whose boundary moves by ``e`` holds the centres below ``e``, so its volume is
    ``searchsorted(law, e)`` voxels. Euclidean distances to the surface points, not the
    voxel distance map, whose magnitude is short by up to half the largest spacing and
    widened the volume's interval (evidence.py, ``VOLUME_LAW``). Centres farther than
    ``reach_mm`` (the largest ``|e|`` needed) get -inf / +inf (always / never held)."""
    from scipy.spatial import cKDTree

    if len(scene.surface_lps) == 0:
        return np.sort(scene.tumour_sd)
    bound = reach_mm + 1e-6 if np.isfinite(reach_mm) else np.inf
    dist, _ = cKDTree(scene.surface_lps).query(scene.tumour_lps, distance_upper_bound=bound)
    return np.sort(np.where(scene.tumour_sd < 0, -dist, dist))


def _fov(context, scene: AblationScene, nominal: ZoneBatch, reach: float) -> dict[str, str]:
    """Why nominal metrics cannot be assessed because their inputs leave the image ('' ok)."""
    out = {"tumour": "", "zone": "", "heat": ""}
    if scene.fov_margin_mm <= 0:
        out["tumour"] = (f"the image's field of view cuts the target {scene.target!r} (it "
                         "reaches the first or last voxel of an axis): its extent is unknown")
    if not zones_in_image(nominal, context.geometry)[0]:
        out["zone"] = ("the ablation zone reaches past the image, where structures are "
                       "unknown")
    if not zones_in_image(nominal, context.geometry, grow_mm=reach)[0]:
        out["heat"] = (f"the zone's {reach:g} mm heat-sink surroundings reach past the image, "
                       "where vessels are unknown")
    return out


def _metric(key: str, title: str, unit: str, value: float, values: np.ndarray | None,
            failed: np.ndarray | None, reason: str, *, structure: str | None = None,
            floor: float | None = None, ceiling: float | None = None,
            why_failed: str = "the perturbed zone leaves the image") -> Metric:
    """A predicted metric: its prediction interval over the draws, or why it has none
    (``why_failed``: the true cause of the failed draws)."""
    share = None if failed is None else float(np.mean(failed))
    if reason or not math.isfinite(value):
        why = reason or "no value (the structure is outside the scored region)"
        return Metric.unassessable(key, title, unit, why, structure=structure,
                                   failed_draw_share=share)
    if values is None:
        return Metric(key, title, unit, value, None, structure, IntervalKind.NONE,
                      "Monte Carlo is off (samples = 0): nominal value only")
    ok = ~failed & np.isfinite(values)
    share = float(1.0 - ok.mean())
    if share > MAX_FAILED_SHARE:
        return Metric.unassessable(
            key, title, unit, f"{share:.0%} of the Monte Carlo draws failed ({why_failed})",
            structure=structure, failed_draw_share=share)
    ci = prediction95(values[ok], value, floor=floor, ceiling=ceiling)
    return Metric(key, title, unit, value, ci, structure, IntervalKind.PREDICTION,
                  failed_draw_share=share)


def _probability(key: str, title: str, threshold: float, mc, draws, hyper, model, reason: str
                 ) -> Metric:
    if reason:
        share = None if mc is None else float(np.mean(mc["tumour_failed"]))
        return Metric.unassessable(key, title, "", reason, failed_draw_share=share)
    if mc is None:
        return Metric.unassessable(key, title, "", "Monte Carlo is off (samples = 0)")
    raw = np.where(mc["tumour_failed"], np.nan, mc["margin_raw_mm"])
    share = float(np.mean(~np.isfinite(raw)))
    if share > MAX_FAILED_SHARE:
        return Metric.unassessable(key, title, "", f"{share:.0%} of the Monte Carlo draws "
                                   f"failed ({tumour_failure(mc)})", failed_draw_share=share)
    p, ci = probability95(raw, threshold, draws, hyper, seed=model.seed)
    return Metric(key, title, "", p, ci, None, IntervalKind.CONFIDENCE,
                  failed_draw_share=share)


def tumour_failure(mc: dict[str, np.ndarray] | None) -> str:
    """The true cause(s) of the failed tumour draws, with their shares."""
    if mc is None:
        return ""
    causes = [(mc["tumour_vanished"], "the perturbed tumour vanished (its boundary moved "
                                      "inward past its depth)"),
              (mc["tumour_left_image"], "the perturbed tumour leaves the image")]
    parts = [f"{text}: {np.mean(hit):.0%}" for hit, text in causes if np.any(hit)]
    return "; ".join(parts) or "the metric could not be computed"


def _metrics(context, scene, nom, mc, draws, hyper, model, fov
             ) -> tuple[list[Metric], list[StructureLevel]]:
    def col(name: str, n: int | None = None):
        if mc is None:
            return None
        return mc[name] if n is None else mc[name][:, n]

    t_fail, z_fail = col("tumour_failed"), col("zone_failed")
    t_why = tumour_failure(mc)
    metrics = [
        _metric("coverage_pct", f"Coverage of {scene.target}", "%", nom["coverage_pct"],
                col("coverage_pct"), t_fail, fov["tumour"], floor=0.0, ceiling=100.0,
                why_failed=t_why),
        _metric("min_margin_mm", "Minimal ablative margin", "mm", nom["min_margin_mm"],
                col("margin_mm"), t_fail, fov["tumour"], why_failed=t_why),
        _probability("p_margin_ge_5mm", "P(margin >= 5 mm)", MIN_MARGIN_MM, mc, draws, hyper,
                     model, fov["tumour"]),
        _probability("p_margin_ge_10mm", "P(margin >= 10 mm)", AIM_MARGIN_MM, mc, draws,
                     hyper, model, fov["tumour"]),
        _metric("zone_volume_ml", "Zone volume", "ml", nom["zone_volume_ml"],
                col("zone_volume_ml"), None if mc is None else np.zeros(len(draws), bool), ""),
        _metric("target_volume_ml", f"Volume of {scene.target}", "ml",
                scene.tumour_volume_ml, col("target_volume_ml"), t_fail, fov["tumour"],
                why_failed=t_why),
    ]
    levels = []
    for n, name in enumerate(scene.critical_names):
        metrics.append(_metric("volume_in_zone_ml", f"{name} inside the zone", "ml",
                               nom["volume_in_zone_ml"][name], col("critical_ml", n), z_fail,
                               fov["zone"], structure=name, floor=0.0))
        clearance = _nominal_clearance(context, scene, name, nom)
        metrics.append(_clearance_metric(name, clearance, col("clearance_mm", n), z_fail,
                                         fov["zone"]))
        margin = context.structure(name).margin_mm
        p_hit = None if mc is None else float(np.mean(mc["critical_ml"][:, n] > 0))
        shown = clearance if not fov["zone"] else math.nan
        levels.append(StructureLevel(name, level_for(shown, margin, p_hit), shown, margin,
                                     p_hit))
    return metrics, levels


def _nominal_clearance(context, scene, name: str, nom) -> float:
    """The kernel's clearance, or for a structure outside the scored region the distance from
    the zone's surface to it (distance map, mm)."""
    value = nom["clearance_mm"][name]
    if math.isfinite(value):
        return value
    vertices = np.vstack([z.mesh(resolution=48)[0] for z in nom["zones"]])
    return float(np.min(context.signed_distance_mm(name, vertices)))


def _clearance_metric(name, clearance, values, failed, reason) -> Metric:
    title = f"Zone to {name}"
    if values is not None and not np.any(np.isfinite(values)) and math.isfinite(clearance) \
            and not reason:
        return Metric("zone_clearance_mm", title, "mm", clearance, None, name,
                      IntervalKind.NONE, f"more than {ROI_PAD_MM:g} mm from every drawn zone "
                      "(outside the scored region): the nominal distance, no interval needed "
                      "for a structure this far")
    return _metric("zone_clearance_mm", title, "mm", clearance, values, failed, reason,
                   structure=name)


def _heat_risk(modalities: list[str]) -> str:
    return "high" if "rf" in modalities else "moderate"


def _heat_sink(scene, nom, mc, fov, warnings) -> list[Metric]:
    metrics = []
    risk = _heat_risk(nom["modalities"])
    failed = None if mc is None else mc["heat_failed"]
    for n, name in enumerate(scene.vessel_names):
        value = nom["heat_sink_mm"][name]
        values = None if mc is None else mc["heat_sink_mm"][:, n]
        m = _metric("heat_sink_diameter_mm", f"Heat-sink vessel in {name}", "mm", value,
                    values, failed, fov["heat"], structure=name, floor=0.0,
                    why_failed="the perturbed zone's heat-sink surroundings leave the image")
        metrics.append(m)
        if m.assessable and value > 0:
            warnings.append(f"heat-sink risk ({risk}): a {value:.1f} mm vessel of {name} lies "
                            "within the heat-sink distance of the ablation zone")
    return metrics


def _concerns(metrics: list[Metric], nom, reach: float) -> list[Concern]:
    """Kind-specific verdicts: incomplete coverage, a short margin, a likely short margin, a
    heat-sink vessel (see the module docstring)."""
    by_key = {(m.key, m.structure): m for m in metrics}
    out = []
    cov = by_key[("coverage_pct", None)]
    if cov.assessable and cov.value < 100.0:
        out.append(Concern(Level.BREACH, f"coverage {cov.value:.1f} % < 100 %: part of the "
                           "tumour lies outside the ablation zone", "coverage_pct"))
    margin = by_key[("min_margin_mm", None)]
    if margin.assessable and margin.value < MIN_MARGIN_MM:
        level = Level.BREACH if margin.value < 0 else Level.CAUTION
        out.append(Concern(level, f"minimal ablative margin {margin.value:.1f} mm is below "
                           f"the {MIN_MARGIN_MM:g} mm minimum (Wang 2013)", "min_margin_mm"))
    p5 = by_key[("p_margin_ge_5mm", None)]
    if p5.assessable and p5.value < 0.5:
        out.append(Concern(Level.CAUTION, f"P(margin >= {MIN_MARGIN_MM:g} mm) = "
                           f"{p5.value:.2f}: a margin below the minimum is the likelier "
                           "outcome with the stated placement accuracy", "p_margin_ge_5mm"))
    risk = _heat_risk(nom["modalities"])
    for m in metrics:
        if m.key == "heat_sink_diameter_mm" and m.assessable and m.value > 0:
            out.append(Concern(Level.CAUTION, f"heat sink ({risk} risk): a {m.value:.1f} mm "
                               f"vessel of {m.structure} within {reach:g} mm of the zone",
                               "heat_sink_diameter_mm"))
    return out


def _warnings(context, probes: list[Probe], nom) -> list[str]:
    warnings = []
    for k, p in enumerate(probes, start=1):
        if p.device is not None and p.device.illustrative:
            warnings.append(f"probe {k}: device table {p.device.id} holds illustrative "
                            "numbers, not vendor data")
        if not context.geometry.contains_lps(p.tip_lps[None])[0]:
            warnings.append(f"probe {k}: the tip lies outside the image")
    return warnings


def _display(probes: list[Probe], nom) -> DisplayGeometry:
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
