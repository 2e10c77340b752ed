"""``surgiplan report CASE [--plan NAME] [--include-identifiers] --out report.pdf``: the plan
report as PDF, with the views rendered offscreen (under ``xvfb-run``, or with no display at all:
Qt's offscreen platform and VTK's EGL/OSMesa render window). The PDF is written atomically and
read back: a full disk or an unwritable place exits 2 and leaves any previous report intact.

The report holds the case summary (de-identified: only the pseudonymous ``patient_ref`` unless
``--include-identifiers``, which is recorded in ``identifiers.log`` like every identified
export), screenshots (3D, key slices, probe's-eye for trajectories), metric
tables with 95 % intervals and thresholds with their sources, the uncertainty model in words,
provenance (software and plug-in versions, parameters, input hashes, date) and a sign-off
block. Qt is imported only when the command runs. Exit codes: 0 written; 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write a plan's PDF report (views rendered "
                                             "offscreen)", description=__doc__.split("\n\n")[0])
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or a folder holding one")
    p.add_argument("--plan", metavar="NAME", help="the plan to report (default: the approved "
                   "one, else the safest)")
    p.add_argument("--include-identifiers", action="store_true",
                   help="print the patient's name, ID and birth date if the case has them")
    p.add_argument("--out", required=True, type=Path, help="the PDF to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from surgiplan.errors import BadInputError
    from surgiplan.io.case_files import bundle_path

    bundle = bundle_path(args.case)
    if args.out.suffix.lower() != ".pdf":
        raise BadInputError("the report must be a .pdf file", path=args.out,
                            action="give --out NAME.pdf")
    from surgiplan.io.atomic import probe_writable

    probe_writable(args.out)  # before minutes of rendering
    from surgiplan.ui.shell.headless import write_report_offscreen

    path = write_report_offscreen(bundle, args.out, plan=args.plan,
                                  include_identifiers=args.include_identifiers)
    if args.include_identifiers:  # the explicit opt-in is logged, as for every PHI export
        import sys

        from surgiplan.io.source_series import log_identified_export

        log_identified_export("PDF report", path)
        print("note: this report holds patient identifiers; it was recorded in SurgiPlan's "
              "identifiers.log", file=sys.stderr)
    print(path)
    return 0
