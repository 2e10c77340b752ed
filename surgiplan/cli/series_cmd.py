"""``surgiplan series``: further scans of a twin's patient, registered to its reference (LPS mm).

``add`` loads a scan, registers it (rigid / affine by Mattes mutual information, optionally
then B-spline) and stores it with its transform in the case; ``list`` shows them; ``register``
redoes a registration; ``landmarks`` scores one with landmark pairs; ``structure`` brings a
label map drawn on a series into the twin; ``change`` compares a structure at two time points;
``export-reg`` / ``import-reg`` write and read DICOM Spatial Registration objects.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError


def _case_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("case", type=Path, help="case bundle (.surgiplan)")


def _register_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--register", choices=("rigid", "affine", "none"), default="rigid",
                   help="rigid (default) or affine, Mattes mutual information; none: the scan "
                   "shares the reference's frame of reference (same scanner session)")
    p.add_argument("--deformable", action="store_true",
                   help="then refine with a B-spline deformation (follow-ups)")
    p.add_argument("--grid-mm", type=float, default=40.0,
                   help="B-spline control-point spacing, mm (default 40)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``series`` and its sub-commands to the ``surgiplan`` parser."""
    series = subparsers.add_parser(
        "series", help="further scans of the patient, registered to the case's reference")
    commands = series.add_subparsers(dest="series_command", metavar="SUBCOMMAND", required=True)

    add = commands.add_parser("add", help="add a scan to a case, registered to its reference")
    _case_arg(add)
    add.add_argument("image", type=Path, help="DICOM folder/file, or NRRD/NIfTI image")
    add.add_argument("--key", required=True, help="short name of the series, e.g. mr-t1")
    add.add_argument("--role", default="", help="what it is for: anatomy, vessels, follow-up...")
    add.add_argument("--acquired", default="", help="acquisition date (YYYY-MM-DD)")
    add.add_argument("--dicom-series", metavar="UID", help="series instance UID to load")
    _register_args(add)
    add.set_defaults(func=run_add)

    redo = commands.add_parser("register", help="register a series of a case again")
    _case_arg(redo)
    redo.add_argument("key", help="series key")
    _register_args(redo)
    redo.set_defaults(func=run_register)

    show = commands.add_parser("list", help="the series of a case and their transforms")
    _case_arg(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=run_list)

    marks = commands.add_parser("landmarks", help="landmark error (TRE) of a series' transform")
    _case_arg(marks)
    marks.add_argument("key", help="series key")
    marks.add_argument("--pairs", type=Path, required=True, metavar="FILE",
                       help='JSON {"reference_lps": [[x,y,z],...], "series_lps": [[x,y,z],...]}'
                       " (mm; the same points, picked on the reference and on the series)")
    marks.add_argument("--save", action="store_true", help="store the error with the transform")
    marks.add_argument("--json", action="store_true", help="print JSON instead of text")
    marks.set_defaults(func=run_landmarks)

    struct = commands.add_parser("structure",
                                 help="bring a label map drawn on a series into the twin")
    _case_arg(struct)
    struct.add_argument("key", help="series key the label map is drawn on")
    struct.add_argument("labels", type=Path, help="NRRD/NIfTI label map on the series' grid")
    struct.add_argument("--label", type=int, default=1, help="label value (default 1)")
    struct.add_argument("--name", required=True, help="name of the new structure")
    struct.add_argument("--role", default="other",
                        help="target, critical, bone, organ, skin or other")
    struct.set_defaults(func=run_structure)

    change = commands.add_parser("change", help="a structure at baseline vs follow-up")
    _case_arg(change)
    change.add_argument("--baseline", required=True, help="structure at baseline")
    change.add_argument("--followup", required=True,
                        help="the same structure at follow-up (brought in by 'structure')")
    change.add_argument("--json", action="store_true", help="print JSON instead of text")
    change.set_defaults(func=run_change)

    export = commands.add_parser("export-reg", help="write a DICOM Spatial Registration object")
    _case_arg(export)
    export.add_argument("key", help="series key")
    export.add_argument("--series-dicom", type=Path, required=True, metavar="DIR",
                        help="the series' DICOM files (their UIDs are referenced)")
    export.add_argument("--reference-dicom", type=Path, metavar="DIR",
                        help="the reference's DICOM files (default: the case's stored source)")
    export.add_argument("--out", type=Path, required=True, help="file to write (.dcm)")
    export.add_argument("--include-identifiers", action="store_true",
                        help="keep the original UIDs and patient attributes (logged); "
                        "default: PS3.15 de-identified")
    export.set_defaults(func=run_export_reg)

    imp = commands.add_parser("import-reg", help="take a series' transform from a DICOM "
                              "Spatial Registration object")
    _case_arg(imp)
    imp.add_argument("key", help="series key")
    imp.add_argument("registration", type=Path, help="Spatial Registration object (.dcm)")
    imp.add_argument("--series-dicom", type=Path, metavar="DIR",
                     help="the series' DICOM files (to know its frame of reference); default: "
                     "the object's only non-identity matrix")
    imp.set_defaults(func=run_import_reg)


