"""``surgiplan simulators list|validate``: the installed simulator plug-ins and their health.

``list`` reads each plug-in's manifest when its entry point names one and imports no simulator
module. ``validate`` imports every simulator (third-party ones in a child process), checks it
against the contract and its manifest, and exits 0 when all honour both, 1 otherwise (each with
its reason; a manifest that differs from its simulator is a WARNING); it checks third-party
plug-ins afresh, where ``list`` may use the cached outcome of their last check (kept until
their files change). See :mod:`surgiplan.simulation.discovery`.
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
            caps = f"; capabilities: {', '.join(e.spec.capabilities)}" \
                if e.spec.capabilities else ""
            print(f"{e.spec.id} {e.spec.version} [{e.spec.kind}] {e.spec.title} "
                  f"({e.distribution}{where}{caps})")
        else:
            print(f"DISABLED {e.name} ({e.distribution}): {e.reason}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from surgiplan.simulation.discovery import discover, verify

    entries = discover(refresh=True)  # check third-party plug-ins again, not from the cache
    for e in entries:
        verify(e)  # a manifest's simulator is imported and compared with its manifest
        ok = e.enabled and not e.problems
        name = e.spec.id if e.spec is not None else e.name
        status = "ok      " if ok else "WARNING " if e.enabled else "DISABLED"
        print(f"{status} {name} ({e.value}): "
              f"{'honours the simulator contract' if ok else e.reason}")
    print(f"{sum(e.enabled for e in entries)} of {len(entries)} plug-ins enabled")
    return 0 if all(e.enabled and not e.problems for e in entries) else 1
