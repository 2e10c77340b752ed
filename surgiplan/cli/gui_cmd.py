"""``surgiplan gui [PATH|CASE.surgiplan] [--layout ...] [--screenshot OUT.png] [--exit]
[--review [--plan NAME]]``.

Qt is imported only when the command runs, so ``surgiplan --help`` and the other commands stay
free of it.
"""

from __future__ import annotations

import argparse

LAYOUT_CHOICES = ("four-up", "slices+3d", "axial", "coronal", "sagittal", "3d")


def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="DICOM folder, file, DICOMDIR or .surgiplan case")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="four-up",
                        help="view layout (default four-up)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="after loading and rendering, write the window as a PNG")
    parser.add_argument("--exit", action="store_true",
                        help="exit after loading (and the screenshot); exit code 2 on bad input")
    parser.add_argument("--review", action="store_true",
                        help="open the case read-only in OR review mode (keyboard step-through)")
    parser.add_argument("--plan", metavar="NAME",
                        help="with --review: the plan to review (default: the approved one)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gui", help="open the desktop app (optionally on a scan or case)",
        description="Open the SurgiPlan desktop app. With --screenshot and --exit it loads, "
                    "renders, writes the PNG and exits 0 (2 with the message on bad input).")
    add_gui_arguments(parser)
    parser.set_defaults(func=run_gui)


def run_gui(args: argparse.Namespace) -> int:
    """Open the app as the parsed ``gui`` arguments say; returns the exit code."""
    from surgiplan.ui.shell.app import run_app

    return run_app(args.path, layout=args.layout, screenshot=args.screenshot,
                   exit_after=args.exit, review=args.review, plan=args.plan)
