"""``surgiplan plans CASE [--json]``: list a case's candidate plans; with options, move plans
in and out of 3D Slicer and export planned objects.

    surgiplan plans CASE [--json]
    surgiplan plans CASE --export-mrk OUT.mrk.json [--plan NAME]
    surgiplan plans CASE --import-mrk IN.mrk.json --as NAME [--diameter MM]
    surgiplan plans CASE --export-stl DIR --plan NAME [--frame LPS|RAS]
    surgiplan plans CASE --export-seg OUT.dcm --plan NAME [--include-identifiers]

CASE is a ``.surgiplan`` bundle or a folder holding exactly one (e.g. a ``surgiplan sample``
folder). Coordinates LPS mm; an imported RAS markups file is converted. Exit codes: 0 ok; 2 bad
input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError
from surgiplan.io.case_files import bundle_path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plans", help="list a case's plans; Slicer markups, STL, SEG",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or a folder holding one")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plan", metavar="NAME", help="the plan to export (default: all for mrk)")
    p.add_argument("--export-mrk", type=Path, metavar="FILE",
                   help="write trajectories and targets as a 3D Slicer .mrk.json (LPS)")
    p.add_argument("--import-mrk", type=Path, metavar="FILE",
                   help="add a plan from a 3D Slicer .mrk.json (lines become trajectories)")
    p.add_argument("--as", dest="as_name", metavar="NAME", help="name of the imported plan")
    p.add_argument("--diameter", type=float, default=0.8, metavar="MM",
                   help="tool diameter of imported trajectories (default 0.8)")
    p.add_argument("--export-stl", type=Path, metavar="DIR",
                   help="write the plan's implants and ablation zones as STL files")
    p.add_argument("--frame", choices=("LPS", "RAS"), default="LPS",
                   help="STL coordinate frame (default LPS)")
    p.add_argument("--export-seg", type=Path, metavar="FILE",
                   help="write the plan's resection and ablation zones as DICOM SEG "
                   "(references the case's source series; de-identified by default)")
    p.add_argument("--include-identifiers", action="store_true",
                   help="--export-seg keeps the patient's name, ID, dates and the original "
                   "UIDs (logged)")
    p.add_argument("--actor", default="", metavar="NAME", help="your name for the audit log")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from surgiplan.plans.store import read_plans

    bundle = bundle_path(args.case)
    plan_set = read_plans(bundle, actor=args.actor)
    if args.export_mrk:
        return _export_mrk(plan_set, args)
    if args.import_mrk:
        return _import_mrk(bundle, plan_set, args)
    if args.export_stl or args.export_seg:
        return _export_objects(bundle, plan_set, args)
    rows = [_summary(p) for p in plan_set.plans]
    if args.json:
        json.dump({"case": str(bundle), "plans": rows}, sys.stdout, indent=2)
        print()
    else:
        _print(bundle, rows)
    return 0


def _summary(plan: Any) -> dict[str, Any]:
    from surgiplan.plans.compare import compare_stored

    safety = compare_stored([plan]).safety[plan.name] if plan.scored else None
    clearance = None if safety is None or not safety.structures else safety.clearance_mm
    closest = None if safety is None or safety.closest is None else safety.closest.structure
    return {
        "id": plan.id, "name": plan.name, "status": str(plan.status),
        "approved_by": plan.approved_by, "approved_utc": plan.approved_utc,
        "author": plan.author, "created_utc": plan.created_utc,
        "modified_utc": plan.modified_utc, "notes": plan.notes, "scored": plan.scored,
        "interventions": [{"label": i.label, "kind": str(i.kind),
                           "simulator_id": i.simulator_id, "scored_utc": i.scored_utc}
                          for i in plan.interventions],
        "worst_level": None if safety is None or not safety.structures
        else str(safety.worst_level),
        "clearance_mm": clearance if clearance is None or math.isfinite(clearance) else None,
        "closest_structure": closest,
    }


def _print(bundle: Path, rows: list[dict[str, Any]]) -> None:
    print(f"{bundle}: {len(rows)} plan(s)")
    for r in rows:
        status = r["status"] + (f" by {r['approved_by']} {r['approved_utc']}"
                                if r["approved_by"] else "")
        kinds = ", ".join(f"{i['label']} ({i['kind']})" for i in r["interventions"]) or "empty"
        safety = ""
        if r["clearance_mm"] is not None:
            safety = (f"; closest {r['closest_structure']} {_mm(r['clearance_mm'])} mm, "
                      f"{r['worst_level']}")
        print(f"  {r['name']}  [{status}]  {kinds}{safety}"
              f"{'' if r['scored'] else '; not scored'}")
        if r["author"]:
            print(f"      author {r['author']}, modified {r['modified_utc']}")


def _mm(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _chosen(plan_set: Any, name: str | None) -> list[Any]:
    return plan_set.plans if name is None else [plan_set.get(name)]


def _export_mrk(plan_set: Any, args: argparse.Namespace) -> int:
    from surgiplan.plans.slicer_markups import write_markups

    path = write_markups(_chosen(plan_set, args.plan), args.export_mrk)
    print(path)
    return 0


def _import_mrk(bundle: Path, plan_set: Any, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from surgiplan.plans.model import Intervention, Plan
    from surgiplan.plans.slicer_markups import read_markups
    from surgiplan.plans.store import write_plans
    from surgiplan.simulation import TrajectoryInput

    if not args.as_name:
        raise BadInputError("--import-mrk needs --as NAME", action="name the new plan")
    imported = read_markups(args.import_mrk)
    if not imported.lines:
        raise BadInputError("the markups file holds no line (entry -> target)",
                            path=args.import_mrk, action="export Line markups from 3D Slicer")
    try:
        interventions = [Intervention.from_input(name, TrajectoryInput(
            entry_lps=a, target_lps=b, diameter_mm=args.diameter))
            for name, a, b in imported.lines]
    except ValidationError as exc:
        raise BadInputError(f"bad trajectory: {exc.errors()[0]['msg']}", path=args.import_mrk,
                            action="check the line's two points") from exc
    plan_set.add(Plan(name=args.as_name, interventions=interventions, author=args.actor,
                      notes=f"Imported from {Path(args.import_mrk).name}"))
    write_plans(bundle, plan_set)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{bundle}: added plan {args.as_name!r} with {len(interventions)} trajectories")
    return 0


def _export_objects(bundle: Path, plan_set: Any, args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle
    from surgiplan.plans.exports import export_stl, export_zones_dicom_seg
    from surgiplan.simulation import SimulationContext

    if not args.plan:
        raise BadInputError("exporting objects needs --plan NAME", action="choose one plan")
    plan = plan_set.get(args.plan)
    twin = load_bundle(bundle)
    if args.export_stl:
        for path in export_stl(SimulationContext(twin), plan, args.export_stl,
                               frame=args.frame):
            print(path)
    if args.export_seg:
        result = export_zones_dicom_seg(twin, plan, args.export_seg,
                                        include_identifiers=args.include_identifiers)
        print(result.seg_path)
        if args.include_identifiers:
            print("note: this export holds patient identifiers; it was recorded in "
                  "SurgiPlan's identifiers.log", file=sys.stderr)
    return 0
