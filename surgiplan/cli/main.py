"""Entry point of the ``surgiplan`` command: argument parsing and exit codes.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 1 internal error (a
message and the path of a log file holding the traceback); 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import surgiplan
from surgiplan.cli.point_args import join_point_values, list_options
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


def log_dir() -> Path:
    """Folder for crash logs (platform user log dir)."""
    import platformdirs

    return Path(platformdirs.user_log_dir("surgiplan", appauthor=False))


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to a log file; return its path."""
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"crash-{stamp}.log"
        path.write_text(
            f"SurgiPlan {surgiplan.__version__}\n{' '.join(sys.argv)}\n\n"
            + "".join(traceback.format_exception(exc)),
            encoding="utf-8",
        )
        return path
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(join_point_values(raw, list_options(parser)))
    if not getattr(args, "func", None):
        if args.command is None:
            from surgiplan.ui.app import run  # no command: the desktop app

            return run([])
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
        path = write_crash_log(exc)
        where = f" Details: {path}" if path else ""
        print(f"surgiplan: internal error: {type(exc).__name__}: {exc}.{where}", file=sys.stderr)
        return EXIT_INTERNAL

