"""``surgiplan simulate ablation``: score one or several ablation probes on a case.

    surgiplan simulate ablation CASE --tip X,Y,Z --entry X,Y,Z
        [--device NAME --power W --time MIN | --zone LONGxSHORT [--tip-offset MM]]
        [--target STRUCTURE] [--probe TX,TY,TZ:EX,EY,EZ ...] [--optimise] [--json]

Coordinates LPS mm. The JSON shape is that of ``simulate trajectory``; ``--optimise`` prints
the ranked placements instead. Exit codes as for ``simulate trajectory``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from surgiplan.cli.param_args import cli_parameters
from surgiplan.cli.simulate_cmd import (
    _add_common_args,
    _add_uncertainty_args,
    _context,
    point_lps,
    report_result,
    uncertainty_model,
)
from surgiplan.errors import BadInputError

DEFAULT_DEVICE = "generic-microwave"


def zone_axes(text: str) -> tuple[float, float]:
    """``"LONGxSHORT"`` (mm) -> two floats > 0."""
    try:
        long_mm, short_mm = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LONGxSHORT in mm, got {text!r}") from None
    if not (long_mm > 0 and short_mm > 0):
        raise argparse.ArgumentTypeError(f"zone axes must be > 0 mm, got {text!r}")
    return long_mm, short_mm


def probe_pair(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``"TX,TY,TZ:EX,EY,EZ"`` -> (tip, entry) in LPS mm."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected TIP:ENTRY as X,Y,Z:X,Y,Z, got {text!r}")
    return point_lps(parts[0]), point_lps(parts[1])


def register_kind(kinds: argparse._SubParsersAction) -> None:
    """Add ``simulate ablation`` to the ``simulate`` sub-commands."""
    p = kinds.add_parser("ablation", help="ablation zone: coverage, margin, heat sink")
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or phantom folder")
    p.add_argument("--tip", type=point_lps, required=True, metavar="X,Y,Z",
                   help="probe tip, LPS mm")
    p.add_argument("--entry", type=point_lps, required=True, metavar="X,Y,Z",
                   help="probe entry (a point on the shaft), LPS mm")
    p.add_argument("--device", default=None, metavar="NAME",
                   help=f"device table id (default {DEFAULT_DEVICE}; see "
                   "the ablation plug-in's data/ folder)")
    p.add_argument("--power", type=float, default=None, metavar="W", help="power in W")
    p.add_argument("--time", type=float, default=None, metavar="MIN", help="time in minutes")
    p.add_argument("--zone", type=zone_axes, default=None, metavar="LONGxSHORT",
                   help="a zone of these diameters (mm) instead of a device setting")
    p.add_argument("--tip-offset", type=float, default=0.0, metavar="MM",
                   help="with --zone: zone centre this far back from the tip (default 0)")
    p.add_argument("--target", default=None, metavar="STRUCTURE",
                   help="the tumour (default: the target structure nearest the tip)")
    p.add_argument("--probe", type=probe_pair, action="append", default=[],
                   metavar="TIP:ENTRY", help="a further probe with the same device/zone "
                   "(repeatable): X,Y,Z:X,Y,Z")
    p.add_argument("--optimise", action="store_true",
                   help="search probe position, direction and setting for P(margin >= 5 mm)")
    _add_uncertainty_args(p)
    _add_common_args(p)
    p.set_defaults(func=run_ablation, simulator="ablation")


def _inputs(args: argparse.Namespace):
    from pydantic import ValidationError

    from surgiplan.simulation import AblationInput
    from surgiplan.simulation.inputs import AblationProbe

    if args.zone is not None:
        if args.device or args.power is not None or args.time is not None:
            raise BadInputError("give either --zone or --device/--power/--time, not both",
                                action="drop one of them")
        device = "custom"
        settings = {"long_mm": args.zone[0], "short_mm": args.zone[1],
                    "tip_offset_mm": args.tip_offset}
    else:
        if args.power is None or args.time is None:
            raise BadInputError("a device needs --power W and --time MIN",
                                action="give both, or a zone with --zone LONGxSHORT")
        device = args.device or DEFAULT_DEVICE
        settings = {"power_w": args.power, "time_min": args.time}
    try:
        extra = tuple(AblationProbe(device_id=device, tip_lps=t, shaft_lps=e,
                                    settings=settings) for t, e in args.probe)
        return AblationInput(device_id=device, tip_lps=args.tip, shaft_lps=args.entry,
                             settings=settings, extra_probes=extra,
                             target_structure=args.target)
    except ValidationError as exc:
        raise BadInputError(f"bad probe: {exc.errors()[0]['msg']}",
                            action="check --tip, --entry and --probe") from exc


def run_ablation(args: argparse.Namespace) -> int:
    from surgiplan.simulation import load_simulator
    from surgiplan.simulation.capabilities import CHECKS, supports
    from surgiplan.simulation.runner import run_simulation

    simulator = load_simulator(args.simulator)
    params = cli_parameters(simulator, args)
    inputs = _inputs(args)
    if supports(simulator, CHECKS):  # a bad device or setting is bad input (exit 2)
        simulator.check_inputs(inputs, params)
    model = uncertainty_model(args)
    context = _context(args.case)
    if supports(simulator, CHECKS):
        simulator.check_target(context, inputs)  # a vessel or organ as --target: exit 2
    if args.optimise:
        return _optimise(simulator, context, inputs, params, model, args)
    result = run_simulation(simulator, context, inputs, uncertainty=model, parameters=params,
                            timeout_s=args.timeout)
    return report_result(result, as_json=args.json)


def _optimise(simulator, context, inputs, params, model, args: argparse.Namespace) -> int:
    from surgiplan.simulation.capabilities import OPTIMISE, supports

    if not supports(simulator, OPTIMISE):
        raise BadInputError(f"simulator {args.simulator} cannot optimise (it declares no "
                            f"'optimise' capability)", action="use --simulator ablation")
    result = simulator.optimise(context, inputs, params,
                                uncertainty=model.resolved_for(simulator))
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        print()
        return 0
    print(f"Scored {result.n_evaluated} candidate zones in {result.scoring_time_s:.3f} s "
          f"({result.total_time_s:.1f} s with the Monte Carlo re-check)")
    for c in result.candidates:
        tip = ",".join(f"{v:.1f}" for v in c.inputs.tip_lps)
        entry = ",".join(f"{v:.1f}" for v in c.inputs.shaft_lps)
        setting = " ".join(f"{k}={v:g}" for k, v in c.inputs.settings.items())
        print(f"  #{c.rank} tip {tip} entry {entry} {setting}: coverage "
              f"{c.coverage_pct:.1f} %, margin {c.min_margin_mm:.2f} mm, P(margin >= 5 mm) "
              f"{c.p_margin_ge_5mm:.2f}{'  PATH BREACH' if c.path_breach else ''}")
    for w in result.warnings:
        print(f"  warning: {w}")
    return 0
