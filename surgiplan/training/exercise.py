"""The exercise file format (``*.exercise.json``): a case, a task, a reference placement and a
scoring rubric. Pydantic models, schema-versioned JSON, LPS mm; documented for authors in
``surgiplan/training/exercises/README.md``.

A placement is two points, whatever the kind: ``entry_lps`` and ``target_lps`` are the entry and
the target of a trajectory, the screw head and tip of an implant, the point on the shaft and the
tip of an ablation probe. The exercise's :class:`Tool` supplies the rest (diameter, screw size,
ablation device and settings), so the resident's plan and the reference differ only in where
they are placed.

Rubric: each criterion gives full credit at ``pass_at`` (or better) and none at ``fail_at`` (or
worse), linear in between; the direction follows from the two numbers (``pass_at > fail_at``:
higher is better). The score is the weighted mean credit, 0-100.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surgiplan.errors import BadInputError
from surgiplan.io.versioned import document_version, read_json_file, upgrade, validated
from surgiplan.simulation.inputs import PointLPS
from surgiplan.simulation.spec import Kind

FORMAT: Final = "surgiplan.exercise"
SCHEMA_VERSION: Final = 1
SUFFIX = ".exercise.json"
EXERCISES_DIR = Path(str(files("surgiplan.training") / "exercises"))  # package data

ReferenceMeasure = Literal["entry_distance_mm", "target_distance_mm", "axis_angle_deg",
                           "zone_overlap_pct"]
MEASURE_UNITS = {"entry_distance_mm": "mm", "target_distance_mm": "mm", "axis_angle_deg": "deg",
                 "zone_overlap_pct": "%"}


class CaseRef(BaseModel):
    """Which case: a generated phantom (name and seed) and/or a bundle path (relative to the
    exercise file). The bundle is used when it exists; otherwise the phantom is generated."""

    model_config = ConfigDict(extra="forbid")
    phantom: Literal["head", "spine", "liver"] | None = None
    seed: int = 0
    bundle: str | None = None

    @model_validator(mode="after")
    def _something(self) -> CaseRef:
        if self.phantom is None and not self.bundle:
            raise ValueError("the case needs a phantom name or a bundle path")
        return self


class Tool(BaseModel):
    """What is placed: simulator and its parameters, and the kind-specific tool settings."""

    model_config = ConfigDict(extra="forbid")
    simulator_id: str = ""  # default: the kind's name
    parameters: dict[str, Any] = Field(default_factory=dict)
    diameter_mm: float | None = Field(default=None, gt=0, le=20)  # trajectory tool, screw
    length_mm: float | None = Field(default=None, gt=0, le=200)  # screw length
    device_id: str | None = None  # ablation device table
    settings: dict[str, float] = Field(default_factory=dict)  # ablation power, time...
    target_structure: str | None = None  # ablation: the tumour


class Placement(BaseModel):
    """Two points, LPS mm (see the module docstring for their meaning per kind)."""

    model_config = ConfigDict(extra="forbid")
    entry_lps: PointLPS
    target_lps: PointLPS


class Reference(Placement):
    """The reference placement (hidden from the resident) and where it came from."""

    name: str = "reference"
    source: str = ""


class MetricCriterion(BaseModel):
    """A simulator metric (``key``, optional ``structure``) judged against pass/fail values."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1)
    structure: str | None = None
    title: str = ""
    pass_at: float
    fail_at: float
    weight: float = Field(default=1.0, gt=0)
    use: Literal["value", "worst_ci95"] = "value"  # worst_ci95: the worse end of the interval
    source: str = ""

    @model_validator(mode="after")
    def _distinct(self) -> MetricCriterion:
        if self.pass_at == self.fail_at:
            raise ValueError(f"criterion {self.key!r}: pass_at and fail_at must differ")
        return self


class ReferenceCriterion(BaseModel):
    """A difference from the reference placement judged against pass/fail values."""

    model_config = ConfigDict(extra="forbid")
    measure: ReferenceMeasure
    pass_at: float
    fail_at: float
    weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _distinct(self) -> ReferenceCriterion:
        if self.pass_at == self.fail_at:
            raise ValueError(f"criterion {self.measure!r}: pass_at and fail_at must differ")
        return self


class TimeCriterion(BaseModel):
    """Full credit within ``limit_s``; none at ``zero_at_s`` (default twice the limit)."""

    model_config = ConfigDict(extra="forbid")
    limit_s: float = Field(gt=0)
    zero_at_s: float | None = None
    weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _after_limit(self) -> TimeCriterion:
        if self.zero_at_s is not None and self.zero_at_s <= self.limit_s:
            raise ValueError("zero_at_s must be later than limit_s")
        return self

    @property
    def zero_s(self) -> float:
        return self.zero_at_s if self.zero_at_s is not None else 2.0 * self.limit_s


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[MetricCriterion] = Field(default_factory=list)
    reference: list[ReferenceCriterion] = Field(default_factory=list)
    time: TimeCriterion | None = None
    pass_score: float = Field(default=70.0, ge=0, le=100)

    @model_validator(mode="after")
    def _not_empty(self) -> Rubric:
        if not (self.metrics or self.reference or self.time):
            raise ValueError("the rubric needs at least one criterion")
        return self


