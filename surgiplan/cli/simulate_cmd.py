"""``surgiplan simulate trajectory`` and ``surgiplan plan-path``: run a simulator on a case.

CASE is a case bundle (``.surgiplan``) or a phantom folder written by ``surgiplan sample``.
Coordinates are LPS mm. Exit codes: 0 ok; 1 the simulator failed, hung or was cancelled (the
result says why); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from surgiplan.cli.param_args import add_param_arg, cli_parameters
from surgiplan.errors import BadInputError

EXIT_SIMULATION_FAILED = 1


def point_lps(text: str) -> tuple[float, float, float]:
    """``"X,Y,Z"`` (LPS mm) -> 3 floats; ``argparse`` reports a bad one in one line."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected X,Y,Z in LPS mm (3 numbers), got {text!r}")
    return values  # type: ignore[return-value]


def load_case(path: Path, *, lazy_image: bool = False):
    """A twin from a ``.surgiplan`` bundle or a ``surgiplan sample`` phantom folder;
    ``lazy_image``: a bundle's image voxels are read on first use only."""
    path = Path(path)
    if path.is_file() and path.suffix == ".surgiplan":
        from surgiplan.io.bundle import load_bundle

        return load_bundle(path, lazy_image=lazy_image)
    if path.is_dir() and (path / "labels.nrrd").is_file() and (path / "dicom").is_dir():
        from surgiplan.io.twin_build import build_twin

        return build_twin(path / "dicom", labels=[path / "labels.nrrd"])
    raise BadInputError("not a case: expected a .surgiplan bundle or a phantom folder with "
                        "dicom/ and labels.nrrd", path=path,
                        action="build one with `surgiplan twin build` or `surgiplan sample`")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate`` and ``plan-path`` to the ``surgiplan`` parser."""
    simulate = subparsers.add_parser("simulate", help="run a simulator on a case")
    kinds = simulate.add_subparsers(dest="kind", metavar="KIND", required=True)
    traj = kinds.add_parser("trajectory", help="risk of a straight tool from entry to target")
    traj.add_argument("case", type=Path, help="case bundle (.surgiplan) or phantom folder")
    traj.add_argument("--entry", type=point_lps, required=True, metavar="X,Y,Z",
                      help="entry point, LPS mm")
    traj.add_argument("--target", type=point_lps, required=True, metavar="X,Y,Z",
                      help="target point, LPS mm")
    traj.add_argument("--diameter", type=float, default=0.8, metavar="MM",
                      help="tool diameter in mm (default 0.8, an SEEG electrode)")
    _add_uncertainty_args(traj)
    _add_common_args(traj)
    traj.set_defaults(func=run_trajectory)
    for module in _kind_command_modules():
        module.register_kind(kinds)

    plan = subparsers.add_parser("plan-path", help="search the safest entries on the skin")
    plan.add_argument("case", type=Path, help="case bundle (.surgiplan) or phantom folder")
    plan.add_argument("--target", type=point_lps, required=True, metavar="X,Y,Z",
                      help="target point, LPS mm")
    plan.add_argument("--max-length", type=float, default=None, metavar="MM",
                      help="longest path allowed (default 90 mm)")
    plan.add_argument("--max-angle", type=float, default=None, metavar="DEG",
                      help="largest angle to the skin normal (default 30 deg)")
    plan.add_argument("--diameter", type=float, default=0.8, metavar="MM",
                      help="tool diameter in mm (default 0.8)")
    plan.add_argument("--top", type=int, default=10, metavar="K", help="entries to list")
    _add_common_args(plan)
    plan.set_defaults(func=run_plan_path)


def _kind_command_modules() -> list[Any]:
    """The ``surgiplan.cli.simulate_<kind>`` modules: each adds ``simulate <kind>`` through its
    ``register_kind(kinds_subparsers)`` (implant, ablation, resection...)."""
    import importlib
    import pkgutil

    import surgiplan.cli

    names = sorted(m.name for m in pkgutil.iter_modules(surgiplan.cli.__path__)
                   if m.name.startswith("simulate_") and m.name != "simulate_cmd")
    return [importlib.import_module(f"surgiplan.cli.{name}") for name in names]


def _add_uncertainty_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--entry-sd-mm", type=float, default=None, metavar="S",
                        help="placement error SD at entry, mm per axis (default: the "
                        "simulator's own cited error profile, see `surgiplan simulators list`)")
    parser.add_argument("--target-sd-mm", type=float, default=None,
                        metavar="S", help="placement error SD at target, mm per axis (default: "
                        "the simulator's own cited error profile)")
    add_sampling_args(parser, boundary_help="structure-boundary SD in mm (default one voxel)")


def add_sampling_args(parser: argparse.ArgumentParser, *, boundary_help: str) -> None:
    """``--boundary-sd-mm`` (help ``boundary_help``), ``--samples`` and ``--seed``."""
    from surgiplan.simulation.uncertainty import DEFAULT_SAMPLES, DEFAULT_SEED

    parser.add_argument("--boundary-sd-mm", type=float, default=None, metavar="S",
                        help=boundary_help)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                        help=f"Monte Carlo samples (default {DEFAULT_SAMPLES}; 0 = none)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                        help="random seed (same seed, same answer)")


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulator", default="trajectory", metavar="ID",
                        help="simulator id (default: trajectory)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="give up after this many seconds (default 120)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_param_arg(parser)


def _context(case: Path, *, keep_surfaces: bool = True, lazy_image: bool = False):
    """The case's simulation context; without ``keep_surfaces`` the surface meshes a bundle
    brought along are dropped (a trajectory run then meshes the skin near its entry only);
    with ``lazy_image`` a bundle's image voxels are read only if something reads them (a path
    search does not: -1x the image bytes)."""
    from surgiplan.simulation import SimulationContext

    _release_freed_blocks_promptly()
    twin = load_case(case, lazy_image=lazy_image)
    if not keep_surfaces:
        twin.drop_cached_surfaces()
    return SimulationContext(twin)


MMAP_THRESHOLD_BYTES = 256 * 1024


def _release_freed_blocks_promptly() -> None:
    """glibc only: blocks of MMAP_THRESHOLD_BYTES or more are mapped and unmapped on free.

    By default glibc raises that threshold up to 32 MiB as blocks are freed, so the crop-sized
    temporaries of distance maps and meshes (ITK's and VTK's included) stay in the heap and
    count in the peak of the next step (measured on the 512x512x200 bench CT: -15 MiB for
    simulate, -49 MiB for plan-path). A one-shot command loses nothing by it."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "mallopt"):
            libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # -3: M_MMAP_THRESHOLD


