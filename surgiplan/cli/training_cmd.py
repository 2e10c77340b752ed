"""``surgiplan training list|score``: the residents' exercises, headless.

    surgiplan training list [--folder DIR] [--json]
    surgiplan training score EXERCISE PLAN.json [--case CASE] [--time S] [--json]

EXERCISE is an ``.exercise.json`` file or the id of a shipped exercise; PLAN.json is an attempt
(``surgiplan.attempt``: entry and target LPS mm, time taken) or a SurgiPlan plan holding an
intervention of the exercise's kind. The case is the exercise's (a generated phantom is made
in the user cache on first use) unless ``--case`` names one. Exit codes: 0 scored (passed or
not); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("training", help="residents' exercises: list, score an attempt",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="training_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list the exercises")
    ls.add_argument("--folder", type=Path, help="exercise folder (default: the shipped ones)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of text")
    ls.set_defaults(func=run_list)
    sc = sub.add_parser("score", help="score a resident's plan against an exercise")
    sc.add_argument("exercise", help="an .exercise.json file or a shipped exercise id")
    sc.add_argument("plan", type=Path, help="attempt or plan JSON")
    sc.add_argument("--case", type=Path, help="case bundle to use instead of the exercise's")
    sc.add_argument("--time", type=float, metavar="S", help="time taken (s), overrides the file")
    sc.add_argument("--json", action="store_true", help="print JSON instead of text")
    sc.set_defaults(func=run_score)


def run_list(args: argparse.Namespace) -> int:
    from surgiplan.training.exercise import list_exercises

    rows: list[dict[str, Any]] = [
        {"id": ex.id, "title": ex.title, "kind": str(ex.kind), "task": ex.task,
         "case": ex.case.model_dump(exclude_none=True), "path": str(path),
         "time_limit_s": None if ex.rubric.time is None else ex.rubric.time.limit_s}
        for path, ex in list_exercises(args.folder)]
    if args.json:
        json.dump({"exercises": rows}, sys.stdout, indent=2)
        print()
        return 0
    for r in rows:
        case = r["case"].get("phantom") or r["case"].get("bundle")
        print(f"{r['id']}  [{r['kind']}, {case}]  {r['title']}")
        print(f"    {r['task']}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle
    from surgiplan.simulation import SimulationContext
    from surgiplan.training.attempt import read_attempt
    from surgiplan.training.cases import case_bundle
    from surgiplan.training.exercise import find_exercise
    from surgiplan.training.scoring import score_attempt

    path, exercise = find_exercise(args.exercise)
    attempt = read_attempt(args.plan, exercise)
    bundle = case_bundle(exercise, path, case=args.case)
    context = SimulationContext(load_bundle(bundle))
    taken = args.time if args.time is not None else attempt.time_taken_s
    score = score_attempt(context, exercise, attempt.placement, time_taken_s=taken)
    if args.json:
        json.dump({"exercise": exercise.id, "case": str(bundle), **_json(score)}, sys.stdout,
                  indent=2)
        print()
    else:
        _print(exercise, score)
    return 0


def _json(score: Any) -> dict[str, Any]:
    data = score.to_json()
    data.pop("result")
    return data


def _print(exercise: Any, score: Any) -> None:
    verdict = "passed" if score.passed else "not passed"
    print(f"{exercise.title}: score {score.score:.0f}/100 ({verdict}, pass mark "
          f"{exercise.rubric.pass_score:g})")
    for c in score.criteria:
        print(f"  {100 * c.credit:5.0f} %  x{c.weight:g}  {c.title}")
    print("Feedback:")
    for f in score.feedback:
        where = "" if f.location_lps is None else \
            " at L {:.1f} P {:.1f} S {:.1f} mm".format(*f.location_lps)
        print(f"  [{f.severity}] {f.text}{where}")
    r = score.reference
    print("Reference ({}): entry L {:.1f} P {:.1f} S {:.1f}, target L {:.1f} P {:.1f} S {:.1f} mm"
          .format(exercise.reference.name, *r.entry_lps, *r.target_lps))
