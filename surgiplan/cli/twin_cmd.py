"""``surgiplan twin build|info|export``: make a case bundle, describe one, or export its anatomy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError
from surgiplan.io.twin_export import EXPORT_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``twin`` and its sub-commands to the ``surgiplan`` parser."""
    twin = subparsers.add_parser("twin", help="build or inspect a case bundle (.surgiplan)")
    commands = twin.add_subparsers(dest="twin_command", metavar="SUBCOMMAND", required=True)

    build = commands.add_parser("build", help="build a twin from a scan and save a case bundle")
    build.add_argument("path", type=Path, help="DICOM folder/file/DICOMDIR, or NRRD/NIfTI image")
    build.add_argument("--out", type=Path, required=True, help="case bundle to write (.surgiplan)")
    build.add_argument("--series", metavar="UID", help="series instance UID to load")
    build.add_argument("--volume", type=int, metavar="N",
                       help="volume N (1-based) of a series holding several at the same slice "
                       "positions (echoes, time points, b-values, magnitude/phase), as listed "
                       "by 'surgiplan info'")
    build.add_argument("--labels", type=Path, nargs="+", default=[], metavar="FILE",
                       help="label inputs to put on the image grid: NRRD/NIfTI label maps, "
                       "3D Slicer .seg.nrrd, DICOM SEG, DICOM RTSTRUCT, or a folder of "
                       "TotalSegmentator per-structure masks")
    build.add_argument("--label-names", metavar="FILE|KEYWORD",
                       help="label names: a JSON file (surgiplan.labels/1) or a TotalSegmentator "
                       "label set by version: totalsegmentator-v1, totalsegmentator-v2, "
                       "totalsegmentator-v2-mr; default: labels.json next to the label file")
    build.add_argument("--preset", metavar="NAME",
                       help="assisted segmentation preset to run: ct-bone-skin-vessels, "
                       "ct-spine (vertebrae by level, spinal canal) or mr-head (starting "
                       "points to correct)")
    build.add_argument("--include-identifiers", action="store_true",
                       help="also store the patient's name, ID, birth date, the original "
                       "series UIDs and description in the bundle (logged); default: "
                       "de-identified")
    build.set_defaults(func=run_build)

    export = commands.add_parser("export", help="export a case's structures to other tools")
    export.add_argument("case", type=Path, help="case bundle (.surgiplan)")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="seg.nrrd (3D Slicer), nifti / nrrd (label map + labels.json), "
                        "dicom-seg, dicom (the image as a DICOM series in a new --out folder; "
                        "with --source-dicom the PS3.15 de-identified copy of the original "
                        "files), or surface meshes stl / obj / ply / vtp (one file per "
                        "structure in the --out folder)")
    export.add_argument("--out", type=Path, required=True, metavar="PATH",
                        help="file to write (a folder for mesh formats)")
    export.add_argument("--structure", action="append", default=[], metavar="NAME",
                        help="export only this structure (repeatable); default: all")
    export.add_argument("--frame", choices=("LPS", "RAS"), default="LPS",
                        help="mesh coordinates: LPS mm (default, DICOM) or RAS mm (Slicer)")
    export.add_argument("--source-dicom", type=Path, metavar="DIR",
                        help="the case's original DICOM series: dicom-seg references it "
                        "(needed only for cases saved before SurgiPlan kept the source "
                        "reference), dicom de-identifies it")
    export.add_argument("--include-identifiers", action="store_true",
                        help="DICOM exports keep the patient's name, ID, dates and the original "
                        "UIDs (default: PS3.15 de-identified); each such export is logged")
    export.set_defaults(func=run_export)

    info = commands.add_parser("info", help="describe a case bundle")
    info.add_argument("case", type=Path, help="case bundle (.surgiplan)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)

    review = commands.add_parser("review", help="mark automatic structures as reviewed (their "
                                 "quality flag in the case's provenance and report)")
    review.add_argument("case", type=Path, help="case bundle (.surgiplan), updated in place")
    review.add_argument("--structure", action="append", default=[], metavar="NAME",
                        help="an automatic structure you checked (repeatable)")
    review.add_argument("--all", action="store_true", help="every automatic structure")
    review.add_argument("--by", required=True, help="who reviewed them (name or initials)")
    review.set_defaults(func=run_review)


def run_build(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import SUFFIX, save_bundle
    from surgiplan.io.twin_build import build_twin

    out = Path(args.out)
    if out.suffix != SUFFIX:
        raise BadInputError(f"the case file name must end in {SUFFIX}", path=out,
                            action=f"Use e.g. --out case{SUFFIX}")
    twin = build_twin(args.path, series_uid=args.series, labels=args.labels,
                      label_names=args.label_names, preset=args.preset, volume=args.volume)
    save_bundle(twin, out, include_identifiers=args.include_identifiers)
    if args.include_identifiers:
        from surgiplan.io.source_series import log_identified_export

        log_identified_export("case bundle", out)
        print("note: this case holds patient identifiers; it was recorded in SurgiPlan's "
              "identifiers.log", file=sys.stderr)
    summary = twin_summary(twin)
    print(f"Built {out}")
    _print_summary(summary)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle
    from surgiplan.io.mesh_export import MESH_FORMATS
    from surgiplan.io.twin_export import export_twin

    twin = load_bundle(args.case)
    written = export_twin(twin, args.format, args.out, names=args.structure or None,
                          frame=args.frame, source_dicom=args.source_dicom,
                          include_identifiers=args.include_identifiers)
    if args.include_identifiers and args.format.startswith("dicom"):
        print("note: this export holds patient identifiers; it was recorded in SurgiPlan's "
              "identifiers.log", file=sys.stderr)
    frame = args.frame if args.format in MESH_FORMATS else "LPS"
    print(f"Exported {len(written)} file(s) from {args.case} ({args.format}, {frame} mm):")
    for path in written:
        print(f"  {path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle

    summary = twin_summary(load_bundle(args.case))
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        print(f"Case {args.case}")
        _print_summary(summary)
    return 0


def run_review(args: argparse.Namespace) -> int:
    from surgiplan.io.bundle import load_bundle, save_bundle

    twin = load_bundle(args.case)
    auto = twin.provenance.automatic
    names = list(auto) if args.all else list(args.structure)
    if not names:
        raise BadInputError("no structure to mark reviewed", path=args.case,
                            action="Give --structure NAME (repeatable) or --all")
    for name in names:
        if name not in auto:
            known = ", ".join(auto) or "none"
            raise BadInputError(f"{name!r} is not an automatic structure of this case",
                                path=args.case, action=f"Use one of: {known}")
        twin.provenance.mark_reviewed(name, by=args.by)
    save_bundle(twin, args.case)
    left = twin.provenance.unreviewed(twin.segmentation.names())
    print(f"Reviewed by {args.by}: {', '.join(names)}; still unreviewed: "
          f"{', '.join(left) or 'none'}")
    return 0


def twin_summary(twin) -> dict[str, Any]:
    """JSON-ready facts about a twin: image grid (LPS mm), structures, provenance, warnings."""
    geometry, image = twin.geometry, twin.image
    return {
        "patient_ref": twin.patient_ref,
        "image": {
            **geometry.to_json(), "modality": image.modality, "series_uid": image.series_uid,
            "description": image.description, "units": image.units,
        },
        "structures": [
            {"name": s.name, "role": s.role.value, "label": s.label, "layer": s.layer,
             "margin_mm": s.margin_mm, "volume_ml": round(twin.segmentation.volume_ml(s.name), 3)}
            for s in twin.structures
        ],
        "provenance": twin.provenance.to_json(),
        "warnings": list(twin.provenance.import_warnings),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    im = summary["image"]
    size = "x".join(str(n) for n in im["size"])
    spacing = "x".join(f"{v:.4g}" for v in im["spacing_mm"])
    origin = ", ".join(f"{v:.1f}" for v in im["origin_lps"])
    print(f"  patient ref: {summary['patient_ref'] or '(none)'}")
    print(f"  image: {im['modality']} {size} voxels, spacing {spacing} mm, "
          f"origin (LPS) {origin} mm")
    print(f"  structures: {len(summary['structures'])}")
    for s in summary["structures"]:
        print(f"    - {s['name']}: role {s['role']}, label {s['label']} (layer {s['layer']}), "
              f"margin {s['margin_mm']:g} mm, {s['volume_ml']:.2f} ml")
    print(f"  source files: {len(summary['provenance']['source_files_sha256'])}, "
          f"software {summary['provenance']['software']}")
    warnings = summary["warnings"]
    print(f"  warnings: {len(warnings)}")
    for w in warnings:
        print(f"    ! {w}")
