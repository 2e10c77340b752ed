"""The implant simulator: a placed implant (pedicle screw or any mesh) scored against the twin.

Metrics (fixed keys; see scoring.py for the definitions): ``breach_mm``,
``breach_<direction>_mm`` (medial, lateral, superior, inferior, anterior, posterior),
``gertzbein_grade`` (0..4 for A..E; the letter is in ``details``), ``p_grade_c_or_worse``,
``min_distance_mm`` and ``breach_probability`` per critical structure,
``cortical_share_pct`` / ``cancellous_share_pct`` / ``soft_tissue_share_pct``,
``implant_clearance_mm`` per other implant, ``collisions`` and ``bone_share_pct`` (an implant
with no part of its shank axis in bone is "not in a vertebra": a breach concern, breach and
grade not assessable). Intervals and the error model: montecarlo.py; concerns: results.py.

The nominal values come from the exact mesh check when ``exact_check`` is on (the release
check), else from the distance grids (the live drag score, ``details["method"]``). The 95 %
intervals come from Monte Carlo over placement error (head: ``entry_sd_mm``, tip:
``target_sd_mm``; default :data:`PEDICLE_SCREW_PROFILE`) and the twin's systematic
bone/structure boundary error (segmentation + discretisation), scored on the grids.

For the drag loop, :meth:`ImplantSimulator.live_scorer` returns a scorer whose ``score(pose)``
takes well under 5 ms (bench/bench_implant.py).

Capabilities (optional public methods a host panel may call on the simulator object it got
from discovery, instead of importing this package's modules): ``pose_from_axis(head_lps,
tip_lps)`` -> 4x4 pose, ``screw_family(name=None)`` and ``screw_mesh(diameter_mm, length_mm,
family=None)`` (library screw mesh in the implant frame, mm), ``suggest``, ``suggest_input``,
``screw_input``, ``file_input`` and ``live_scorer``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import (
    DisplayGeometry,
    DisplayLine,
    DisplayMesh,
    DisplayPoint,
    ImplantInput,
    Kind,
    Metric,
    Output,
    Parameter,
    SimulationContext,
    SimulationResult,
    SimulatorSpec,
    Status,
    UncertaintyModel,
)
from surgiplan_implant import __version__
from surgiplan_implant.montecarlo import (
    PEDICLE_SCREW_PROFILE,
    MonteCarlo,
    clearance_draws,
    other_poses,
    run_monte_carlo,
)
from surgiplan_implant.pose import apply_pose
from surgiplan_implant.results import (
    Verdict,
    bone_metrics,
    collision_metrics,
    critical_metrics,
    hu_metrics,
    interval_details,
    probability_concerns,
    verdict,
)
from surgiplan_implant.scoring import (
    DIRECTIONS,
    GERTZBEIN_1990,
    ImplantScore,
    LiveScorer,
    ProbePoints,
    SceneMaps,
    exact_score,
)

MC_COLLISION_DRAWS = 200  # placement draws for the clearance to other implants
GRADE_COLORS = {"A": (0.2, 0.8, 0.3), "B": (0.95, 0.85, 0.2), "C": (1.0, 0.55, 0.1),
                "D": (0.9, 0.15, 0.15), "E": (0.9, 0.15, 0.15)}

SPEC = SimulatorSpec(
    id="implant",
    title="Implant placement (pedicle screws, any STL/OBJ/PLY implant)",
    version=__version__,
    kind=Kind.IMPLANT,
    required_roles=(Role.BONE,),
    capabilities=("live", "handles", "inputs", "suggest"),
    parameters=(
        Parameter(key="scored_part", title="Part scored against bone", type="choice",
                  default="shank", choices=("shank", "whole"),
                  description="shank: implant-frame z >= 0 (pedicle screw: the head sits at "
                              "z < 0 on the bone); whole: every point"),
        Parameter(key="breach_tolerance_mm", title="Breach tolerance", unit="mm", default=0.3,
                  minimum=0.0, maximum=2.0,
                  description="points less than this outside bone count as inside (the "
                              "distance grid's sub-voxel error)"),
        Parameter(key="default_margin_mm", title="Safety margin for structures without one",
                  unit="mm", default=2.0, minimum=0.0, maximum=30.0),
        Parameter(key="exact_check", title="Exact mesh check (on release)", type="bool",
                  default=True),
    ),
    outputs=(
        Output(key="breach_mm", title="Largest breach outside bone", unit="mm"),
        *(Output(key=f"breach_{d}_mm", title=f"{d.capitalize()} breach", unit="mm")
          for d in DIRECTIONS),
        Output(key="gertzbein_grade", title="Gertzbein-Robbins grade (0=A, 1=B, 2=C, 3=D, 4=E)",
               description=GERTZBEIN_1990),
        Output(key="p_grade_c_or_worse", title="Probability of grade C or worse (>= 2 mm)"),
        Output(key="min_distance_mm", title="Minimum distance", unit="mm", per_structure=True),
        Output(key="breach_probability", title="Probability of breach", per_structure=True),
        Output(key="cortical_share_pct", title="Share in cortical bone (>= 250 HU)", unit="%"),
        Output(key="cancellous_share_pct", title="Share in cancellous bone (130-250 HU)",
               unit="%"),
        Output(key="soft_tissue_share_pct", title="Share in soft tissue (< 130 HU)", unit="%"),
        Output(key="implant_clearance_mm", title="Clearance to another implant", unit="mm",
               per_structure=True),
        Output(key="collisions", title="Implants it collides with"),
        Output(key="bone_share_pct", title="Share of the shank axis in bone", unit="%"),
    ),
    description="Cortical breach per direction and Gertzbein-Robbins grade, distances to "
                "critical structures, HU-band shares and implant collisions, with Monte Carlo "
                "95 % intervals; live re-scoring; auto-suggest along the pedicle axis.",
)

_MAPS: weakref.WeakKeyDictionary[SimulationContext, SceneMaps] = weakref.WeakKeyDictionary()


def scene_maps(context: SimulationContext) -> SceneMaps:
    """The context's prepared distance grids (built once per context; a few seconds)."""
    maps = _MAPS.get(context)
    if maps is None:
        maps = _MAPS[context] = SceneMaps(context)
    return maps


