"""The resection simulator: resected and remnant organ volumes, future liver remnant %, the
margin achieved, vessels crossing the cut with their diameter, with 95 % prediction intervals
from segmentation-boundary, transection-placement and discretisation error (definitions in
:mod:`surgiplan_resection.scoring`). Values that the image cannot support (a region reaching the
edge of a thin field of view) are reported not assessable, with the reason.

The organ must have the role organ and the target the role target: anything else (``--organ
skin``) gives a failed result saying what to name instead. The verdict follows the numbers: a
margin below the required one, a target left in the remnant, a remnant below the minimum for
the liver's condition (or likely to be) are :class:`~surgiplan.simulation.Concern` s, with the
thresholds' sources in ``details["thresholds"]``.

Inputs (:class:`~surgiplan.simulation.ResectionInput`): the organ, a target with a margin
and/or a cutting surface (a triangle mesh whose normals point to the removed side; a plane
mesh is recognised as a plane). Two ways to call it:

* ``run(context, inputs, parameters, uncertainty=...)``: the full run (Monte Carlo intervals,
  specimen and remnant surfaces in the display geometry), through the runner like any plug-in;
* ``live(prepared, cut, ...)`` with ``prepared = prepare(context, organ, target)``: nominal
  values only, in milliseconds, for re-scoring while the user drags a plane or control point.

Fixed metric keys: ``resected_volume_ml``, ``remnant_volume_ml``, ``remnant_pct``,
``margin_mm`` (NaN -> null without a target); also ``organ_volume_ml``,
``remnant_threshold_pct``, ``p_remnant_below_threshold``, ``p_margin_below_required`` and, per
critical structure cut through, ``crossing_diameter_mm``.

Display geometry: the mesh ``"cut surface"`` (the resection surface, clipped to the organ)
with the margin colour map as :class:`~surgiplan.simulation.DisplayScalars` (label
``"margin"``, ``structure="cut surface"``, ``vertex_ids`` index that mesh's vertices, values =
the target's signed distance in mm); meshes ``"specimen"`` and ``"remnant"`` (full run); points
at each vessel crossing and at the closest approach of the target.

Capabilities (optional public methods a host panel may call on the simulator object it got
from discovery, instead of importing this package's modules): ``plane_cut(point_lps,
normal_lps)`` (a plane cut for :meth:`~ResectionSimulator.live`), ``prepare(context, organ,
target)`` (the organ gathered once for live re-scoring), ``live``, ``resection_masks(context,
inputs, parameters)`` (specimen and remnant voxel masks) and ``add_resection_structures(twin,
masks, editor=...)`` (add them as structures; one undo step with a segment editor).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    Concern,
    DisplayGeometry,
    DisplayMesh,
    DisplayPoint,
    DisplayScalars,
    IntervalKind,
    Kind,
    Level,
    Metric,
    Output,
    Parameter,
    ResectionInput,
    SimulationContext,
    SimulationResult,
    SimulatorSpec,
    Status,
    StructureLevel,
    UncertaintyModel,
    level_for,
)
from surgiplan.simulation.uncertainty import ErrorProfile, interval95, probability95
from surgiplan_resection import __version__
from surgiplan_resection.cuts import Cut, bounded_cut_from_mesh
from surgiplan_resection.scoring import (
    BAND_SDS,
    RULES,
    Intervals,
    PreparedResection,
    ResectionScore,
    choose_organ,
    role_problem,
)

FLR_THRESHOLDS_PCT = {"normal": 20.0, "chemotherapy": 30.0, "cirrhosis": 40.0}
FLR_SOURCE = ("minimum future liver remnant (share of the total functional liver volume): 20 % "
              "for a normal liver, 30 % after extensive chemotherapy, 40 % in cirrhosis. "
              "Abdalla EK et al., Improving resectability of hepatic colorectal metastases: "
              "expert consensus statement, Ann Surg Oncol 2006;13(10):1271-1280; Adams RB et "
              "al., Selection for hepatic resection of colorectal liver metastases: expert "
              "consensus statement, HPB 2013;15(2):91-103")
MARGIN_SOURCE = ("resection margin: a tumour reaching the transection (margin <= 0 mm, R1) "
                 "predicts recurrence, while among clear margins the width mattered little: "
                 "Pawlik TM et al., Effect of surgical margin status on survival and site of "
                 "recurrence after hepatic resection for colorectal metastases, Ann Surg "
                 "2005;241(5):715-722. The required width is the planned margin (--margin-mm), "
                 "else the target structure's own safety margin in the twin")
SEGMENTATION_SOURCE = ("Heimann T et al., Comparison and evaluation of methods for liver "
                       "segmentation from CT datasets (SLIVER07), IEEE Trans Med Imaging "
                       "2009;28(8):1251-1265")
RESECTION_PROFILE = ErrorProfile(
    name="resection: segmentation boundary one voxel; transection placement not included",
    entry_sd_mm=0.0, target_sd_mm=0.0, source=SEGMENTATION_SOURCE,
    derivation="A resection has no entry or target point. target_sd_mm is the SD (mm) of the "
               "transection's placement along its normal; it is 0 by default because we know "
               "of no published figure for freehand liver transection accuracy that we can "
               "vouch for: the intervals then cover segmentation and discretisation only (set "
               "--cut-sd-mm to add it). The boundary SD is one voxel of the twin's grid: the "
               "label boundary's own ambiguity. Heimann 2009 scores liver segmentations against "
               "the variability of a second human rater, whose average surface distance was of "
               "the order of 1 mm (quoted from memory: check the paper before relying on the "
               "figure), the size of one voxel of a typical abdominal CT. The boundary offset "
               "is applied to the whole organ surface at once (fully correlated), the widest "
               "case for volumes.",
    extra_sources=(("boundary_sd_mm", "one voxel (label boundary ambiguity); context: "
                    + SEGMENTATION_SOURCE),))
CUT_COLOR = (0.30, 0.75, 0.95)
SPECIMEN_COLOR = (0.95, 0.55, 0.15)
REMNANT_COLOR = (0.45, 0.75, 0.35)
P_CONCERN = 0.05  # a remnant this likely (or more) to fall below its minimum is a caution

SPEC = SimulatorSpec(
    id="resection",
    title="Resection (target margin and/or cutting surface; future liver remnant)",
    version=__version__,
    kind=Kind.RESECTION,
    required_roles=(Role.ORGAN,),
    capabilities=("live", "handles", "structures"),
    parameters=(
        Parameter(key="specimen_rule", title="Specimen", type="choice", default="auto",
                  choices=RULES,
                  description="auto: the cut's removed side if there is a cut, else the organ "
                              "within the margin of the target; target_margin_on_cut_side: "
                              "both"),
        Parameter(key="liver_condition", title="Liver condition (minimum remnant)",
                  type="choice", default="normal", choices=tuple(FLR_THRESHOLDS_PCT),
                  description="normal 20 %, chemotherapy 30 %, cirrhosis 40 %",
                  source=FLR_SOURCE),
        Parameter(key="surface_spacing_mm", title="Cut surface sampling", unit="mm",
                  default=1.0, minimum=0.25, maximum=5.0,
                  description="vertex spacing of the resection surface (margin, vessels)"),
        Parameter(key="min_vessel_diameter_mm", title="Smallest vessel crossing reported",
                  unit="mm", default=1.0, minimum=0.0, maximum=30.0),
        Parameter(key="display_meshes", title="Specimen and remnant surfaces", type="bool",
                  default=True),
    ),
    outputs=(
        Output(key="resected_volume_ml", title="Resected volume", unit="ml"),
        Output(key="remnant_volume_ml", title="Remnant volume", unit="ml"),
        Output(key="remnant_pct", title="Future remnant", unit="%"),
        Output(key="margin_mm", title="Resection margin", unit="mm"),
        Output(key="organ_volume_ml", title="Organ volume", unit="ml"),
        Output(key="remnant_threshold_pct", title="Minimum remnant", unit="%"),
        Output(key="p_remnant_below_threshold", title="P(remnant below minimum)", unit=""),
        Output(key="p_margin_below_required", title="P(margin below the required margin)",
               unit=""),
        Output(key="crossing_diameter_mm", title="Vessel cut through: diameter", unit="mm",
               per_structure=True),
    ),
    description="Resected and remnant organ volumes, future liver remnant %, margin to the "
                "target, vessels crossing the cut, with 95 % prediction intervals from "
                "segmentation-boundary, transection-placement and discretisation error.",
)


def prepare(context: SimulationContext, organ: str | None = None, target: str | None = None, *,
            sd_mm: float | None = None) -> PreparedResection:
    """Gather the organ (and target) once for :meth:`ResectionSimulator.live` re-scoring."""
    organ = choose_organ(context, organ, target)
    sd = max(context.geometry.spacing_mm) if sd_mm is None else sd_mm
    return PreparedResection(context, organ, target, band_mm=BAND_SDS * sd)


def cut_of(inputs: ResectionInput) -> Cut | None:
    """The cut an input's mesh describes, bounded by the mesh (None without one)."""
    if not inputs.cut_faces:
        return None
    return bounded_cut_from_mesh(inputs.cut_vertices_lps, inputs.cut_faces)