# ---------------------------------------------------------------------------- helpers
def _load(case: Path) -> Any:
    from surgiplan.io.bundle import load_bundle

    return load_bundle(case)


def _save(twin: Any, case: Path) -> None:
    from surgiplan.io.bundle import save_bundle

    save_bundle(twin, case)


def _series(twin: Any, key: str, case: Path) -> Any:
    try:
        return twin.series_by_key(key)
    except KeyError as exc:
        raise BadInputError(str(exc.args[0]), path=case,
                            action="See 'surgiplan series list CASE'") from None


def _progress(args: argparse.Namespace) -> Any:
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    return lambda fraction, text: print(f"\r{fraction:4.0%} {text[:70]:<70}", end="",
                                        file=sys.stderr, flush=True)


def _register(twin: Any, image: Any, args: argparse.Namespace) -> Any:
    from surgiplan.model.series_transform import SeriesTransform
    from surgiplan.registration.engine import RegistrationSettings, metric_for, register_volumes

    if args.register == "none":
        if args.deformable:
            raise BadInputError("--deformable needs a registration",
                                action="Use --register rigid or affine with --deformable")
        return SeriesTransform(method="identity: same frame of reference (stated by the user)")
    progress, metric = _progress(args), metric_for(twin.image, image)
    result = register_volumes(twin.image, image,
                              RegistrationSettings(kind=args.register, metric=metric),
                              progress=progress)
    transform = result.transform
    if args.deformable:
        from surgiplan.registration.deformable import DeformableSettings, register_deformable

        transform = register_deformable(twin.image, image, transform,
                                        DeformableSettings(grid_spacing_mm=args.grid_mm,
                                                           metric=metric),
                                        progress=progress)
    if progress is not None:
        print(file=sys.stderr)
    return transform.with_quality(seconds=result.seconds)


def _describe(entry: Any) -> dict[str, Any]:
    t = entry.transform
    return {"key": entry.key, "role": entry.role, "acquired": entry.acquired,
            "modality": entry.image.modality, "size": list(entry.image.geometry.size),
            "spacing_mm": list(entry.image.geometry.spacing_mm),
            "transform": {**t.to_json(), "rotation_deg": t.rotation_deg(),
                          "translation_mm": t.translation_mm()}}


def _print_series(d: dict[str, Any]) -> None:
    t = d["transform"]
    q = t["quality"]
    size = "x".join(map(str, d["size"]))
    spacing = "x".join(f"{v:g}" for v in d["spacing_mm"])
    print(f"{d['key']}: {d['modality']} {size} at {spacing} mm"
          f"{', ' + d['role'] if d['role'] else ''}{', ' + d['acquired'] if d['acquired'] else ''}")
    print(f"  transform: {t['kind']} ({t['method']}); rotation {t['rotation_deg']:.2f} deg, "
          f"translation {t['translation_mm']:.2f} mm")
    if "metric_after" in q:
        print(f"  {q['metric']}: {q['metric_before']:.4f} -> {q['metric_after']:.4f} "
              "(lower is better)")
    if "tre_mean_mm" in q:
        print(f"  landmark error: mean {q['tre_mean_mm']:.2f} mm, max {q['tre_max_mm']:.2f} mm "
              f"({q['landmark_pairs']} pairs)")
    else:
        print("  landmark error: not measured (no landmark pairs given)")


