"""``surgiplan cohort run|report|open``: one plan template over many twins (in-silico cohort).

``run TEMPLATE COHORT --out results.parquet [--scheduler ADDRESS] [--workers N]``: Dask, one
task per twin (a local cluster unless a scheduler address is given), resumable; ``report
RESULTS --out DIR``: distributions, threshold shares with 95 % CI, worst cases, PDF;
``open RESULTS TWIN --out CASE.surgiplan``: re-make one twin with its templated plan.
Exit codes: 0 success; 2 bad input (one line); 1 when some twins failed (listed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cohort", help="run a plan template over many twins (Dask)",
                              description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cohort_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run TEMPLATE on every twin of COHORT (resumable)")
    run.add_argument("template", type=Path,
                     help="template JSON, or a built-in kind: pedicle-screws, ablation, "
                          "trajectory")
    run.add_argument("cohort", type=Path, help="cohort JSON or a folder of case bundles")
    run.add_argument("--out", type=Path, required=True, help="results table (.parquet)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="a running Dask scheduler (tcp://HOST:8786); default: local cluster")
    run.add_argument("--workers", type=int, help="local cluster workers (default: CPU count, "
                                                 "fewer when memory is short)")
    run.add_argument("--retries", type=int, default=2, help="re-runs of a failed task")
    run.add_argument("--json", action="store_true", help="machine-readable summary")
    run.set_defaults(func=run_run)
    rep = sub.add_parser("report", help="distributions, threshold shares, worst cases, PDF")
    rep.add_argument("results", type=Path, help="results table from 'cohort run'")
    rep.add_argument("--out", type=Path, required=True, help="report folder")
    rep.add_argument("--json", action="store_true", help="print the summary JSON")
    rep.set_defaults(func=run_report)
    op = sub.add_parser("open", help="save one twin with its templated plan as a case bundle")
    op.add_argument("results", type=Path, help="results table from 'cohort run'")
    op.add_argument("twin", help="twin id (the twin_id column)")
    op.add_argument("--out", type=Path, required=True, help="case bundle to write")
    op.set_defaults(func=run_open)


def run_run(args: argparse.Namespace) -> int:
    from surgiplan.cohort.cohort import load_cohort
    from surgiplan.cohort.runner import run_cohort
    from surgiplan.cohort.templates import load_template
    from surgiplan.errors import BadInputError

    if args.workers is not None and args.workers < 1:
        raise BadInputError("--workers must be >= 1", action="e.g. --workers 2")
    template = load_template(args.template)
    _, refs = load_cohort(args.cohort)
    summary = run_cohort(template, refs, args.out, scheduler=args.scheduler,
                         workers=args.workers, retries=args.retries,
                         progress=sys.stderr.isatty() or not args.json)
    data = {"out": str(summary.out), "twins": summary.n_twins, "ran": summary.ran,
            "resumed": summary.resumed, "failed": summary.failed,
            "workers": summary.n_workers, "wall_s": round(summary.wall_s, 2)}
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(f"{summary.out}: {summary.n_twins} twins ({summary.ran} run, {summary.resumed} "
              f"resumed, {len(summary.failed)} failed) on {summary.n_workers} workers in "
              f"{summary.wall_s:.1f} s")
        for twin, reason in summary.failed.items():
            print(f"  failed {twin}: {reason} (re-run the same command to retry it)")
    return 1 if summary.failed else 0


def run_report(args: argparse.Namespace) -> int:
    from surgiplan.cohort.report import write_report
    from surgiplan.cohort.runner import read_rows

    rows = read_rows(args.results)
    paths = write_report(rows, args.out, results=str(args.results),
                         title=f"Cohort report: {args.results.name}")
    if args.json:
        print(paths["summary"].read_text(encoding="utf-8"))
    else:
        print(f"wrote {paths['pdf']} and {paths['summary']}")
    return 0


def run_open(args: argparse.Namespace) -> int:
    from surgiplan.cohort.runner import open_twin

    path = open_twin(args.results, args.twin, args.out)
    print(f"{path}  (open it with: surgiplan gui {path})")
    return 0
