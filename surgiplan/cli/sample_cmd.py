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
    from surgiplan.phantoms.generate import PHANTOM_NAMES

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
    bundle = write_sample(args.name, args.out, seed=args.seed, progress=_stderr_progress())
    print(bundle)
    return 0


def write_sample(name: str, out_dir: Path, *, seed: int = 0, progress=None) -> Path:
    """Generate phantom ``name`` in ``out_dir`` and save its twin; returns the bundle path."""
    from surgiplan.io.bundle import save_bundle
    from surgiplan.io.twin_build import build_twin
    from surgiplan.phantoms.generate import generate_phantom, phantom_spec
    from surgiplan.progress import report

    phantom_spec(name)  # unknown names fail before anything is written
    files = generate_phantom(
        name, out_dir, seed=seed,
        progress=None if progress is None else lambda f, t: report(progress, 0.7 * f, t),
    )
    report(progress, 0.7, "building the twin")
    twin = build_twin(files.dicom_dir, labels=[files.labels_nrrd], label_names=files.labels_json)
    twin.provenance.notes.append(f"SurgiPlan {name} phantom, seed {seed}; truth: truth.json")
    _add_demo_plans(name, twin, progress)
    path = save_bundle(twin, Path(out_dir) / f"{name}.surgiplan")
    report(progress, 1.0, f"saved {path}")
    return path


def _add_demo_plans(name: str, twin, progress) -> None:
    """Scored candidate plans for the phantom (surgiplan.plans.demo), kept in the bundle."""
    from surgiplan.plans.demo import demo_plans
    from surgiplan.plans.store import store_in_twin
    from surgiplan.progress import report

    report(progress, 0.75, "scoring the demo plans")
    plan_set, skipped = demo_plans(
        name, twin, progress=None if progress is None else
        lambda f, t: report(progress, 0.75 + 0.2 * f, t))
    if skipped:
        twin.provenance.notes.append(skipped)
    elif len(plan_set):
        store_in_twin(twin, plan_set)


def _stderr_progress():
    """Progress as one updating line on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None

    def show(fraction: float, text: str) -> None:
        print(f"\r{fraction * 100:5.1f}% {text[:60]:<60}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)

    return show
