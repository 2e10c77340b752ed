"""``surgiplan info PATH [--json]``: what DICOM data a folder/file/DICOMDIR holds.

Reads headers only (no pixels, no SimpleITK/VTK import). The geometry shown is the grid of the
volume SurgiPlan would build, after any resampling (``plan_series_geometry``), in LPS mm. A
series holding several volumes at the same slice positions (echoes, time points, b-values,
magnitude/phase) lists them under ``volumes``; ``--volume N`` shows volume N's grid.
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
    parser.add_argument("--volume", type=int, metavar="N",
                        help="plan volume N (1-based) of series holding several volumes")
    parser.set_defaults(func=run)


def series_report(series: Any, volume: int | None = None) -> dict[str, Any]:
    """JSON-ready facts of one series, including the planned geometry (of ``volume``, else
    the first volume) and every volume it holds, or the refusal."""
    from surgiplan.errors import BadInputError
    from surgiplan.io.dicom_load import plan_series_volumes

    entry: dict[str, Any] = {
        "series_uid": series.series_uid, "key": series.key, "part": series.part,
        "modality": series.modality, "description": series.description,
        "series_number": series.series_number, "patient_name": series.patient_name,
        "patient_id": series.patient_id, "study_uid": series.study_uid,
        "study_description": series.study_description, "study_date": series.study_date,
        "n_files": series.n_files, "folder": str(series.folder),
    }
    try:
        plan = plan_series_volumes(series)
        if volume is not None and len(plan.volumes) > 1:  # --volume applies where there is
            plan = plan_series_volumes(series, volume)  # a choice
    except BadInputError as exc:
        entry.update(loadable=False, error=str(exc), warnings=list(series.warnings),
                     volumes=[])
        return entry
    entry.update(plan.geometry.to_json())
    entry.update(loadable=True, warnings=list(series.warnings) + list(plan.warnings),
                 volume=plan.volume,
                 volumes=[{"index": v.index, "label": v.label, "n_slices": v.n_slices}
                          for v in plan.volumes])
    return entry


def scan_report(path: str, volume: int | None = None) -> dict[str, Any]:
    from surgiplan.io.dicom_scan import scan_dicom

    scan = scan_dicom(path)
    return {
        "path": str(scan.root),
        "series": [series_report(s, volume) for s in scan.series],
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
            if len(s["volumes"]) > 1:
                print(f"    {len(s['volumes'])} volumes (pick with --volume N), showing "
                      f"{s['volume']}:")
                for v in s["volumes"]:
                    print(f"      {v['index']}: {v['label']} ({v['n_slices']} slices)")
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

    report = scan_report(args.path, args.volume)
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