def implant_input(implant_id: str, vertices_mm: np.ndarray, faces: np.ndarray,
                  pose: np.ndarray) -> ImplantInput:
    """An :class:`ImplantInput` from arrays (implant frame mm, 4x4 pose to LPS)."""
    return ImplantInput(implant_id=implant_id,
                        vertices_mm=tuple(map(tuple, np.asarray(vertices_mm, float).tolist())),
                        faces=tuple(map(tuple, np.asarray(faces, int).tolist())),
                        pose=tuple(map(tuple, np.asarray(pose, float).tolist())))


def _arrays(inputs: ImplantInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(inputs.vertices_mm, float), np.asarray(inputs.faces, np.int64),
            np.asarray(inputs.pose, float))


class ImplantSimulator:
    """The implant plug-in (entry point ``implant``)."""

    spec = SPEC
    error_profile = PEDICLE_SCREW_PROFILE

    def live_scorer(self, context: SimulationContext, inputs: ImplantInput,
                    parameters: dict[str, Any] | None = None) -> LiveScorer:
        """A scorer for the drag loop: ``scorer.score(pose_4x4)`` -> ImplantScore (grid)."""
        from surgiplan.simulation import validate_parameters

        params = validate_parameters(SPEC, parameters)
        vertices, faces, _ = _arrays(inputs)
        probes = ProbePoints.from_mesh(vertices, faces, scored_part=params["scored_part"])
        return LiveScorer(scene_maps(context), probes,
                          tolerance_mm=float(params["breach_tolerance_mm"]))

    def suggest(self, context: SimulationContext, vertebra: str, side: str, *,
                point_lps: Any = None):
        """Auto-suggested screw for a vertebra and side (see vertebra.py)."""
        from surgiplan_implant.vertebra import suggest_screw

        return suggest_screw(context, vertebra, side, point_lps=point_lps)

    # ------------------------------------------------------------------ capabilities
    @staticmethod
    def pose_from_axis(head_lps: Any, tip_lps: Any) -> np.ndarray:
        """4x4 pose (implant frame -> LPS mm): origin at ``head_lps``, +z towards ``tip_lps``."""
        from surgiplan_implant.pose import pose_from_axis

        return pose_from_axis(head_lps, tip_lps)

    @staticmethod
    def screw_family(name: str | None = None) -> Any:
        """The library screw family ``name`` (the first one when None)."""
        from surgiplan_implant.library import screw_family

        return screw_family(name)

    @staticmethod
    def screw_mesh(diameter_mm: float, length_mm: float,
                   family: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Closed library screw mesh in the implant frame (head at 0, tip on +z; mm):
        (vertices (N, 3), faces (M, 3))."""
        from surgiplan_implant.library import screw_mesh

        return screw_mesh(diameter_mm, length_mm, family)

    # ------------------------------------------------------------------ building inputs
    def screw_input(self, size: str | tuple[float, float], entry_lps: Any, target_lps: Any,
                    ) -> ImplantInput:
        """A library screw (``"DIAMETERxLENGTH"`` mm, or a tuple) with its head at
        ``entry_lps`` and its tip towards ``target_lps``."""
        from surgiplan_implant.library import parse_screw_size, screw_family, screw_mesh
        from surgiplan_implant.pose import pose_from_axis

        family = screw_family()
        diameter, length = parse_screw_size(size) if isinstance(size, str) else size
        vertices, faces = screw_mesh(diameter, length, family)
        return implant_input(family.screw_id(diameter, length), vertices, faces,
                             pose_from_axis(entry_lps, target_lps))

    def file_input(self, path: Any, pose: Any, *, units: str | None = None,
                   ) -> tuple[ImplantInput, list[str]]:
        """An STL/OBJ/PLY implant placed by a 4x4 pose (16 numbers, row-major), and the
        import warnings (the units guess to confirm)."""
        from surgiplan_implant.mesh_import import import_implant
        from surgiplan_implant.pose import parse_pose

        implant = import_implant(path, units=units)
        inputs = implant_input(implant.implant_id, implant.vertices_mm, implant.faces,
                               parse_pose(pose))
        return inputs, list(implant.warnings)

    def suggest_input(self, context: SimulationContext, vertebra: str, side: str, *,
                      point_lps: Any = None) -> tuple[ImplantInput, dict[str, Any]]:
        """The auto-suggested screw as an input, with the suggestion's JSON."""
        suggestion = self.suggest(context, vertebra, side, point_lps=point_lps)
        inputs = self.screw_input((suggestion.diameter_mm, suggestion.length_mm),
                                  suggestion.entry_lps, suggestion.tip_lps)
        return inputs, suggestion.to_json()

    def run(
        self,
        context: SimulationContext,
        inputs: ImplantInput,
        parameters: dict[str, Any],
        *,
        uncertainty: UncertaintyModel,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> SimulationResult:
        if not context.by_role(Role.BONE):
            raise BadInputError("the case has no bone structure to score the implant against",
                                action="segment the bone (role bone) first")
        uncertainty = uncertainty.resolved(self.error_profile)
        report(progress, 0.05, "preparing distance maps")
        live = self.live_scorer(context, inputs, parameters)
        vertices, faces, pose = _arrays(inputs)
        check(cancel)
        grid = live.score(pose)
        nominal = grid
        if parameters["exact_check"] and np.isfinite(grid.bone_share_pct):
            report(progress, 0.3, "exact mesh check")
            nominal = exact_score(context, live, pose, faces)
        check(cancel)
        mc = None
        if uncertainty.samples > 0:
            mc = run_monte_carlo(live, pose, uncertainty, progress, cancel)
        vertebra = live.vertebra(pose)
        judged = verdict(nominal, vertebra)
        metrics = bone_metrics(nominal, mc, judged.assessable)
        metrics += hu_metrics(live, nominal, mc)
        crit, levels = critical_metrics(live, nominal, mc, parameters["default_margin_mm"])
        metrics += crit
        metrics += _collisions(inputs, vertices, faces, pose, mc, uncertainty)
        concerns = judged.concerns + probability_concerns(metrics)
        warnings = _warnings(context, live, nominal, vertices, pose, judged, mc)
        report(progress, 1.0, "implant scored")
        spacing = context.geometry.spacing_mm
        letter = nominal.grade if nominal.grade and not judged.assessable else "not assessable"
        return SimulationResult(
            status=Status.OK, metrics=metrics, levels=levels, concerns=concerns,
            geometry=_display(inputs, vertices, faces, pose, nominal), warnings=warnings,
            details=_json_safe({"gertzbein_grade": letter, "grade_letter": letter,
                     "method": nominal.method,
                     "grid": {"breach_mm": grid.breach_mm, "grade": grid.grade,
                              "breach_by_direction_mm": grid.breach_by_direction_mm},
                     "implant_id": inputs.implant_id, "vertebra": vertebra,
                     "in_vertebra": judged.in_vertebra,
                     "bone_share_pct": nominal.bone_share_pct,
                     "worst_breach_lps": None if nominal.worst_breach_lps is None
                     else [float(v) for v in nominal.worst_breach_lps],
                     "grade_source": GERTZBEIN_1990, "grade_scale": GERTZBEIN_1990,
                     "error_model": self.error_profile.to_json(),
                     **interval_details(mc, uncertainty, spacing)}))


_monte_carlo = run_monte_carlo  # the name bench/bench_implant.py times


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (not assessable) as None, tuples as lists."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _collisions(inputs: ImplantInput, vertices: np.ndarray, faces: np.ndarray,
                pose: np.ndarray, mc: MonteCarlo | None,
                model: UncertaintyModel) -> list[Metric]:
    """Clearance (mm, negative = overlap) to each other implant, and the number it hits;
    intervals over both implants' placement errors."""
    if not inputs.other_implants:
        return []
    from surgiplan_implant.collision import mesh_clearance_mm

    mine = (apply_pose(pose, vertices), faces)
    names, nominal, draws = [], [], []
    n = 0 if mc is None else min(len(mc.poses), MC_COLLISION_DRAWS)
    for j, other in enumerate(inputs.other_implants):
        ov, of, op = _arrays(other)
        nominal.append(mesh_clearance_mm(mine, (apply_pose(op, ov), of)))
        names.append(f"{other.implant_id} #{j + 1}")
        if n:
            theirs = other_poses(op, ov, model, n, seed_offset=101 + j)
            draws.append(clearance_draws((vertices, faces), mc.poses[:n], (ov, of), theirs))
    return collision_metrics(names, nominal, np.stack(draws, axis=1) if draws else None)


def _warnings(context: SimulationContext, live: LiveScorer, score: ImplantScore,
              vertices: np.ndarray, pose: np.ndarray, judged: Verdict,
              mc: MonteCarlo | None) -> list[str]:
    warnings = []
    placed = apply_pose(pose, vertices)
    if not np.all(context.geometry.contains_lps(placed)):
        warnings.append("part of the implant lies outside the image; anatomy there is unknown")
    if mc is not None and mc.failed_share > 0:
        warnings.append(f"{100 * mc.failed_share:.1f} % of the Monte Carlo draws leave the "
                        "image grid and could not be scored")
    if not judged.in_vertebra and judged.assessable == "":
        warnings.append("the implant is not (mostly) in a vertebra: check the level and the "
                        "entry point")
    posterior = score.breach_by_direction_mm["posterior"]
    if judged.in_vertebra and posterior > 0:
        warnings.append(f"the shank stands {posterior:.1f} mm proud of the bone at its entry "
                        "(posterior): seat it deeper")
    if not live.maps.is_ct:
        warnings.append("the image is not CT: the HU-band shares are not computed")
    if not live.maps.critical:
        warnings.append("no structure has the role critical: no clearance is scored")
    return warnings


def _display(inputs: ImplantInput, vertices: np.ndarray, faces: np.ndarray, pose: np.ndarray,
             score: ImplantScore) -> DisplayGeometry:
    """The implant mesh (LPS), its axis and the worst breach point, coloured by grade."""
    z_max = max(1.0, float(vertices[:, 2].max()))
    head, tip = pose[:3, 3], apply_pose(pose, np.array([0.0, 0.0, z_max]))
    points = [DisplayPoint("head", tuple(head)), DisplayPoint("tip", tuple(tip))]
    if score.worst_breach_lps is not None:
        points.append(DisplayPoint("worst breach", tuple(score.worst_breach_lps)))
    return DisplayGeometry(
        lines=[DisplayLine("implant axis", (tuple(head), tuple(tip)))], points=points,
        meshes=[DisplayMesh(inputs.implant_id, apply_pose(pose, vertices), faces,
                            GRADE_COLORS.get(score.grade, (0.7, 0.7, 0.75)), 1.0)])
