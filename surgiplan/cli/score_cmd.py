"""``surgiplan score CASE [--plan NAME] [--json] [--save]``: re-run every simulator of a plan (or
of every plan) and print every metric with its 95 % interval, then the comparison.

``--save`` stores the new results in the bundle (and a line in its audit log). Coordinates LPS
mm. Exit codes: 0 ok; 1 a simulator failed, hung or was cancelled; 2 bad input (no such case
or plan, a plug-in not installed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError

EXIT_SIMULATION_FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("score", help="re-run a plan's simulators; metrics with intervals",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or a folder holding one")
    p.add_argument("--plan", metavar="NAME", action="append",
                   help="plan to score (repeatable; default: every plan)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--save", action="store_true", help="store the results in the bundle")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="give up on one simulation after this many seconds (default 120)")
    p.add_argument("--actor", default="", metavar="NAME", help="your name for the audit log")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle
    from surgiplan.io.case_files import bundle_path
    from surgiplan.plans.compare import compare_plans
    from surgiplan.plans.scoring import score_plan
    from surgiplan.plans.store import plan_set_of_twin, write_plans
    from surgiplan.simulation import SimulationContext

    bundle = bundle_path(args.case)
    twin = load_bundle(bundle)
    plan_set = plan_set_of_twin(twin, actor=args.actor)
    if not len(plan_set):
        raise BadInputError("the case has no plans", path=bundle,
                            action="add a plan in the app or import one with `surgiplan plans "
                            "CASE --import-mrk FILE --as NAME`")
    plans = [plan_set.get(name) for name in args.plan] if args.plan else plan_set.plans
    context = SimulationContext(twin)
    scored = {p.name: (p, score_plan(context, p, timeout_s=args.timeout)) for p in plans}
    comparison = compare_plans({name: [(i.label, r) for i, r in
                                       zip(p.interventions, results, strict=True)]
                                for name, (p, results) in scored.items()
                                if p.interventions})
    if args.json:
        json.dump(_json(bundle, scored, comparison), sys.stdout, indent=2)
        print()
    else:
        _print(scored, comparison)
    if args.save:
        for name, (_, results) in scored.items():
            plan_set.set_results(name, results)
        write_plans(bundle, plan_set)
    failed = [f"{name}: {i.label}: {r.error}" for name, (p, results) in scored.items()
              for i, r in zip(p.interventions, results, strict=True) if not r.ok]
    for line in failed:
        print(f"surgiplan: failed: {line}", file=sys.stderr)
    return EXIT_SIMULATION_FAILED if failed else 0


def _json(bundle: Path, scored: dict[str, Any], comparison: Any) -> dict[str, Any]:
    return {"case": str(bundle),
            "plans": [{"name": name, "id": p.id, "status": str(p.status),
                       "interventions": [{"label": i.label, "kind": str(i.kind),
                                          "simulator_id": i.simulator_id,
                                          "result": r.to_json()}
                                         for i, r in zip(p.interventions, results, strict=True)]}
                      for name, (p, results) in scored.items()],
            "comparison": comparison.to_json()}


def _print(scored: dict[str, Any], comparison: Any) -> None:
    from surgiplan.cli.simulate_cmd import _print_result

    for name, (plan, results) in scored.items():
        print(f"== {name} [{plan.status}]")
        for item, result in zip(plan.interventions, results, strict=True):
            print(f"-- {item.label} ({item.kind}, {item.simulator_id})")
            _print_result(result)
    if len(comparison.plans) > 1:
        if comparison.safest:
            print(f"Safest: {comparison.safest}")
        if comparison.why:
            print(f"Why: {comparison.why}")