def required_margin_mm(context: SimulationContext, inputs: ResectionInput) -> float:
    """The margin the target needs: the planned one, else the target structure's own."""
    if inputs.margin_mm > 0 or inputs.target_structure is None:
        return float(inputs.margin_mm)
    return float(context.structure(inputs.target_structure).margin_mm)


class ResectionSimulator:
    """The resection plug-in (entry point ``resection``)."""

    spec = SPEC
    error_profile = RESECTION_PROFILE

    def run(
        self,
        context: SimulationContext,
        inputs: ResectionInput,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult:
        problem = role_problem(context, inputs.organ_structure, inputs.target_structure)
        if problem is not None:
            return SimulationResult.failed(problem)
        report(progress, 0.0, "preparing the organ")
        sd = uncertainty.boundary_sd_for(context.geometry.spacing_mm)
        cut_sd = 0.0 if uncertainty.target_sd_mm is None else float(uncertainty.target_sd_mm)
        prepared = prepare(context, inputs.organ_structure, inputs.target_structure, sd_mm=sd)
        check(cancel)
        report(progress, 0.4, "cutting")
        score = prepared.score(cut_of(inputs), rule=parameters["specimen_rule"],
                               margin_mm=inputs.margin_mm,
                               surface_spacing_mm=parameters["surface_spacing_mm"],
                               min_diameter_mm=parameters["min_vessel_diameter_mm"])
        check(cancel)
        intervals = None
        if uncertainty.samples > 0:
            report(progress, 0.6, "Monte Carlo over the boundaries")
            intervals = prepared.intervals(score, sd_mm=sd, cut_sd_mm=cut_sd,
                                           samples=int(uncertainty.samples),
                                           seed=int(uncertainty.seed))
        result = build_result(score, intervals, parameters,
                              required_margin_mm=required_margin_mm(context, inputs))
        result.details["error_model"] = {"profile": self.error_profile.to_json(),
                                         "used": uncertainty.to_json(context.geometry.spacing_mm),
                                         **({} if intervals is None else intervals.model)}
        if parameters["display_meshes"]:
            check(cancel)
            report(progress, 0.8, "specimen and remnant surfaces")
            result.geometry.meshes += specimen_meshes(prepared, score)
        report(progress, 1.0, "resection scored")
        return result

    def live(self, prepared: PreparedResection, cut: Cut | None, *, margin_mm: float = 0.0,
             parameters: dict[str, Any] | None = None, quick: bool = False) -> SimulationResult:
        """Nominal re-score of a cut on a prepared organ (no intervals, no specimen meshes);
        ``parameters`` as for :meth:`run` (defaults; ``surface_spacing_mm`` 2 mm); ``quick``
        (drag frames): cut vessels' diameters from their section's area on the surface grid."""
        params = {**SPEC.defaults(), "surface_spacing_mm": 2.0, **(parameters or {})}
        score = prepared.score(cut, rule=params["specimen_rule"], margin_mm=margin_mm,
                               surface_spacing_mm=params["surface_spacing_mm"],
                               min_diameter_mm=params["min_vessel_diameter_mm"], quick=quick)
        required = margin_mm
        if required <= 0 and prepared.target is not None:
            required = prepared.context.structure(prepared.target).margin_mm
        return build_result(score, None, params, required_margin_mm=required)

    # ------------------------------------------------------------------ capabilities
    @staticmethod
    def plane_cut(point_lps: Any, normal_lps: Any) -> Cut:
        """A plane through ``point_lps`` (LPS mm) removing the side ``normal_lps`` points to."""
        from surgiplan_resection.cuts import PlaneCut

        return PlaneCut(tuple(point_lps), tuple(normal_lps))

    @staticmethod
    def curved_cut(centre_lps: Any, normal_lps: Any, size_mm: Any, heights_mm: Any) -> Cut:
        """A deformable cut: a grid of control points (rows along v, columns along u of the
        plane through ``centre_lps``, ``size_mm`` wide) moved ``heights_mm`` along the normal
        (LPS mm; removes the side the normal points to), joined by an interpolating spline."""
        from surgiplan_resection.cuts import HeightFieldCut

        return HeightFieldCut(tuple(centre_lps), tuple(normal_lps), tuple(size_mm),
                              tuple(tuple(float(x) for x in row) for row in heights_mm))

    @staticmethod
    def prepare(context: SimulationContext, organ: str | None = None,
                target: str | None = None, *, sd_mm: float | None = None) -> PreparedResection:
        """The organ (and target) gathered once for :meth:`live` re-scoring (seconds)."""
        return prepare(context, organ, target, sd_mm=sd_mm)

    @staticmethod
    def resection_masks(context: SimulationContext, inputs: ResectionInput,
                        parameters: dict[str, Any] | None = None) -> Any:
        """The specimen and remnant voxel masks of a resection (same rule as :meth:`run`)."""
        from surgiplan_resection.regions import resection_masks

        return resection_masks(context, inputs, parameters)

    @staticmethod
    def add_resection_structures(twin: Any, masks: Any, *, editor: Any = None,
                                 names: tuple[str, str] = ("specimen", "remnant")) -> tuple:
        """Add the masks as structures (role other) to ``twin``; with ``editor`` (a segment
        editor on ``twin``) as one undo step. Returns the (specimen, remnant) structures."""
        from surgiplan_resection.regions import add_resection_structures

        return add_resection_structures(twin, masks, editor=editor, names=names)


NO_MC = "no Monte Carlo (samples 0): nominal value only"
EXACT_THRESHOLD = ("exact: the published minimum for the chosen liver condition (a descriptive "
                   "constant)")


def _metric(key: str, title: str, unit: str, value: float, intervals: Intervals | None,
            draws: str | None, *, structure: str | None = None, reason: str = "") -> Metric:
    """A metric with its prediction interval from ``draws`` (an ``Intervals`` field), the
    no-Monte-Carlo reason without draws, or not assessable with ``reason``."""
    if reason:
        return Metric.unassessable(key, title, unit, reason, structure=structure,
                                   failed_draw_share=None if intervals is None else 1.0)
    if intervals is None or draws is None:
        return Metric(key, title, unit, value, None, structure, IntervalKind.NONE, NO_MC)
    return Metric(key, title, unit, value, intervals.ci(draws), structure,
                  IntervalKind.PREDICTION, failed_draw_share=0.0)


def _probability(key: str, title: str, draws: np.ndarray, threshold: float,
                 structure: str | None = None, *, bias_mm: float = 0.0) -> Metric:
    """P(draw < threshold) with a Wilson 95 % interval; ``bias_mm`` (the metric's unit, >= 0)
    widens it to the envelope with the draws shifted up by ``bias_mm``: the measured value reads
    up to that much below the true one (a discretisation bias the draws do not carry)."""
    p, p_ci = probability95(draws < threshold)
    low, high = p_ci
    if bias_mm > 0:
        _, (lo, hi) = probability95(draws + bias_mm < threshold)
        low, high = min(low, lo), max(high, hi)
    return Metric(key, title, "", p, (low, high), structure, IntervalKind.CONFIDENCE,
                  failed_draw_share=0.0)


def build_result(score: ResectionScore, intervals: Intervals | None, parameters: dict[str, Any],
                 *, required_margin_mm: float = 0.0) -> SimulationResult:
    """The :class:`SimulationResult` of a score (and its Monte Carlo draws, if any)."""
    threshold = FLR_THRESHOLDS_PCT[parameters["liver_condition"]]
    na = score.not_assessable
    organ_na = na.get("organ", "")
    metrics = [
        _metric("resected_volume_ml", f"Resected {score.organ}", "ml", score.resected_volume_ml,
                intervals, "resected_ml", reason=na.get("specimen", "")),
        _metric("remnant_volume_ml", f"Remnant {score.organ}", "ml", score.remnant_volume_ml,
                intervals, "remnant_ml", reason=organ_na),
        _metric("remnant_pct", "Future remnant", "%", score.remnant_pct, intervals,
                "remnant_pct", reason=organ_na or na.get("specimen", "")),
        _metric("organ_volume_ml", f"{score.organ} volume", "ml", score.organ_volume_ml,
                intervals, "organ_ml", reason=organ_na),
        Metric("remnant_threshold_pct", f"Minimum remnant ({parameters['liver_condition']})",
               "%", threshold, None, None, IntervalKind.NONE, EXACT_THRESHOLD),
    ]
    if score.target is not None:
        metrics.append(_metric("margin_mm", "Resection margin", "mm", score.margin_mm,
                               intervals, "margin_mm", structure=score.target,
                               reason=na.get("margin", "")))
    if intervals is not None and not (organ_na or na.get("specimen")):
        metrics.append(_probability("p_remnant_below_threshold", "P(remnant below minimum)",
                                    intervals.remnant_pct, threshold))
    if (intervals is not None and intervals.margin_mm is not None and required_margin_mm > 0
            and not na.get("margin")):
        # the margin measured on label staircases reads below the analytic one (0.16 mm on a
        # 1 mm grid, tests/verification/test_resection_coverage.py): a one-sided h/6 bias
        h_mm = (score.voxel_ml * 1000.0) ** (1.0 / 3.0)
        metrics.append(_probability("p_margin_below_required",
                                    f"P(margin < {required_margin_mm:g} mm)",
                                    intervals.margin_mm, required_margin_mm, score.target,
                                    bias_mm=h_mm / 6.0))
    metrics += _crossing_metrics(score, intervals)
    return SimulationResult(
        status=Status.OK, metrics=metrics, levels=_levels(score),
        geometry=_geometry(score),
        warnings=_warnings(score, threshold, parameters["liver_condition"], required_margin_mm),
        details=_details(score, threshold, required_margin_mm),
        concerns=_concerns(score, metrics, threshold, parameters["liver_condition"],
                           required_margin_mm))


def _crossing_metrics(score: ResectionScore, intervals: Intervals | None) -> list[Metric]:
    """The widest section of each critical structure the cut goes through."""
    widest: dict[str, Any] = {}
    for c in score.crossings:
        if c.structure not in widest or (c.in_field, c.diameter_mm) > (
                widest[c.structure].in_field, widest[c.structure].diameter_mm):
            widest[c.structure] = c
    out = []
    for name, c in widest.items():
        title = f"{name} cut through: diameter"
        reason = "" if c.in_field else (f"the section of {name} reaches the edge of the image "
                                        "(thin field of view)")
        if reason or intervals is None or name not in intervals.diameters_mm:
            out.append(_metric("crossing_diameter_mm", title, "mm", c.diameter_mm, None, None,
                               structure=name, reason=reason))
        else:
            out.append(Metric("crossing_diameter_mm", title, "mm", c.diameter_mm,
                              interval95(intervals.diameters_mm[name]), name,
                              IntervalKind.PREDICTION, failed_draw_share=0.0))
    return out


def _concerns(score: ResectionScore, metrics: list[Metric], threshold: float, condition: str,
              required_margin_mm: float) -> list[Concern]:
    """The verdicts the numbers call for (margin, target left behind, remnant)."""
    out = []
    by_key = {m.key: m for m in metrics}
    margin = by_key.get("margin_mm")
    if margin is not None and margin.assessable:
        if score.target_resected_pct is not None and score.target_resected_pct < 100.0:
            out.append(Concern(Level.BREACH, f"{100 - score.target_resected_pct:.1f} % of "
                               f"{score.target} stays in the remnant", "margin_mm"))
        elif margin.value <= 0:
            out.append(Concern(Level.BREACH, f"the transection touches {score.target} "
                               f"(margin {margin.value:.1f} mm, R1)", "margin_mm"))
        elif round(margin.value, 1) < required_margin_mm:
            out.append(Concern(Level.CAUTION, f"margin {margin.value:.1f} mm is below the "
                               f"required {required_margin_mm:g} mm", "margin_mm"))
    remnant = by_key["remnant_pct"]
    if remnant.assessable and remnant.value < threshold:
        out.append(Concern(Level.BREACH, f"future remnant {remnant.value:.1f} % is below the "
                           f"{threshold:g} % minimum for a {condition} liver", "remnant_pct"))
    elif "p_remnant_below_threshold" in by_key and \
            by_key["p_remnant_below_threshold"].value >= P_CONCERN:
        p = by_key["p_remnant_below_threshold"].value
        out.append(Concern(Level.CAUTION, f"future remnant may fall below the {threshold:g} % "
                           f"minimum (P = {p:.2f})", "p_remnant_below_threshold"))
    return out


def _levels(score: ResectionScore) -> list[StructureLevel]:
    """Each critical structure against the resection surface: breach when the cut goes through
    it, caution within its safety margin, else safe."""
    levels = []
    for name, d in score.cut_distance_mm.items():
        crossing = next((c for c in score.crossings if c.structure == name), None)
        margin = score.critical_margin_mm.get(name, 0.0)
        levels.append(StructureLevel(name, level_for(d, margin), d, margin, None,
                                     None if crossing is None else crossing.point_lps))
    return levels


def _geometry(score: ResectionScore) -> DisplayGeometry:
    geometry = DisplayGeometry()
    surface = score.surface
    if not surface.is_empty():
        geometry.meshes.append(DisplayMesh("cut surface", surface.vertices_lps, surface.faces,
                                           CUT_COLOR, 0.8))
        if score.target is not None:
            geometry.scalars.append(DisplayScalars(
                "margin", "cut surface", "mm", surface.vertices_lps, score.surface_margin_mm,
                np.arange(len(surface.vertices_lps))))
    for c in score.crossings:
        geometry.points.append(DisplayPoint(f"{c.structure} cut ({c.diameter_mm:.1f} mm)",
                                            c.point_lps))
    if score.margin_point_lps is not None:
        geometry.points.append(DisplayPoint("closest approach to the target",
                                            score.margin_point_lps))
    return geometry


def _warnings(score: ResectionScore, threshold: float, condition: str,
              required_margin_mm: float) -> list[str]:
    out = [f"not assessable: {reason}" for reason in score.not_assessable.values()]
    if score.resected_voxels == 0:
        out.append(f"the resection removes nothing of {score.organ}")
    if score.remnant_pct < threshold and "organ" not in score.not_assessable:
        out.append(f"the future remnant ({score.remnant_pct:.1f} %) is below the "
                   f"{threshold:g} % minimum for a {condition} liver")
    if score.target is None:
        out.append("no target structure: the margin is not computed")
    elif score.target_resected_pct is not None and score.target_resected_pct < 100.0:
        out.append(f"{100 - score.target_resected_pct:.1f} % of {score.target} stays in the "
                   f"remnant")
    elif math.isfinite(score.margin_mm) and round(score.margin_mm, 1) < required_margin_mm:
        out.append(f"the margin achieved ({score.margin_mm:.1f} mm) is less than the required "
                   f"{required_margin_mm:g} mm")
    for c in score.crossings:
        out.append(f"the cut goes through {c.structure} (diameter {c.diameter_mm:.1f} mm)")
    return out


def _details(score: ResectionScore, threshold: float, required_margin_mm: float,
             ) -> dict[str, Any]:
    return {"organ": score.organ, "target": score.target, "specimen_rule": score.rule,
            "organ_voxels": score.organ_voxels, "resected_voxels": score.resected_voxels,
            "target_resected_pct": score.target_resected_pct,
            "margin_point_lps": None if score.margin_point_lps is None
            else list(score.margin_point_lps),
            "margin_definition": "least sub-voxel target distance on the specimen's boundary "
                                 "with the remnant (every rule)",
            "required_margin_mm": required_margin_mm,
            "crossings": [c.to_json() for c in score.crossings],
            "cut_surface_vertices": len(score.surface.vertices_lps),
            "not_assessable": dict(score.not_assessable),
            "thresholds": {"remnant_pct": {"value": threshold, "source": FLR_SOURCE},
                           "margin_mm": {"value": required_margin_mm,
                                         "source": MARGIN_SOURCE}}}


def specimen_meshes(prepared: PreparedResection, score: ResectionScore) -> list[DisplayMesh]:
    """Surfaces (LPS mm) of the specimen and the remnant, from their voxel masks."""
    from surgiplan.processing.surfaces import layer_surfaces

    specimen, remnant = prepared.masks(score)
    labels = specimen.astype(np.uint8) + 2 * remnant.astype(np.uint8)
    meshes = layer_surfaces(labels, prepared.geometry, {"specimen": 1, "remnant": 2})
    return [DisplayMesh(name, m.vertices_lps, m.faces, color, 0.5)
            for (name, m), color in zip(meshes.items(), (SPECIMEN_COLOR, REMNANT_COLOR),
                                        strict=True) if not m.is_empty()]
