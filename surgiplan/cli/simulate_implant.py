"""``surgiplan simulate implant CASE --screw DIAMETERxLENGTH --entry X,Y,Z --target X,Y,Z
[--json]`` (screw head at the entry, tip towards the target), or ``--implant FILE --pose 16
numbers``, or ``--suggest VERTEBRA --side left|right [--near X,Y,Z]`` (auto-suggested screw).

Coordinates LPS mm. Runs the ``implant`` simulator plug-in (``plugins/implant``) through the
runner; the JSON has the same shape as ``simulate trajectory``'s (metric keys ``breach_mm``,
``breach_<direction>_mm``, ``gertzbein_grade``, ``min_distance_mm`` per critical structure...).
The plug-in builds the implant (the core never imports a plug-in's modules).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError


def pose_numbers(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"pose numbers must be finite, got {text!r}")
    return value


def register_kind(kinds: argparse._SubParsersAction) -> None:
    """Add ``simulate implant`` to the ``simulate`` sub-commands."""
    from surgiplan.cli.simulate_cmd import _add_common_args, _add_uncertainty_args, point_lps

    p = kinds.add_parser("implant", help="pedicle screw / implant: breach, grade, clearances")
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or phantom folder")
    p.add_argument("--screw", metavar="DIAMETERxLENGTH",
                   help="library pedicle screw, mm, diameter first (e.g. 6.5x45)")
    p.add_argument("--entry", type=point_lps, metavar="X,Y,Z",
                   help="screw head position (entry), LPS mm")
    p.add_argument("--target", type=point_lps, metavar="X,Y,Z",
                   help="a point the tip points towards, LPS mm")
    p.add_argument("--implant", type=Path, metavar="FILE",
                   help="an STL/OBJ/PLY implant in its own frame (read, never modified)")
    p.add_argument("--pose", type=pose_numbers, nargs=16, metavar="M",
                   help="with --implant: 16 numbers, row-major 4x4 implant -> LPS mm")
    p.add_argument("--units", choices=("mm", "m", "cm", "um", "in"),
                   help="the implant file's units (default: guessed from its size)")
    p.add_argument("--suggest", metavar="VERTEBRA",
                   help="auto-suggest a screw in this bone structure (needs --side)")
    p.add_argument("--side", choices=("left", "right"), help="patient side of the pedicle")
    p.add_argument("--near", type=point_lps, metavar="X,Y,Z",
                   help="with --suggest on a whole-skeleton bone structure: a point in the "
                        "vertebra, LPS mm")
    p.add_argument("--scored-part", choices=("shank", "whole"),
                   help="part scored against bone (default: shank for screws, whole for files)")
    p.add_argument("--no-exact", action="store_true",
                   help="grid scores only (the live score), no exact mesh check")
    _add_uncertainty_args(p)
    _add_common_args(p)
    p.set_defaults(func=run_implant, simulator="implant")


def _inputs(simulator: Any, args: argparse.Namespace, context: Any
            ) -> tuple[Any, list[str], dict[str, Any]]:
    """(ImplantInput, import warnings, suggestion JSON or {}) from the chosen option set."""
    from surgiplan.simulation.capabilities import INPUTS, SUGGEST, supports

    modes = [args.screw is not None, args.implant is not None, args.suggest is not None]
    if sum(modes) != 1:
        raise BadInputError("give exactly one of --screw, --implant or --suggest",
                            action="e.g. --screw 6.5x45 --entry X,Y,Z --target X,Y,Z")
    needed = SUGGEST if args.suggest is not None else INPUTS
    if not supports(simulator, needed):
        raise BadInputError(f"simulator {simulator.spec.id} cannot build implant inputs "
                            f"here (it declares no usable {needed!r} capability)",
                            action="use --simulator implant")
    if args.screw is not None:
        if args.entry is None or args.target is None:
            raise BadInputError("--screw needs --entry and --target",
                                action="give the head position and a point the tip aims at")
        return simulator.screw_input(args.screw, args.entry, args.target), [], {}
    if args.implant is not None:
        if args.pose is None:
            raise BadInputError("--implant needs --pose (16 numbers)", path=args.implant,
                                action="give the 4x4 implant -> LPS pose, row-major")
        inputs, warnings = simulator.file_input(args.implant, args.pose, units=args.units)
        return inputs, warnings, {}
    if args.side is None:
        raise BadInputError("--suggest needs --side left or right",
                            action="give the patient side of the pedicle")
    inputs, suggestion = simulator.suggest_input(context, args.suggest, args.side,
                                                 point_lps=args.near)
    return inputs, [], suggestion


def run_implant(args: argparse.Namespace) -> int:
    from surgiplan.cli.param_args import cli_parameters
    from surgiplan.cli.simulate_cmd import _context, report_result, uncertainty_model
    from surgiplan.simulation import load_simulator
    from surgiplan.simulation.runner import run_simulation

    simulator = load_simulator(args.simulator)
    scored = args.scored_part or ("whole" if args.implant is not None else "shank")
    params = cli_parameters(simulator, args, {"scored_part": scored,
                                              "exact_check": not args.no_exact})
    context = _context(args.case)
    inputs, warnings, suggestion = _inputs(simulator, args, context)
    result = run_simulation(simulator, context, inputs, uncertainty=uncertainty_model(args),
                            timeout_s=args.timeout, parameters=params)
    result.warnings[:0] = warnings
    if suggestion:
        result.details["suggestion"] = suggestion
    if not args.json:
        _print_header(result, suggestion)
    return report_result(result, as_json=args.json)


def _print_header(result: Any, suggestion: dict[str, Any]) -> None:
    """The suggested screw and the Gertzbein-Robbins grade, before the shared result text."""
    if suggestion:
        print(f"Suggested: {suggestion['screw_id']} ({suggestion['side']} "
              f"{suggestion['vertebra']}), entry "
              + ",".join(f"{v:.1f}" for v in suggestion["entry_lps"]) + ", tip "
              + ",".join(f"{v:.1f}" for v in suggestion["tip_lps"])
              + f"; narrowest pedicle width {suggestion['isthmus_width_mm']:.1f} mm")
    if "gertzbein_grade" in result.details:
        print(f"Modified Gertzbein-Robbins grade: {result.details['gertzbein_grade']} "
              f"({result.details.get('method')} check)")
    if result.ok:
        print(f"Verdict: {result.overall_level}")
        reasons = result.verdict_reasons()
        for line in reasons[:3]:
            print(f"  - {line}")
        if len(reasons) > 3:
            print(f"  - ... {len(reasons) - 3} more (see the metrics below)")