def _emit(args: argparse.Namespace, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        _print_series(data)


# ---------------------------------------------------------------------------- commands
def run_add(args: argparse.Namespace) -> int:
    from surgiplan.io.twin_build import load_image
    from surgiplan.twin import TwinSeries

    twin = _load(args.case)
    if any(s.key == args.key for s in twin.series):
        raise BadInputError(f"the case has a series {args.key!r} already", path=args.case,
                            action="Choose another --key, or use 'surgiplan series register'")
    try:
        entry = TwinSeries(key=args.key, image=load_image(args.image,
                                                           series_uid=args.dicom_series),
                           role=args.role, acquired=args.acquired)
    except ValueError as exc:
        raise BadInputError(str(exc), action="Choose another --key") from None
    entry.transform = _register(twin, entry.image, args)
    twin.add_series(entry)
    twin.provenance.notes.append(f"series {args.key!r} added from {args.image.name}: "
                                 f"{entry.transform.method}")
    _save(twin, args.case)
    _emit(args, _describe(entry))
    return 0


def run_register(args: argparse.Namespace) -> int:
    twin = _load(args.case)
    entry = _series(twin, args.key, args.case)
    twin.set_series_transform(args.key, _register(twin, entry.image, args))
    twin.provenance.notes.append(f"series {args.key!r} registered again: "
                                 f"{entry.transform.method}")
    _save(twin, args.case)
    _emit(args, _describe(entry))
    return 0


def run_list(args: argparse.Namespace) -> int:
    twin = _load(args.case)
    data = [_describe(e) for e in twin.series]
    if args.json:
        print(json.dumps({"reference": {"modality": twin.image.modality,
                                        "size": list(twin.geometry.size)}, "series": data},
                         indent=1))
        return 0
    size = "x".join(map(str, twin.geometry.size))
    print(f"reference: {twin.image.modality} {size} (the structures' grid, LPS mm)")
    if not data:
        print("no further series (add one with 'surgiplan series add')")
    for d in data:
        _print_series(d)
    return 0


def _points(data: Any, key: str, path: Path) -> Any:
    import numpy as np

    try:
        points = np.asarray(data[key], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise BadInputError(f"{key!r} must be a list of [x, y, z] points in mm", path=path,
                            action='Write {"reference_lps": [[x,y,z],...], "series_lps": [...]}'
                            ) from None
    if points.ndim != 2 or points.shape[1] != 3 or not np.all(np.isfinite(points)):
        raise BadInputError(f"{key!r} must be a list of [x, y, z] points in mm", path=path,
                            action="Give three finite numbers per point")
    return points


def run_landmarks(args: argparse.Namespace) -> int:
    from surgiplan.registration.quality import landmark_error

    try:
        data = json.loads(args.pairs.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read the landmark pairs ({exc})", path=args.pairs,
                            action="Give a JSON file with reference_lps and series_lps") from None
    twin = _load(args.case)
    entry = _series(twin, args.key, args.case)
    error = landmark_error(entry.transform, _points(data, "reference_lps", args.pairs),
                           _points(data, "series_lps", args.pairs))
    if args.save:
        twin.set_series_transform(args.key, entry.transform.with_quality(**error.to_json()))
        _save(twin, args.case)
    if args.json:
        print(json.dumps({**error.to_json(), "per_pair_mm": list(error.per_pair_mm)}))
    else:
        print(f"landmark error of {args.key!r}: mean {error.mean_mm:.2f} mm, max "
              f"{error.max_mm:.2f} mm over {error.n} pairs")
    return 0


def run_structure(args: argparse.Namespace) -> int:
    from surgiplan.io.labelmaps import read_volume_file
    from surgiplan.registration.carry import add_structure_from_series

    twin = _load(args.case)
    entry = _series(twin, args.key, args.case)
    array, geometry = read_volume_file(args.labels)
    if not geometry.same_grid(entry.image.geometry):
        raise BadInputError(f"the label map is not on the grid of series {args.key!r}",
                            path=args.labels, action="Draw it on that series' image")
    mask = array == args.label
    if not mask.any():
        raise BadInputError(f"the label map holds no voxel of label {args.label}",
                            path=args.labels, action="Choose the label with --label")
    try:
        add_structure_from_series(twin, args.key, args.name, mask, role=args.role)
    except ValueError as exc:
        raise BadInputError(str(exc), path=args.case, action="Choose another --name or --role"
                            ) from None
    _save(twin, args.case)
    print(f"structure {args.name!r} added ({twin.volume_ml(args.name):.2f} ml on the "
          f"reference grid), carried from series {args.key!r}")
    return 0


def run_change(args: argparse.Namespace) -> int:
    from surgiplan.registration.longitudinal import structure_change

    twin = _load(args.case)
    masks = []
    for name in (args.baseline, args.followup):
        if name not in twin.segmentation.names():
            raise BadInputError(f"the case has no structure {name!r}", path=args.case,
                                action="See 'surgiplan twin info CASE'")
        masks.append(twin.segmentation.mask(name))
    change = structure_change(args.baseline, masks[0], masks[1], twin.geometry)
    if args.json:
        print(json.dumps(change.to_json(), indent=1))
        return 0
    pct = change.change_percent
    print(f"{args.baseline} -> {args.followup}: {change.baseline_ml:.2f} ml -> "
          f"{change.followup_ml:.2f} ml ({change.change_ml:+.2f} ml"
          f"{'' if pct is None else f', {pct:+.1f} %'}); surface moved outward up to "
          f"{change.max_growth_mm:.1f} mm, inward up to {change.max_shrink_mm:.1f} mm, mean "
          f"{change.mean_surface_change_mm:+.1f} mm")
    return 0


def _source(folder: Path, what: str) -> Any:
    from surgiplan.io import source_series

    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    found = source_series.from_files(files, "")
    if found is None:
        raise BadInputError(f"no single DICOM image series with a frame of reference for the "
                            f"{what}", path=folder, action="Give the folder of that series only")
    return found


def run_export_reg(args: argparse.Namespace) -> int:
    from surgiplan.io import source_series
    from surgiplan.registration.dicom_reg import write_spatial_registration

    twin = _load(args.case)
    entry = _series(twin, args.key, args.case)
    reference = (_source(args.reference_dicom, "reference") if args.reference_dicom
                 else source_series.source_of(twin.image))
    if reference is None:
        raise BadInputError("the case keeps no reference to its DICOM series", path=args.case,
                            action="Give the reference's DICOM files with --reference-dicom")
    series = _source(args.series_dicom, f"series {args.key!r}")
    if not args.include_identifiers:
        reference, series = source_series.deidentify(reference), source_series.deidentify(series)
    elif reference.deidentified:
        raise BadInputError("the case was saved de-identified; it has no original UIDs",
                            path=args.case, action="Give --reference-dicom")
    write_spatial_registration(args.out, reference, series, entry.transform)
    if args.include_identifiers:
        source_series.log_identified_export("spatial registration", args.out)
    print(f"wrote {args.out} (Spatial Registration: series {args.key!r} -> reference frame "
          f"{reference.frame_of_reference_uid})")
    return 0


def run_import_reg(args: argparse.Namespace) -> int:
    import numpy as np

    from surgiplan.registration.dicom_reg import (
        read_spatial_registration,
        transform_from_registration,
    )

    reg = read_spatial_registration(args.registration)
    if args.series_dicom is not None:
        from surgiplan.io.source_series import deidentified_uid

        frame = _source(args.series_dicom, f"series {args.key!r}").frame_of_reference_uid
        known = {i.frame_of_reference_uid for i in reg.items}
        if frame not in known and deidentified_uid(frame) in known:
            frame = deidentified_uid(frame)  # an object exported de-identified (the default)
    else:
        moved = [i for i in reg.items if not np.allclose(i.matrix_to_registration_frame,
                                                         np.eye(4))]
        if len(moved) != 1:
            raise BadInputError(f"the object holds {len(moved)} non-identity matrices",
                                path=args.registration,
                                action="Name the series' files with --series-dicom")
        frame = moved[0].frame_of_reference_uid
    transform = transform_from_registration(reg, frame, args.registration)
    twin = _load(args.case)
    _series(twin, args.key, args.case)
    twin.set_series_transform(args.key, transform)
    twin.provenance.notes.append(f"series {args.key!r}: transform from {args.registration.name}")
    _save(twin, args.case)
    print(f"series {args.key!r}: {transform.kind} transform from {args.registration.name} "
          f"(rotation {transform.rotation_deg():.2f} deg, translation "
          f"{transform.translation_mm():.2f} mm)")
    return 0
