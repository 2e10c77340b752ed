"""The resection simulator: resected and remnant organ volumes, future liver remnant %, the
margin achieved, vessels crossing the cut with their diameter, with 95 % intervals from
segmentation uncertainty (definitions in :mod:`surgiplan_resection.scoring`).

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
    DisplayGeometry,
    DisplayMesh,
    DisplayPoint,
    DisplayScalars,
    Kind,
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
from surgiplan_resection import __version__
from surgiplan_resection.cuts import Cut, cut_from_mesh
from surgiplan_resection.scoring import (
    BAND_SDS,
    RULES,
    Intervals,
    PreparedResection,
    ResectionScore,
    choose_organ,
)

FLR_THRESHOLDS_PCT = {"normal": 20.0, "chemotherapy": 30.0, "cirrhosis": 40.0}
FLR_SOURCE = ("minimum future liver remnant (share of the total functional liver volume): 20 % "
              "for a normal liver, 30 % after extensive chemotherapy, 40 % in cirrhosis. "
              "Abdalla EK et al., Improving resectability of hepatic colorectal metastases: "
              "expert consensus statement, Ann Surg Oncol 2006;13(10):1271-1280; Adams RB et "
              "al., Selection for hepatic resection of colorectal liver metastases: expert "
              "consensus statement, HPB 2013;15(2):91-103")
CUT_COLOR = (0.30, 0.75, 0.95)
SPECIMEN_COLOR = (0.95, 0.55, 0.15)
REMNANT_COLOR = (0.45, 0.75, 0.35)

SPEC = SimulatorSpec(
    id="resection",
    title="Resection (target margin and/or cutting surface; future liver remnant)",
    version=__version__,
    kind=Kind.RESECTION,
    required_roles=(Role.ORGAN,),
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
        Output(key="p_margin_below_required", title="P(margin below the planned margin)",
               unit=""),
        Output(key="crossing_diameter_mm", title="Vessel cut through: diameter", unit="mm",
               per_structure=True),
    ),
    description="Resected and remnant organ volumes, future liver remnant %, margin to the "
                "target, vessels crossing the cut, with 95 % intervals from segmentation "
                "uncertainty.",
)


def prepare(context: SimulationContext, organ: str | None = None, target: str | None = None, *,
            sd_mm: float | None = None) -> PreparedResection:
    """Gather the organ (and target) once for :meth:`ResectionSimulator.live` re-scoring."""
    organ = choose_organ(context, organ, target)
    sd = max(context.geometry.spacing_mm) if sd_mm is None else sd_mm
    return PreparedResection(context, organ, target, band_mm=BAND_SDS * sd)


def cut_of(inputs: ResectionInput) -> Cut | None:
    """The cut an input's mesh describes (None without one)."""
    if not inputs.cut_faces:
        return None
    return cut_from_mesh(inputs.cut_vertices_lps, inputs.cut_faces)


class ResectionSimulator:
    """The resection plug-in (entry point ``resection``)."""

    spec = SPEC

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
        report(progress, 0.0, "preparing the organ")
        sd = uncertainty.boundary_sd_for(context.geometry.spacing_mm)
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
            intervals = prepared.intervals(score, sd_mm=sd, samples=int(uncertainty.samples),
                                           seed=int(uncertainty.seed))
        result = build_result(score, intervals, parameters, required_margin_mm=inputs.margin_mm)
        if parameters["display_meshes"]:
            check(cancel)
            report(progress, 0.8, "specimen and remnant surfaces")
            result.geometry.meshes += specimen_meshes(prepared, score)
        report(progress, 1.0, "resection scored")
        return result

    def live(self, prepared: PreparedResection, cut: Cut | None, *, margin_mm: float = 0.0,
             parameters: dict[str, Any] | None = None) -> SimulationResult:
        """Nominal re-score of a cut on a prepared organ (no intervals, no specimen meshes);
        ``parameters`` as for :meth:`run` (defaults; ``surface_spacing_mm`` 2 mm)."""
        params = {**SPEC.defaults(), "surface_spacing_mm": 2.0, **(parameters or {})}
        score = prepared.score(cut, rule=params["specimen_rule"], margin_mm=margin_mm,
                               surface_spacing_mm=params["surface_spacing_mm"],
                               min_diameter_mm=params["min_vessel_diameter_mm"])
        return build_result(score, None, params, required_margin_mm=margin_mm)

    # ------------------------------------------------------------------ capabilities
    @staticmethod
    def plane_cut(point_lps: Any, normal_lps: Any) -> Cut:
        """A plane through ``point_lps`` (LPS mm) removing the side ``normal_lps`` points to."""
        from surgiplan_resection.cuts import PlaneCut

        return PlaneCut(tuple(point_lps), tuple(normal_lps))

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