class Uncertainty(BaseModel):
    """The Monte Carlo settings used to score (kept small so scoring is quick)."""

    model_config = ConfigDict(extra="forbid")
    samples: int = Field(default=200, ge=0, le=100_000)
    seed: int = 20240605
    entry_sd_mm: float | None = Field(default=None, ge=0, le=50)  # None: simulator default
    target_sd_mm: float | None = Field(default=None, ge=0, le=50)


class Exercise(BaseModel):
    """One exercise (the current, version 1, form of an ``.exercise.json`` file)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["surgiplan.exercise"] = FORMAT
    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = Field(min_length=1)
    task: str = Field(min_length=1)
    kind: Kind
    case: CaseRef
    target_structure: str = Field(min_length=1)
    target_hint_lps: PointLPS | None = None  # shown to the resident ("to this target")
    tool: Tool = Field(default_factory=Tool)
    reference: Reference
    rubric: Rubric
    uncertainty: Uncertainty = Field(default_factory=Uncertainty)
    author: str = ""

    @model_validator(mode="after")
    def _kind_needs(self) -> Exercise:
        if self.kind is Kind.RESECTION:
            raise ValueError("resection exercises are not supported yet (two-point placements "
                             "only: trajectory, implant, ablation)")
        if self.kind is Kind.ABLATION and not self.tool.device_id:
            raise ValueError("an ablation exercise needs tool.device_id")
        if self.kind is Kind.IMPLANT and not (self.tool.diameter_mm and self.tool.length_mm):
            raise ValueError("an implant exercise needs tool.diameter_mm and tool.length_mm")
        if self.kind is not Kind.ABLATION and any(
                c.measure == "zone_overlap_pct" for c in self.rubric.reference):
            raise ValueError("zone_overlap_pct applies to ablation exercises only")
        return self

    @property
    def simulator_id(self) -> str:
        return self.tool.simulator_id or str(self.kind)


# ---------------------------------------------------------------------------- reading, writing
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # v -> v+1


def _upgrade(raw: Any, path: Path) -> dict[str, Any]:
    version = document_version(raw, fmt=FORMAT, document="the file", what="exercise",
                               path=path, action="see surgiplan/training/exercises/README.md")
    return upgrade(raw, version, current=SCHEMA_VERSION, migrations=MIGRATIONS, path=path,
                   subject="this exercise was", what="exercise")


def exercise_from_json(raw: Any, *, path: str | Path = "<exercise>") -> Exercise:
    """An exercise from its parsed JSON (any supported version); one-line BadInputError."""
    path = Path(path)
    return validated(Exercise, _upgrade(raw, path), what="the exercise", path=path,
                     action="fix the file (format: surgiplan/training/exercises/README.md)")


def load_exercise(path: str | Path) -> Exercise:
    """Read an ``.exercise.json`` file."""
    raw = read_json_file(path, what="exercise",
                         action="fix the file (format: surgiplan/training/exercises/README.md)")
    return exercise_from_json(raw, path=path)


def save_exercise(exercise: Exercise, path: str | Path) -> Path:
    """Write ``exercise`` as indented JSON."""
    from surgiplan.io.atomic import write_bytes_atomic

    path = Path(path)
    text = json.dumps(exercise.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def list_exercises(folder: str | Path | None = None) -> list[tuple[Path, Exercise]]:
    """The exercises in ``folder`` (default: the shipped ones), sorted by file name."""
    folder = Path(folder) if folder is not None else EXERCISES_DIR
    if not folder.is_dir():
        raise BadInputError("no such exercise folder", path=folder, action="check the path")
    return [(p, load_exercise(p)) for p in sorted(folder.glob(f"*{SUFFIX}"))]


def find_exercise(name: str | Path, folder: str | Path | None = None) -> tuple[Path, Exercise]:
    """An exercise by file path or by id among the shipped (or ``folder``'s) exercises."""
    path = Path(name)
    if path.suffix == ".json" or path.is_file():
        return path, load_exercise(path)
    found = list_exercises(folder)
    for p, ex in found:
        if ex.id == str(name):
            return p, ex
    ids = ", ".join(ex.id for _, ex in found) or "none"
    raise BadInputError(f"no exercise with id {name!r} (exercises: {ids})",
                        action="run `surgiplan training list`")
