"""``--param NAME=VALUE`` (repeatable): set any parameter a simulator declares.

The value is read as the parameter's declared type (float, int, bool: true/false/yes/no/1/0,
choice: one of its choices) and checked against its range; an unknown name or a bad value is
bad input (one line, exit code 2). ``--param`` wins over a command's own option for the same
parameter (e.g. ``simulate resection --param liver_condition=cirrhosis``).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from surgiplan.errors import BadInputError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def name_value(text: str) -> tuple[str, str]:
    """``"name=value"`` -> (name, value); ``argparse`` reports a bad one in one line."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def add_param_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--param NAME=VALUE`` (repeatable) to ``parser``."""
    parser.add_argument("--param", type=name_value, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="set a parameter the simulator declares (repeatable; see "
                             "`surgiplan simulators list --json` for names, types and ranges)")


def _typed(param: Any, value: str) -> Any:
    """``value`` (text) as ``param``'s declared type; ValueError saying what was expected."""
    kind = str(param.type)
    if kind == "bool":
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("expected true or false")
    if kind == "choice":
        return value
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number{f' in {param.unit}' if param.unit else ''}"
                         ) from None
    if kind == "int":
        if not math.isfinite(number) or number != int(number):
            raise ValueError("expected a whole number")
        return int(number)
    return number


def declared_parameters(spec: Any, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The ``--param`` pairs as typed values of ``spec``'s parameters (ranges not yet
    checked); ``BadInputError`` for an unknown name, a repeated one or a value of the wrong
    type."""
    keys = [p.key for p in spec.parameters]
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name not in keys:
            raise BadInputError(f"--param {name}: simulator {spec.id} has no parameter "
                                f"{name!r} (its parameters: {', '.join(keys) or 'none'})",
                                action="use one of its parameter names")
        if name in out:
            raise BadInputError(f"--param {name} is given twice", action="give it once")
        try:
            out[name] = _typed(spec.parameter(name), value)
        except ValueError as exc:
            raise BadInputError(f"--param {name}={value}: {exc}",
                                action="see `surgiplan simulators list --json`") from None
    return out


def cli_parameters(simulator: Any, args: argparse.Namespace,
                   base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checked parameters of a run: ``base`` (the command's own options) overlaid with
    ``--param``, defaults filled in; ``BadInputError`` naming the parameter when a value is
    unknown, of the wrong type or out of its range."""
    from surgiplan.simulation.spec import check_value, validate_parameters

    spec = simulator.spec
    given = declared_parameters(spec, list(getattr(args, "param", None) or []))
    for name, value in given.items():
        try:
            check_value(spec.parameter(name), value)
        except ValueError as exc:
            raise BadInputError(f"--param {name}: {exc}",
                                action="give a value in the stated range") from None
    return validate_parameters(spec, {**(base or {}), **given})
