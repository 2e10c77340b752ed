"""``surgiplan simulate resection CASE --organ STRUCTURE [--target STRUCTURE --margin-mm M]
[--plane PX,PY,PZ,NX,NY,NZ] [--json]``: resected and remnant volumes, future remnant %%, margin.

The plane (LPS mm: a point, then a normal) removes the side its normal points to. Runs the
``resection`` simulator plug-in (``plugins/resection``) through the runner; the JSON has the
same shape as ``simulate trajectory``'s.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from surgiplan.errors import BadInputError


def plane_lps(text: str) -> tuple[float, ...]:
    """``"PX,PY,PZ,NX,NY,NZ"`` (LPS mm, then a normal) -> 6 floats."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 6 or not all(math.isfinite(v) for v in values) or not any(values[3:]):
        raise argparse.ArgumentTypeError(
            f"expected PX,PY,PZ,NX,NY,NZ (a point in LPS mm and a non-zero normal), got {text!r}")
    return values


def plane_mesh_lps(plane: tuple[float, ...], bounds_lps) -> tuple[tuple, tuple]:
    """Two triangles of the plane covering the LPS box ``bounds_lps``, normals along its
    normal (the side the simulator removes)."""
    import numpy as np

    point, normal = np.asarray(plane[:3]), np.asarray(plane[3:]) / np.linalg.norm(plane[3:])
    u = np.cross(normal, np.eye(3)[int(np.argmin(np.abs(normal)))])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    box = np.asarray(bounds_lps, float)
    half = float(np.linalg.norm(box[1] - box[0])) + float(np.linalg.norm(point - box.mean(0)))
    corners = [point + half * (a * u + b * v) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    return tuple(tuple(float(x) for x in c) for c in corners), ((0, 1, 2), (0, 2, 3))


def register_kind(kinds: argparse._SubParsersAction) -> None:
    """Add ``simulate resection`` to the ``simulate`` sub-commands."""
    from surgiplan.cli.simulate_cmd import _add_common_args, add_sampling_args

    p = kinds.add_parser("resection", help="resected/remnant volumes, remnant %%, margin, vessels")
    p.add_argument("case", type=Path, help="case bundle (.surgiplan) or phantom folder")
    p.add_argument("--organ", required=True, metavar="STRUCTURE", help="the organ resected")
    p.add_argument("--target", metavar="STRUCTURE", help="the target (tumour) to remove")
    p.add_argument("--margin-mm", type=float, default=0.0, metavar="M",
                   help="margin around the target in mm (default 0)")
    p.add_argument("--plane", type=plane_lps, metavar="PX,PY,PZ,NX,NY,NZ",
                   help="cutting plane, LPS mm; removes the side the normal points to")
    p.add_argument("--specimen-rule", default="auto",
                   choices=("auto", "cut_side", "target_margin", "target_margin_on_cut_side"),
                   help="what is removed (default auto: the plane's side, else target+margin)")
    p.add_argument("--liver-condition", default="normal",
                   choices=("normal", "chemotherapy", "cirrhosis"),
                   help="minimum future remnant 20 / 30 / 40 %% (default normal)")
    add_sampling_args(p, boundary_help="segmentation-boundary SD in mm (default one voxel)")
    p.add_argument("--cut-sd-mm", type=float, default=None, metavar="S",
                   help="SD in mm of the transection's placement along its normal (default: "
                        "the resection error profile's, 0: not included)")
    _add_common_args(p)
    p.set_defaults(func=run_resection, simulator="resection")


def _inputs(args: argparse.Namespace, context):
    from pydantic import ValidationError

    from surgiplan.simulation import ResectionInput

    vertices, faces = (), ()
    if args.plane is not None:
        vertices, faces = plane_mesh_lps(args.plane, context.geometry.bounds_lps())
    try:
        return ResectionInput(organ_structure=args.organ, target_structure=args.target,
                              margin_mm=args.margin_mm, cut_vertices_lps=vertices,
                              cut_faces=faces)
    except ValidationError as exc:
        raise BadInputError(f"bad resection: {exc.errors()[0]['msg']}",
                            action="give --target and/or --plane, and a margin >= 0") from exc


def _check_roles(context, args: argparse.Namespace) -> None:
    """The organ must have the role organ and the target the role target (exit code 2)."""
    from surgiplan.model.structures import Role

    for name, role, option in ((args.organ, Role.ORGAN, "--organ"),
                               (args.target, Role.TARGET, "--target")):
        if name is None:
            continue
        actual = Role(context.structure(name).role)
        if actual is not role:
            have = ", ".join(s.name for s in context.by_role(role)) or "none"
            raise BadInputError(f"{option} {name!r} has the role {actual}, not {role}",
                                path=args.case,
                                action=f"name a structure with the role {role} ({have}), or "
                                       f"set {name!r}'s role to {role} in the twin")


def run_resection(args: argparse.Namespace) -> int:
    from surgiplan.cli.param_args import cli_parameters
    from surgiplan.cli.simulate_cmd import _context, report_result
    from surgiplan.simulation import UncertaintyModel, load_simulator
    from surgiplan.simulation.runner import run_simulation

    simulator = load_simulator(args.simulator)
    params = cli_parameters(simulator, args, {"specimen_rule": args.specimen_rule,
                                              "liver_condition": args.liver_condition})
    model = UncertaintyModel(boundary_sd_mm=args.boundary_sd_mm, samples=args.samples,
                             seed=args.seed, target_sd_mm=args.cut_sd_mm)
    context = _context(args.case)
    for name in (args.organ, args.target):
        if name is not None and name not in {s.name for s in context.structures}:
            raise BadInputError(f"no structure named {name!r} (have "
                                f"{', '.join(s.name for s in context.structures)})",
                                path=args.case, action="use one of the case's structure names")
    _check_roles(context, args)
    result = run_simulation(simulator, context, _inputs(args, context), parameters=params,
                            uncertainty=model, timeout_s=args.timeout)
    return report_result(result, as_json=args.json)
