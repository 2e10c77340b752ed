"""Entry point of the ``surgiplan`` command: argument parsing and exit codes.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 1 internal error (a
message and the path of a log file holding the traceback); 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import surgiplan
from surgiplan.cli.point_args import join_point_values, list_options
from surgiplan.crash_log import write_crash_log
from surgiplan.errors import BadInputError, CancelledError

# Sub-command modules; each has ``register(subparsers)`` that sets ``func`` on its parser.
COMMAND_MODULES = (
    "surgiplan.cli.info_cmd",
    "surgiplan.cli.twin_cmd",
    "surgiplan.cli.sample_cmd",
    "surgiplan.cli.gui_cmd",
    "surgiplan.cli.simulate_cmd",
    "surgiplan.cli.simulators_cmd",
    "surgiplan.cli.plans_cmd",
    "surgiplan.cli.score_cmd",
    "surgiplan.cli.report_cmd",
    "surgiplan.cli.training_cmd",
    "surgiplan.cli.pacs_cmd",
    "surgiplan.cli.db_cmd",
    "surgiplan.cli.cohort_cmd",
    "surgiplan.cli.series_cmd",
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surgiplan",
        description="SurgiPlan surgical planning workstation. All coordinates are LPS mm.",
    )
    parser.add_argument("--version", action="version", version=f"SurgiPlan {surgiplan.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _user_os_error(exc: BaseException) -> BadInputError | None:
    """A full disk, a read-only folder, a parent that is a file: the user's situation."""
    if not isinstance(exc, OSError):
        return None
    from surgiplan.io.atomic import os_error_to_bad_input

    return os_error_to_bad_input(exc, Path(exc.filename or "."))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(join_point_values(raw, list_options(parser)))
    if not getattr(args, "func", None):
        if args.command is None:
            from surgiplan.cli.gui_cmd import run_gui  # no command: the desktop app

            return run_gui(parser.parse_args(["gui"]))
        parser.print_help()
        return EXIT_OK
    try:
        return int(args.func(args) or EXIT_OK)
    except BadInputError as exc:
        print(f"surgiplan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CancelledError, KeyboardInterrupt):
        print("surgiplan: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        friendly = _user_os_error(exc)
        if friendly is not None:
            print(f"surgiplan: {friendly}", file=sys.stderr)
            return EXIT_BAD_INPUT
        path = write_crash_log(exc)
        where = f" Details: {path}" if path else ""
        print(f"surgiplan: internal error: {type(exc).__name__}: {exc}.{where}", file=sys.stderr)
        return EXIT_INTERNAL

