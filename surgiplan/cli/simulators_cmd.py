"""``surgiplan simulators list|validate``: the installed simulator plug-ins and their health.

``validate`` exits 0 when every plug-in is enabled, 1 when any is disabled (each with its
reason); it checks third-party plug-ins afresh, where ``list`` may use the cached outcome of
their last check (kept until their files change). Third-party plug-ins are checked and run in
a child process (see :mod:`surgiplan.simulation.discovery`).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulators`` and its sub-commands to the ``surgiplan`` parser."""
    sims = subparsers.add_parser("simulators", help="list or validate simulator plug-ins")
    commands = sims.add_subparsers(dest="simulators_command", metavar="SUBCOMMAND",
                                   required=True)
    listing = commands.add_parser("list", help="installed simulators (disabled ones too)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=run_list)
    validate = commands.add_parser("validate", help="check every plug-in against the contract")
    validate.set_defaults(func=run_validate)


def run_list(args: argparse.Namespace) -> int:
    from surgiplan.simulation.discovery import discover

    entries = discover()
    if args.json:
        json.dump([e.to_json() for e in entries], sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print("No simulator plug-ins installed (e.g. pip install -e plugins/trajectory).")
    for e in entries:
        if e.spec is not None and e.enabled:
            where = ", third-party: runs isolated" if e.isolated else ""
            print(f"{e.spec.id} {e.spec.version} [{e.spec.kind}] {e.spec.title} "
                  f"({e.distribution}{where})")
        else:
            print(f"DISABLED {e.name} ({e.distribution}): {e.reason}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from surgiplan.simulation.discovery import discover

    entries = discover(refresh=True)  # check third-party plug-ins again, not from the cache
    for e in entries:
        name = e.spec.id if e.spec is not None else e.name
        print(f"{'ok      ' if e.enabled else 'DISABLED'} {name} ({e.value}): "
              f"{'honours the simulator contract' if e.enabled else e.reason}")
    print(f"{sum(e.enabled for e in entries)} of {len(entries)} plug-ins enabled")
    return 0 if all(e.enabled for e in entries) else 1
