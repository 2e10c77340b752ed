"""Score a resident's placement against an exercise's rubric and reference.

Three parts, each criterion giving a credit 0..1 (see :mod:`surgiplan.training.exercise`):

* **safety and task metrics** from the simulator run with the exercise's uncertainty model
  (value, or the worse end of its 95 % interval), e.g. clearance to arteries, breach in mm,
  tumour coverage, minimal ablative margin;
* **difference from the reference**: entry and target distances (mm), axis angle (degrees)
  and, for ablations, the overlap of the two zones (Dice coefficient, %);
* **time taken** against the time limit.

The score is the weighted mean credit x 100. Every criterion yields a feedback item, and every
critical structure the plan breaches or comes within its margin of yields one more; each item
carries an LPS location (mm) so the app can mark it on the anatomy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation.context import SimulationContext
from surgiplan.simulation.result import Level, Metric, SimulationResult
from surgiplan.simulation.uncertainty import UncertaintyModel
from surgiplan.training.attempt import intervention
from surgiplan.training.exercise import (
    MEASURE_UNITS,
    Exercise,
    MetricCriterion,
    Placement,
    ReferenceCriterion,
    TimeCriterion,
)

GOOD, WARNING, PROBLEM, INFO = "good", "warning", "problem", "info"
ZONE_VOXEL_MM = 0.5
MEASURE_TITLES = {"entry_distance_mm": "Entry distance from the reference",
                  "target_distance_mm": "Target distance from the reference",
                  "axis_angle_deg": "Axis angle to the reference",
                  "zone_overlap_pct": "Zone overlap with the reference (Dice)"}


@dataclass(frozen=True)
class Feedback:
    """One remark on the attempt, tied to an LPS point (mm) when it has a place."""

    severity: str  # good / warning / problem / info
    text: str
    location_lps: tuple[float, float, float] | None = None
    criterion: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "text": self.text, "criterion": self.criterion,
                "location_lps": None if self.location_lps is None else list(self.location_lps)}


@dataclass(frozen=True)
class CriterionScore:
    """One rubric line: the measured value (and 95 % interval), its credit 0..1 and weight."""

    id: str
    title: str
    value: float | None
    unit: str
    pass_at: float
    fail_at: float
    weight: float
    credit: float
    ci95: tuple[float, float] | None = None
    source: str = ""
    group: str = "safety"  # safety / reference / time

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "group": self.group, "unit": self.unit,
                "value": _finite(self.value),
                "ci95": None if self.ci95 is None else [_finite(v) for v in self.ci95],
                "pass_at": self.pass_at, "fail_at": self.fail_at, "weight": self.weight,
                "credit": self.credit, "source": self.source}


@dataclass
class TrainingScore:
    """The outcome of one attempt."""

    exercise_id: str
    score: float  # 0..100
    passed: bool
    criteria: list[CriterionScore]
    feedback: list[Feedback]
    placement: Placement
    reference: Placement
    time_taken_s: float | None
    result: SimulationResult
    reference_result: SimulationResult | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"exercise_id": self.exercise_id, "score": round(self.score, 1),
                "passed": self.passed, "time_taken_s": self.time_taken_s,
                "placement": self.placement.model_dump(mode="json"),
                "reference": self.reference.model_dump(mode="json"),
                "criteria": [c.to_json() for c in self.criteria],
                "feedback": [f.to_json() for f in self.feedback],
                "result": self.result.to_json(), "warnings": list(self.warnings)}


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def credit(value: float | None, pass_at: float, fail_at: float) -> float:
    """1 at ``pass_at`` or better, 0 at ``fail_at`` or worse, linear between (None/NaN: 0)."""
    if value is None or not math.isfinite(value):
        return 0.0
    return float(np.clip((value - fail_at) / (pass_at - fail_at), 0.0, 1.0))


def _tuple(point: Any) -> tuple[float, float, float]:
    """An LPS point (mm) as a float triple."""
    return float(point[0]), float(point[1]), float(point[2])


# ---------------------------------------------------------------------------- running
def _uncertainty(exercise: Exercise) -> UncertaintyModel:
    u = exercise.uncertainty
    fields: dict[str, Any] = {"samples": u.samples, "seed": u.seed}
    if u.entry_sd_mm is not None:
        fields["entry_sd_mm"] = u.entry_sd_mm
    if u.target_sd_mm is not None:
        fields["target_sd_mm"] = u.target_sd_mm
    return UncertaintyModel(**fields)


def run_placement(context: SimulationContext, exercise: Exercise, placement: Placement, *,
                  progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> SimulationResult:
    """Run the exercise's simulator on ``placement`` with the exercise's uncertainty model."""
    from surgiplan.simulation import load_simulator, run_simulation

    item = intervention(exercise, placement)
    return run_simulation(load_simulator(item.simulator_id), context, item.input_model(),
                          parameters=item.parameters, uncertainty=_uncertainty(exercise),
                          progress=progress, cancel=cancel)


# ---------------------------------------------------------------------------- criteria
def _matching(result: SimulationResult, c: MetricCriterion) -> list[Metric]:
    found = [m for m in result.metrics
             if m.key == c.key and (c.structure is None or m.structure == c.structure)]
    finite = [m for m in found if math.isfinite(m.value)]
    return finite or found  # a structure the tool never approaches reports no distance


def _judged_value(m: Metric, c: MetricCriterion) -> float:
    if c.use == "value" or m.ci95 is None:
        return m.value
    higher_better = c.pass_at > c.fail_at
    return min(m.ci95) if higher_better else max(m.ci95)


SAFETY_KEYS = ("clearance_mm", "breach_probability", "risk", "breach_mm", "gertzbein_grade")


def _metric_location(result: SimulationResult, m: Metric,
                     placement: Placement) -> tuple[float, float, float]:
    """Where a metric shows on the anatomy: the closest point of its structure (or of any
    critical structure for overall safety metrics), the entry for entry metrics, else the
    target."""
    if m.structure is not None or m.key in SAFETY_KEYS:
        levels = [lv for lv in result.levels if lv.closest_point_lps is not None
                  and math.isfinite(lv.min_distance_mm)
                  and (m.structure is None or lv.structure == m.structure)]
        if levels:
            return _tuple(min(levels, key=lambda lv: lv.min_distance_mm).closest_point_lps)
    if "entry" in m.key:
        return _tuple(placement.entry_lps)
    return _tuple(placement.target_lps)


def _fmt(value: float | None, unit: str) -> str:
    """A value for feedback text: 1 decimal with a unit, 2 significant digits without."""
    if value is None or not math.isfinite(value):
        return "not available"
    text = f"{value:.1f}" if unit else f"{value:.2g}"
    if float(text) == 0:
        text = text.lstrip("-")
    return f"{text} {unit}" if unit else text


def score_metric(result: SimulationResult, c: MetricCriterion, placement: Placement,
                 ) -> tuple[CriterionScore, Feedback]:
    """Judge one metric criterion (the worst of several matching metrics counts)."""
    found = _matching(result, c)
    cid = c.key + (f"@{c.structure}" if c.structure else "")
    if not found:
        title = c.title or c.key
        score = CriterionScore(cid, title, None, "", c.pass_at, c.fail_at, c.weight, 0.0,
                               source=c.source)
        return score, Feedback(INFO, f"{title}: not reported by the simulator (no credit).",
                               _tuple(placement.target_lps), cid)
    m = min(found, key=lambda x: credit(_judged_value(x, c), c.pass_at, c.fail_at))
    value = _judged_value(m, c)
    got = credit(value, c.pass_at, c.fail_at)
    title = c.title or m.title
    score = CriterionScore(cid, title, m.value, m.unit, c.pass_at, c.fail_at, c.weight, got,
                           m.ci95, c.source)
    interval = ("" if m.ci95 is None else
                f" (95 % {_fmt(m.ci95[0], '')} to {_fmt(m.ci95[1], m.unit)})")
    goal = f"full credit at {_fmt(c.pass_at, m.unit)}, none at {_fmt(c.fail_at, m.unit)}"
    severity = GOOD if got >= 1.0 else PROBLEM if got <= 0.0 else WARNING
    text = f"{title}: {_fmt(m.value, m.unit)}{interval}; {goal}."
    return score, Feedback(severity, text, _metric_location(result, m, placement), cid)


def axis_angle_deg(a: Placement, b: Placement) -> float:
    """Angle (degrees) between the entry->target axes of two placements."""
    u = np.subtract(a.target_lps, a.entry_lps)
    v = np.subtract(b.target_lps, b.entry_lps)
    cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _zone_meshes(result: SimulationResult | None) -> list[Any]:
    if result is None:
        return []
    return [m for m in result.geometry.meshes if m.label.startswith("ablation zone")]


def zone_overlap_pct(meshes_a: list[Any], meshes_b: list[Any], *,
                     voxel_mm: float = ZONE_VOXEL_MM) -> float:
    """Dice coefficient (%) of the union of closed meshes ``a`` and of ``b`` (LPS mm),
    voxelised on a common grid of ``voxel_mm``."""
    if not meshes_a or not meshes_b:
        return float("nan")
    points = np.concatenate([m.vertices_lps for m in [*meshes_a, *meshes_b]])
    lo, hi = points.min(axis=0) - voxel_mm, points.max(axis=0) + voxel_mm
    dims = np.ceil((hi - lo) / voxel_mm).astype(int) + 1
    a = np.any([_voxelise(m, lo, dims, voxel_mm) for m in meshes_a], axis=0)
    b = np.any([_voxelise(m, lo, dims, voxel_mm) for m in meshes_b], axis=0)
    total = int(a.sum()) + int(b.sum())
    return float("nan") if total == 0 else 200.0 * int((a & b).sum()) / total


def _voxelise(mesh: Any, origin: np.ndarray, dims: np.ndarray, voxel_mm: float) -> np.ndarray:
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
    from vtkmodules.vtkImagingStencil import vtkImageStencilToImage, vtkPolyDataToImageStencil

    poly = vtkPolyData()
    pts = vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(mesh.vertices_lps, float), deep=True))
    faces = np.asarray(mesh.faces, np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(np.arange(0, 3 * len(faces) + 1, 3), deep=True),
                  numpy_to_vtkIdTypeArray(faces.ravel(), deep=True))
    poly.SetPoints(pts)
    poly.SetPolys(cells)
    stencil = vtkPolyDataToImageStencil()
    stencil.SetInputData(poly)
    stencil.SetOutputOrigin(*origin)
    stencil.SetOutputSpacing(voxel_mm, voxel_mm, voxel_mm)
    stencil.SetOutputWholeExtent(0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1)
    to_image = vtkImageStencilToImage()
    to_image.SetInputConnection(stencil.GetOutputPort())
    to_image.SetInsideValue(1)
    to_image.SetOutsideValue(0)
    to_image.SetOutputScalarType(3)  # VTK_UNSIGNED_CHAR
    to_image.Update()
    image: vtkImageData = to_image.GetOutput()
    return vtk_to_numpy(image.GetPointData().GetScalars()).astype(bool)


def reference_measure(c: ReferenceCriterion, placement: Placement, reference: Placement,
                      result: SimulationResult, reference_result: SimulationResult | None,
                      ) -> tuple[float, tuple[float, float, float]]:
    """The value of a reference measure and where to show it (LPS mm)."""
    if c.measure == "entry_distance_mm":
        return (float(np.linalg.norm(np.subtract(placement.entry_lps, reference.entry_lps))),
                _tuple(placement.entry_lps))
    if c.measure == "target_distance_mm":
        return (float(np.linalg.norm(np.subtract(placement.target_lps, reference.target_lps))),
                _tuple(placement.target_lps))
    if c.measure == "axis_angle_deg":
        return axis_angle_deg(placement, reference), _tuple(placement.entry_lps)
    return (zone_overlap_pct(_zone_meshes(result), _zone_meshes(reference_result)),
            _tuple(placement.target_lps))


def score_reference(c: ReferenceCriterion, value: float, where: tuple[float, float, float],
                    ) -> tuple[CriterionScore, Feedback]:
    unit = MEASURE_UNITS[c.measure]
    title = MEASURE_TITLES[c.measure]
    got = credit(value, c.pass_at, c.fail_at)
    score = CriterionScore(c.measure, title, value, unit, c.pass_at, c.fail_at, c.weight, got,
                           group="reference")
    severity = GOOD if got >= 1.0 else PROBLEM if got <= 0.0 else WARNING
    text = (f"{title}: {_fmt(value, unit)}; full credit at {_fmt(c.pass_at, unit)}, none at "
            f"{_fmt(c.fail_at, unit)}.")
    return score, Feedback(severity, text, where, c.measure)


def score_time(c: TimeCriterion, time_taken_s: float | None) -> tuple[CriterionScore | None,
                                                                       Feedback]:
    if time_taken_s is None:
        return None, Feedback(INFO, "Time taken was not recorded (not scored).", None, "time")
    got = credit(time_taken_s, c.limit_s, c.zero_s)
    score = CriterionScore("time_taken_s", "Time taken", time_taken_s, "s", c.limit_s,
                           c.zero_s, c.weight, got, group="time")
    text = (f"Time taken {time_taken_s / 60:.1f} min (limit {c.limit_s / 60:.1f} min)"
            + ("." if got >= 1.0 else f"; over the limit, {100 * got:.0f} % credit."))
    return score, Feedback(GOOD if got >= 1.0 else WARNING, text, None, "time")


def _level_feedback(result: SimulationResult) -> list[Feedback]:
    out = []
    for lv in result.levels:
        if lv.level is Level.SAFE or lv.closest_point_lps is None:
            continue
        verb = ("enters" if lv.level is Level.BREACH
                else f"comes within its {lv.margin_mm:g} mm margin of")
        p = ("" if lv.breach_probability is None
             else f", breach probability {100 * lv.breach_probability:.0f} %")
        out.append(Feedback(PROBLEM if lv.level is Level.BREACH else WARNING,
                            f"The plan {verb} {lv.structure} (closest "
                            f"{_fmt(lv.min_distance_mm, 'mm')}{p}).",
                            _tuple(lv.closest_point_lps), f"level@{lv.structure}"))
    return out


# ---------------------------------------------------------------------------- the score
def score_attempt(context: SimulationContext, exercise: Exercise, placement: Placement, *,
                  time_taken_s: float | None = None,
                  reference_result: SimulationResult | None = None,
                  progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> TrainingScore:
    """Run the resident's placement and judge it (see the module docstring)."""
    report(progress, 0.0, "scoring the plan")
    result = run_placement(context, exercise, placement, cancel=cancel, progress=None if
                           progress is None else lambda f, t: report(progress, 0.6 * f, t))
    check(cancel)
    rubric, reference = exercise.rubric, exercise.reference
    needs_zone = any(c.measure == "zone_overlap_pct" for c in rubric.reference)
    if needs_zone and reference_result is None:
        report(progress, 0.6, "running the reference")
        reference_result = run_placement(context, exercise, reference, cancel=cancel)
    criteria: list[CriterionScore] = []
    feedback: list[Feedback] = []
    if not result.ok:
        feedback.append(Feedback(PROBLEM, f"The simulation failed: {result.error}",
                                 _tuple(placement.target_lps), "simulation"))
    for metric in rubric.metrics:
        s, f = score_metric(result, metric, placement)
        criteria.append(s)
        feedback.append(f)
    feedback += _level_feedback(result)
    for ref in rubric.reference:
        value, where = reference_measure(ref, placement, reference, result, reference_result)
        s, f = score_reference(ref, value, where)
        criteria.append(s)
        feedback.append(f)
    if rubric.time is not None:
        timed, f = score_time(rubric.time, time_taken_s)
        if timed is not None:
            criteria.append(timed)
        feedback.append(f)
    weights = sum(c.weight for c in criteria)
    total = 0.0 if not result.ok or weights == 0 else \
        100.0 * sum(c.weight * c.credit for c in criteria) / weights
    report(progress, 1.0, f"score {total:.0f}")
    return TrainingScore(exercise.id, total, total >= rubric.pass_score, criteria, feedback,
                         placement, Placement(entry_lps=reference.entry_lps,
                                              target_lps=reference.target_lps),
                         time_taken_s, result, reference_result, list(result.warnings))
