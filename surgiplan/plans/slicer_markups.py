"""Trajectories and target points as 3D Slicer markups files (``.mrk.json``).

Export writes ``"coordinateSystem": "LPS"`` and ``"coordinateUnits": "mm"`` with LPS points, so
3D Slicer (which reads either system) places them exactly: each trajectory is a ``Line`` markup
whose first control point is the entry and second the target; target points are one
``Fiducial`` markup. Import accepts LPS or RAS files (a RAS point ``(r, a, s)`` is LPS
``(-r, -a, s)``), in mm or um, converting at this boundary; Slicer's own ``Fiducial`` lists
and ``Line`` markups are read, other markup types are skipped with a note.

The pydantic models below check the constraints of Slicer's markups schema (v1.0.3: markup
type and coordinate-system enums, 3-number positions, 9-number orientations, position status
enum, colours in 0..1) on everything written and read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from surgiplan.errors import BadInputError
from surgiplan.io.atomic import write_bytes_atomic
from surgiplan.model.frames import ras_to_lps
from surgiplan.plans.model import Plan
from surgiplan.simulation.spec import Kind

SCHEMA_URL = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
              "Resources/Schema/markups-schema-v1.0.3.json#")
MARKUP_TYPES = ("Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI")
IDENTITY_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Colour = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]],
                   Field(min_length=3, max_length=3)]


class ControlPoint(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = ""
    label: str = ""
    description: str = ""
    associatedNodeID: str = ""
    position: Vec3 | None = None
    orientation: Annotated[list[float], Field(min_length=9, max_length=9)] = \
        list(IDENTITY_ORIENTATION)
    selected: bool = True
    locked: bool = False
    visibility: bool = True
    positionStatus: Literal["undefined", "preview", "defined"] = "defined"


class Display(BaseModel):
    model_config = ConfigDict(extra="allow")

    visibility: bool = True
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)
    color: Colour = [0.4, 1.0, 1.0]
    selectedColor: Colour = [1.0, 0.5, 0.5]
    pointLabelsVisibility: bool = True


class Markup(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI"]
    name: str = ""
    coordinateSystem: Literal["LPS", "RAS"] = "LPS"
    coordinateUnits: Literal["mm", "um"] | Annotated[list[str], Field(min_length=3,
                                                                        max_length=3)] = "mm"
    locked: bool = False
    fixedNumberOfControlPoints: bool = False
    labelFormat: str = "%N-%d"
    controlPoints: list[ControlPoint] = []
    measurements: list[dict[str, Any]] = []
    display: Display | None = None


class MarkupsFile(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(alias="@schema")
    markups: list[Markup]


# ---------------------------------------------------------------------------- export
def _point(n: int, label: str, position_lps: Any, description: str = "") -> ControlPoint:
    return ControlPoint(id=str(n), label=label, description=description,
                        position=[float(v) for v in position_lps])


def _line(name: str, entry_lps: Any, target_lps: Any, colour: list[float]) -> Markup:
    return Markup(type="Line", name=name, fixedNumberOfControlPoints=True,
                  controlPoints=[_point(1, "entry", entry_lps), _point(2, "target", target_lps)],
                  display=Display(color=colour, selectedColor=colour))


def markups_for_plans(plans: list[Plan]) -> MarkupsFile:
    """One ``Line`` per trajectory (entry -> target) and a ``Fiducial`` list of target points
    (trajectory targets, ablation probe tips); names are "PLAN: INTERVENTION"; LPS mm."""
    lines, targets = [], []
    for plan in plans:
        for item in plan.interventions:
            name = f"{plan.name}: {item.label}"
            if item.kind is Kind.TRAJECTORY:
                lines.append(_line(name, item.inputs["entry_lps"], item.inputs["target_lps"],
                                   [1.0, 0.85, 0.1]))
                targets.append((name, item.inputs["target_lps"], "trajectory target"))
            elif item.kind is Kind.ABLATION:
                lines.append(_line(name, item.inputs["shaft_lps"], item.inputs["tip_lps"],
                                   [1.0, 0.4, 0.1]))
                targets.append((name, item.inputs["tip_lps"], "ablation probe tip"))
    fiducials = Markup(type="Fiducial", name="Targets", controlPoints=[
        _point(n, name, p, description) for n, (name, p, description) in enumerate(targets, 1)],
        display=Display(color=[1.0, 0.2, 0.2], selectedColor=[1.0, 0.2, 0.2]))
    markups = [*lines, fiducials] if targets else lines
    return MarkupsFile.model_validate({"@schema": SCHEMA_URL,
                                       "markups": [m.model_dump() for m in markups]})


def markups_json(markups: MarkupsFile) -> dict[str, Any]:
    return markups.model_dump(mode="json", by_alias=True)


def write_markups(plans: list[Plan], path: str | Path) -> Path:
    """Write the plans' trajectories and targets as a ``.mrk.json`` file (LPS mm), atomically."""
    path = Path(path)
    if not path.name.endswith(".mrk.json"):
        raise BadInputError("a 3D Slicer markups file name ends in .mrk.json", path=path,
                            action="add the .mrk.json suffix")
    markups = markups_for_plans(plans)
    if not markups.markups:
        raise BadInputError("the plans hold no trajectory or probe to export", path=path,
                            action="add a trajectory or an ablation probe to a plan first")
    text = json.dumps(markups_json(markups), indent=2)
    return write_bytes_atomic(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------- import
# No scanner's patient space reaches this far (a CT table is about 2 m long): larger
# coordinates are a unit mistake or a damaged file.
MAX_ABS_COORDINATE_MM = 10_000.0
class ImportedMarkups(BaseModel):
    """What a markups file held, in LPS mm: lines as (name, first, last point), points as
    (label, point), and notes on what was skipped or converted."""

    lines: list[tuple[str, tuple[float, float, float], tuple[float, float, float]]] = []
    points: list[tuple[str, tuple[float, float, float]]] = []
    notes: list[str] = []


def _to_lps(markup: Markup) -> np.ndarray:
    units = markup.coordinateUnits
    scale = 0.001 if (units if isinstance(units, str) else units[0]) == "um" else 1.0
    pts = np.array([cp.position for cp in markup.controlPoints
                    if cp.position is not None and cp.positionStatus == "defined"],
                   dtype=float).reshape(-1, 3) * scale
    if markup.coordinateSystem == "RAS":
        pts = ras_to_lps(pts)
    if not np.all(np.isfinite(pts)):
        raise ValueError("a control point is not finite")
    if pts.size and np.abs(pts).max() > MAX_ABS_COORDINATE_MM:
        worst = pts[np.argmax(np.abs(pts).max(axis=1))]
        raise ValueError(f"control point ({', '.join(f'{v:.4g}' for v in worst)}) mm is more "
                         f"than {MAX_ABS_COORDINATE_MM:g} mm from the origin, outside any "
                         "patient")
    return pts


def read_markups(path: str | Path) -> ImportedMarkups:
    """Lines and points of a 3D Slicer ``.mrk.json`` (LPS or RAS, mm or um) in LPS mm."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        markups = MarkupsFile.model_validate(raw)
    except FileNotFoundError:
        raise BadInputError("no such markups file", path=path, action="check the path") from None
    except (OSError, ValueError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else None
        what = (f"{'.'.join(str(p) for p in detail['loc'])}: {detail['msg']}" if detail
                else " ".join(str(exc).split())[:120])
        raise BadInputError(f"not a valid 3D Slicer markups file ({what})", path=path,
                            action="export it from 3D Slicer as .mrk.json") from exc
    out = ImportedMarkups()
    for n, markup in enumerate(markups.markups, start=1):
        name = markup.name or f"{markup.type} {n}"
        try:
            pts = _to_lps(markup)
        except ValueError as exc:
            raise BadInputError(f"markup {name!r}: {exc}", path=path,
                                action="fix the point in 3D Slicer and export again") from exc
        if markup.coordinateSystem == "RAS":
            out.notes.append(f"{name}: converted from RAS to LPS")
        if markup.type == "Line" and len(pts) == 2:
            out.lines.append((name, tuple(pts[0]), tuple(pts[1])))
        elif markup.type == "Fiducial":
            labels = [cp.label or f"{name}-{k}" for k, cp in enumerate(markup.controlPoints, 1)
                      if cp.position is not None and cp.positionStatus == "defined"]
            out.points += [(label, tuple(p)) for label, p in zip(labels, pts, strict=True)]
        else:
            out.notes.append(f"{name}: {markup.type} markup with {len(pts)} points skipped")
    return out