def run_trajectory(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from surgiplan.simulation import TrajectoryInput, load_simulator
    from surgiplan.simulation.runner import run_simulation

    simulator = load_simulator(args.simulator)
    params = cli_parameters(simulator, args)
    try:
        inputs = TrajectoryInput(entry_lps=args.entry, target_lps=args.target,
                                 diameter_mm=args.diameter)
    except ValidationError as exc:
        raise BadInputError(f"bad trajectory: {exc.errors()[0]['msg']}",
                            action="check --entry, --target and --diameter") from exc
    model = uncertainty_model(args)
    context = _context(args.case, keep_surfaces=False)  # memory: see _context
    result = run_simulation(simulator, context, inputs, uncertainty=model, parameters=params,
                            timeout_s=args.timeout)
    return report_result(result, as_json=args.json)


def uncertainty_model(args: argparse.Namespace):
    """The UncertaintyModel of the ``_add_uncertainty_args`` options (SDs in mm)."""
    from surgiplan.simulation import UncertaintyModel

    return UncertaintyModel(entry_sd_mm=args.entry_sd_mm, target_sd_mm=args.target_sd_mm,
                            boundary_sd_mm=args.boundary_sd_mm, samples=args.samples,
                            seed=args.seed)


def report_result(result: Any, *, as_json: bool) -> int:
    """Print a simulation result (JSON, or text) and return the exit code: 0, or
    EXIT_SIMULATION_FAILED with the reason on stderr when the run failed."""
    if as_json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        print()
    else:
        _print_result(result)
    if not result.ok:
        print(f"surgiplan: {result.status}: {result.error}", file=sys.stderr)
        return EXIT_SIMULATION_FAILED
    return 0


def _fmt(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}" if unit == "" else f"{value:.2f} {unit}"


def _print_result(result) -> None:
    print(f"Status: {result.status}" + (f" ({result.error})" if result.error else ""))
    for m in result.metrics:
        if m.not_assessable:
            print(f"  {m.title}: not assessable ({m.not_assessable})")
            continue
        ci = "" if m.ci95 is None else \
            f"  95% [{_fmt(m.ci95[0], m.unit)}, {_fmt(m.ci95[1], m.unit)}]"
        print(f"  {m.title}: {_fmt(m.value, m.unit)}{ci}")
    for lv in result.levels:
        p = "" if lv.breach_probability is None else f", P(breach) {lv.breach_probability:.3f}"
        print(f"  {lv.structure}: {lv.level.upper()} (clearance {_fmt(lv.min_distance_mm, 'mm')}, "
              f"margin {lv.margin_mm:g} mm{p})")
    if result.details.get("traversed"):
        print("  traverses: " + ", ".join(result.details["traversed"]))
    for w in result.warnings:
        print(f"  warning: {w}")
    prov = result.provenance
    if prov is not None:
        print(f"  {prov.simulator_id} {prov.simulator_version}, {prov.samples} samples, "
              f"seed {prov.seed}, {prov.run_time_s * 1000:.0f} ms")


def run_plan_path(args: argparse.Namespace) -> int:
    from surgiplan.simulation import PathSearchRequest, load_simulator
    from surgiplan.simulation.path_search import DEFAULT_MAX_ANGLE_DEG, DEFAULT_MAX_LENGTH_MM
    from surgiplan.simulation.runner import SimulationFailedError, run_search

    simulator = load_simulator(args.simulator)
    if "search" not in simulator.spec.capabilities:
        raise BadInputError(f"simulator {args.simulator} cannot search paths",
                            action="use --simulator trajectory")
    params = cli_parameters(simulator, args)
    request = PathSearchRequest(
        target_lps=args.target, diameter_mm=args.diameter, top_k=args.top,
        max_length_mm=DEFAULT_MAX_LENGTH_MM if args.max_length is None else args.max_length,
        max_angle_deg=DEFAULT_MAX_ANGLE_DEG if args.max_angle is None else args.max_angle)
    context = _context(args.case, lazy_image=True)  # memory: see _context
    if not context.geometry.contains_lps(args.target):
        raise BadInputError(f"the target {tuple(args.target)} (LPS mm) lies outside the image",
                            path=args.case, action="give a target inside the image "
                            "(its extent: surgiplan twin info)")
    started = time.perf_counter()
    try:
        result = run_search(simulator, context, request, params, timeout_s=args.timeout)
    except SimulationFailedError as exc:
        return _report_search_failure(str(exc), as_json=args.json)
    total = time.perf_counter() - started
    if args.json:
        json.dump({**result.to_json(), "total_time_s": total}, sys.stdout, indent=2)
        print()
        return 0
    _print_search(result, total)
    return 0


def _report_search_failure(message: str, *, as_json: bool) -> int:
    """A failed or hung search: JSON ``{"status": "failed"}`` and/or one line on stderr."""
    if as_json:
        json.dump({"status": "failed", "error": message}, sys.stdout, indent=2)
        print()
    print(f"surgiplan: failed: {message}", file=sys.stderr)
    return EXIT_SIMULATION_FAILED


def _print_search(result: Any, total_s: float) -> None:
    print(f"Evaluated {result.n_candidates} candidate entries in {result.time_s:.3f} s "
          f"({total_s:.2f} s with distance maps and the skin surface); "
          f"{result.n_feasible} feasible, rejected: "
          + ", ".join(f"{k} {v}" for k, v in result.rejected.items() if k != "feasible"))
    print(f"Pareto front (clearance, length, angle): {len(result.pareto)} entries")
    for c in result.candidates:
        entry = ",".join(f"{v:.1f}" for v in c.entry_lps)
        exact = "" if not c.exact_clearance_mm else "  exact: " + ", ".join(
            f"{k} {v:.2f} mm" for k, v in c.exact_clearance_mm.items())
        print(f"  #{c.rank} entry {entry}  clearance {c.clearance_mm:.2f} mm  risk "
              f"{c.risk:.3f}  length {c.length_mm:.1f} mm  angle {c.angle_deg:.1f} deg"
              f"{'  pareto' if c.pareto else ''}{exact}")
    for w in result.warnings:
        print(f"  warning: {w}")
