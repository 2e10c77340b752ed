"""``surgiplan db import|list|path|remove|check``: the local DICOM database (SQLite index of what
was imported or retrieved). Imports are indexed in place and idempotent.
Exit codes: 0 success; 2 bad input (one line)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("db", help="the local DICOM database (import, list, remove)",
                              description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="index the DICOM files of a folder, file or DICOMDIR")
    imp.add_argument("path", type=Path)
    ls = sub.add_parser("list", help="patients -> studies -> series")
    path = sub.add_parser("path", help="print the files of a series (for 'twin build')")
    path.add_argument("series_uid")
    rm = sub.add_parser("remove", help="forget a series (deletes retrieved copies)")
    rm.add_argument("series_uid")
    chk = sub.add_parser("check", help="SQLite integrity and files missing on disk")
    for q, func in ((imp, run_import), (ls, run_list), (path, run_path), (rm, run_remove),
                    (chk, run_check)):
        q.add_argument("--db", type=Path, help="database folder (default: the user's)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        q.set_defaults(func=func)


def _open(args: argparse.Namespace):
    from surgiplan.db.database import LocalDatabase

    return LocalDatabase(args.db)


def _print(args: argparse.Namespace, data, text: str) -> None:
    print(json.dumps(data, indent=1) if args.json else text)


def run_import(args: argparse.Namespace) -> int:
    with _open(args) as db:
        summary = db.import_path(args.path)
    lines = [f"{summary.added} new, {summary.already} already in the database, "
             f"{len(summary.series)} series"]
    lines += [f"  problem: {p}" for p in summary.problems]
    lines += [f"  warning ({uid}): {w}" for uid, ws in summary.warnings.items() for w in ws]
    _print(args, summary.to_json(), "\n".join(lines))
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as db:
        tree = db.tree()
    lines = []
    for p in tree:
        lines.append(f"{p['patient_name'] or '(no name)'}  [{p['patient_id']}]")
        for st in p["studies"]:
            lines.append(f"  study {st['study_date']} {st['description']}  {st['study_uid']}")
            for se in st["series"]:
                flag = "  (!)" if se["warnings"] else ""
                lines.append(f"    {se['modality']} {se['description']} ({se['instances']} "
                             f"files, {se['origin']}){flag}  {se['series_uid']}")
    _print(args, {"patients": tree}, "\n".join(lines) or "the local database is empty")
    return 0


def run_path(args: argparse.Namespace) -> int:
    with _open(args) as db:
        files = db.series_files(args.series_uid)
    _print(args, [str(f) for f in files], "\n".join(str(f) for f in files))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _open(args) as db:
        n = db.remove_series(args.series_uid)
    _print(args, {"removed_instances": n}, f"removed {n} instance(s)")
    return 0


def run_check(args: argparse.Namespace) -> int:
    with _open(args) as db:
        data = {"integrity": db.integrity(), "missing_files": [str(p) for p in
                                                               db.missing_files()]}
    _print(args, data, f"integrity: {data['integrity']}; {len(data['missing_files'])} "
           "indexed file(s) missing on disk")
    return 0 if data["integrity"] == "ok" else 2
