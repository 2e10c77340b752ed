"""``surgiplan sample NAME --out DIR [--seed N]``: write a phantom with its ground truth.

Writes ``DIR/dicom/`` (CT series), ``DIR/labels.nrrd``, ``DIR/labels.json``, ``DIR/truth.json``
and ``DIR/NAME.surgiplan``, the twin built from that DICOM series with the ground-truth labels
and scored demo plans (:mod:`surgiplan.plans.demo`).
An unknown NAME exits 2 with one line listing the valid names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from surgiplan.phantoms.names import PHANTOM_NAMES

    names = "|".join(PHANTOM_NAMES)
    parser = subparsers.add_parser(
        "sample", help=f"write a phantom ({names}) as DICOM CT with ground-truth labels",
        description="Generate a phantom with exact analytic ground truth (LPS mm): a DICOM CT "
                    "series, labels.nrrd/labels.json, truth.json and a .surgiplan case bundle.")
    parser.add_argument("name", metavar="NAME", help=f"phantom to generate: {names}")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from surgiplan.phantoms.sample_case import write_sample

    bundle = write_sample(args.name, args.out, seed=args.seed, progress=_stderr_progress())
    print(bundle)
    return 0


def _stderr_progress():
    """Progress as one updating line on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None

    def show(fraction: float, text: str) -> None:
        print(f"\r{fraction * 100:5.1f}% {text[:60]:<60}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)

    return show
