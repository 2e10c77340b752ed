"""``surgiplan info PATH [--json]``: what DICOM data a folder/file/DICOMDIR holds.

Reads headers only (no pixels, no SimpleITK/VTK import). The geometry shown is the grid of the
volume SurgiPlan would build, after any resampling (``plan_series_geometry``), in LPS mm.
Exit code 2 with one line on stderr when nothing loadable is found.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="list the DICOM series in a folder, file or DICOMDIR (headers only)",
        description="List DICOM series with the geometry (LPS mm) SurgiPlan would load.")
    parser.add_argument("path", help="folder (scanned recursively), DICOM file or DICOMDIR")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def series_report(series: Any) -> dict[str, Any]:
    """JSON-ready facts of one series, including the planned geometry or the refusal."""
    from surgiplan.errors import BadInputError
    from surgiplan.io.dicom_load import plan_series_geometry

    entry: dict[str, Any] = {
        "series_uid": series.series_uid, "key": series.key, "part": series.part,
        "modality": series.modality, "description": series.description,
        "series_number": series.series_number, "patient_name": series.patient_name,
        "patient_id": series.patient_id, "study_uid": series.study_uid,
        "study_description": series.study_description, "study_date": series.study_date,
        "n_files": series.n_files, "folder": str(series.folder),
    }
    try:
        geometry, warnings = plan_series_geometry(series)
    except BadInputError as exc:
        entry.update(loadable=False, error=str(exc), warnings=list(series.warnings))
        return entry
    entry.update(geometry.to_json())
    entry.update(loadable=True, warnings=list(series.warnings) + warnings)
    return entry


def scan_report(path: str) -> dict[str, Any]:
    from surgiplan.io.dicom_scan import scan_dicom

    scan = scan_dicom(path)
    return {
        "path": str(scan.root),
        "series": [series_report(s) for s in scan.series],
        "non_image": [{"path": str(o.path), "kind": o.kind, "sop_class": o.sop_class,
                       "series_uid": o.series_uid, "description": o.description}
                      for o in scan.non_image],
        "problems": [{"path": str(p.path), "reason": p.reason} for p in scan.problems],
        "summary": scan.summary(),
    }


def _print_table(report: dict[str, Any]) -> None:
    print(f"{report['path']}: {report['summary']}")
    for s in report["series"]:
        head = f"- {s['modality']:<3} {s['description'] or '(no description)'}  [{s['key']}]"
        print(head)
        print(f"    patient {s['patient_name']} ({s['patient_id']}), study "
              f"{s['study_description'] or s['study_uid']} {s['study_date']}, "
              f"{s['n_files']} files")
        if s["loadable"]:
            size = "x".join(str(v) for v in s["size"])
            spacing = " x ".join(f"{v:.4g}" for v in s["spacing_mm"])
            origin = ", ".join(f"{v:.2f}" for v in s["origin_lps"])
            print(f"    {size} voxels, spacing {spacing} mm, origin LPS ({origin}) mm")
        else:
            print(f"    NOT LOADABLE: {s['error']}")
        for w in s["warnings"]:
            print(f"    warning: {w}")
    for o in report["non_image"]:
        print(f"- {o['kind']} (not a volume): {o['path']}")
    for p in report["problems"]:
        print(f"- problem: {p['path']}: {p['reason']}")


def run(args: argparse.Namespace) -> int:
    from surgiplan.errors import BadInputError

    report = scan_report(args.path)
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    sys.stdout.flush()
    if not any(s["loadable"] for s in report["series"]):
        errors = [s["error"] for s in report["series"]]
        found = report["summary"] if not errors else errors[0]
        raise BadInputError(f"no loadable image series ({found})", path=args.path,
                            action="Choose a folder holding a CT or MR DICOM series")
    return 0