def build_result(score: ResectionScore, intervals: Intervals | None, parameters: dict[str, Any],
                 *, required_margin_mm: float = 0.0) -> SimulationResult:
    """The :class:`SimulationResult` of a score (and its Monte Carlo draws, if any)."""
    threshold = FLR_THRESHOLDS_PCT[parameters["liver_condition"]]
    ci = (lambda name: None) if intervals is None else intervals.ci
    metrics = [
        Metric("resected_volume_ml", f"Resected {score.organ}", "ml", score.resected_volume_ml,
               ci("resected_ml")),
        Metric("remnant_volume_ml", f"Remnant {score.organ}", "ml", score.remnant_volume_ml,
               ci("remnant_ml")),
        Metric("remnant_pct", "Future remnant", "%", score.remnant_pct, ci("remnant_pct")),
        Metric("margin_mm", "Resection margin", "mm", score.margin_mm,
               None if intervals is None or intervals.margin_mm is None else ci("margin_mm"),
               score.target),
        Metric("organ_volume_ml", f"{score.organ} volume", "ml", score.organ_volume_ml,
               ci("organ_ml")),
        Metric("remnant_threshold_pct", f"Minimum remnant ({parameters['liver_condition']})",
               "%", threshold),
    ]
    if intervals is not None:
        p, p_ci = intervals.probability_below("remnant_pct", threshold)
        metrics.append(Metric("p_remnant_below_threshold", "P(remnant below minimum)", "", p,
                              p_ci))
        if intervals.margin_mm is not None and required_margin_mm > 0:
            p, p_ci = intervals.probability_below("margin_mm", required_margin_mm)
            metrics.append(Metric("p_margin_below_required",
                                  f"P(margin < {required_margin_mm:g} mm)", "", p, p_ci,
                                  score.target))
    widest: dict[str, float] = {}
    for c in score.crossings:
        widest[c.structure] = max(widest.get(c.structure, 0.0), c.diameter_mm)
    for name, diameter in widest.items():
        draws = None if intervals is None else intervals.diameters_mm.get(name)
        metrics.append(Metric("crossing_diameter_mm", f"{name} cut through: diameter", "mm",
                              diameter, None if draws is None else _interval(draws), name))
    return SimulationResult(
        status=Status.OK, metrics=metrics, levels=_levels(score),
        geometry=_geometry(score),
        warnings=_warnings(score, threshold, parameters["liver_condition"], required_margin_mm),
        details=_details(score))


def _interval(draws: np.ndarray) -> tuple[float, float]:
    from surgiplan.simulation.uncertainty import interval95

    return interval95(draws)


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
    out = []
    if score.resected_voxels == 0:
        out.append(f"the resection removes nothing of {score.organ}")
    if score.remnant_pct < threshold:
        out.append(f"the future remnant ({score.remnant_pct:.1f} %) is below the "
                   f"{threshold:g} % minimum for a {condition} liver")
    if score.target is None:
        out.append("no target structure: the margin is not computed")
    elif score.target_resected_pct is not None and score.target_resected_pct < 100.0:
        out.append(f"{100 - score.target_resected_pct:.1f} % of {score.target} stays in the "
                   f"remnant")
    elif math.isfinite(score.margin_mm) and score.margin_mm < required_margin_mm:
        out.append(f"the margin achieved ({score.margin_mm:.1f} mm) is less than the planned "
                   f"{required_margin_mm:g} mm")
    for c in score.crossings:
        out.append(f"the cut goes through {c.structure} (diameter {c.diameter_mm:.1f} mm)")
    return out


def _details(score: ResectionScore) -> dict[str, Any]:
    return {"organ": score.organ, "target": score.target, "specimen_rule": score.rule,
            "organ_voxels": score.organ_voxels, "resected_voxels": score.resected_voxels,
            "target_resected_pct": score.target_resected_pct,
            "margin_point_lps": None if score.margin_point_lps is None
            else list(score.margin_point_lps),
            "crossings": [c.to_json() for c in score.crossings],
            "cut_surface_vertices": len(score.surface.vertices_lps)}


def specimen_meshes(prepared: PreparedResection, score: ResectionScore) -> list[DisplayMesh]:
    """Surfaces (LPS mm) of the specimen and the remnant, from their voxel masks."""
    from surgiplan.processing.surfaces import layer_surfaces

    specimen, remnant = prepared.masks(score)
    labels = specimen.astype(np.uint8) + 2 * remnant.astype(np.uint8)
    meshes = layer_surfaces(labels, prepared.geometry, {"specimen": 1, "remnant": 2})
    return [DisplayMesh(name, m.vertices_lps, m.faces, color, 0.5)
            for (name, m), color in zip(meshes.items(), (SPECIMEN_COLOR, REMNANT_COLOR),
                                        strict=True) if not m.is_empty()]
