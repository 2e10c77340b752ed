"""TotalSegmentator outputs mapped by class NAME and model VERSION onto SurgiPlan structures.

TotalSegmentator's label ids differ between v1 and v2 (aorta is 7 in v1, 52 in v2), so a
multi-label file is only meaningful with its version: keywords ``totalsegmentator-v1``,
``totalsegmentator-v2``, ``totalsegmentator-v2-mr`` name the class tables in
``surgiplan/io/totalsegmentator_tables/`` (copied from TotalSegmentator's ``map_to_binary.py``). A
multi-label NIfTI written by TotalSegmentator >= 2 carries its own names in a NIfTI header
extension (Caret XML label table); those names win over any table. The per-structure layout
(a folder of ``<class>.nii.gz`` binary masks) is named by its file names. Every class name then
gets SurgiPlan's role, colour and safety margin from ``roles.json`` (first matching rule).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from fnmatch import fnmatchcase
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError

RESOURCE_DIR = Path(str(files("surgiplan.io") / "totalsegmentator_tables"))  # package data
# --label-names keyword -> class table file in RESOURCE_DIR.
KEYWORDS = {
    "totalsegmentator-v1": "total_v1.json",
    "totalsegmentator-v2": "total_v2.json",
    "totalsegmentator-v2-mr": "total_mr_v2.json",
}
MAPPING_SCHEMA = "surgiplan.totalsegmentator/1"  # a label-names file: {"schema", "version", "task"}
_TABLE_OF = {("v1", "total"): "total_v1.json", ("v2", "total"): "total_v2.json",
             ("v2", "total_mr"): "total_mr_v2.json"}


@cache
def _load_json(name: str) -> dict[str, Any]:
    path = RESOURCE_DIR / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"the TotalSegmentator table is missing ({exc.strerror})",
                            path=path, action="Reinstall SurgiPlan with its resources") from exc


def class_names(keyword: str) -> dict[int, str]:
    """Label id -> TotalSegmentator class name for a keyword such as ``totalsegmentator-v2``."""
    if keyword not in KEYWORDS:
        raise BadInputError(f"unknown TotalSegmentator label set {keyword!r}",
                            action=f"Use one of {', '.join(KEYWORDS)}")
    labels = _load_json(KEYWORDS[keyword])["labels"]
    return {int(k): v for k, v in labels.items()}


# Colours of the classes whose rule gives none (muscles, glands, bowel...): picked by a stable
# hash of the class name, so a class keeps its colour from run to run (RGB in 0..1).
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.8, 0.45, 0.45), (0.55, 0.7, 0.4), (0.45, 0.55, 0.8), (0.85, 0.7, 0.35),
    (0.65, 0.45, 0.75), (0.4, 0.7, 0.7), (0.9, 0.55, 0.7), (0.6, 0.6, 0.35),
    (0.35, 0.5, 0.6), (0.75, 0.55, 0.4), (0.5, 0.75, 0.55), (0.7, 0.4, 0.55),
)


def class_color(name: str) -> tuple[float, float, float]:
    """The palette colour of a class name without a colour rule (stable: CRC-32 of the name)."""
    import zlib

    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]


def properties(name: str) -> dict[str, Any]:
    """SurgiPlan structure properties of a class name: name, role, color, margin_mm.

    Every class gets a role and a colour: its ``roles.json`` rule's, else :func:`class_color`.
    """
    for rule in _load_json("roles.json")["rules"]:
        fits = name in rule["names"] if "names" in rule else fnmatchcase(name, rule["match"])
        if fits:
            color = tuple(rule["color"]) if rule.get("color") else class_color(name)
            return {"name": name, "role": rule["role"], "color": color,
                    "margin_mm": float(rule["margin_mm"]), "description": "TotalSegmentator"}
    return {"name": name, "role": "other", "color": class_color(name), "margin_mm": 0.0,
            "description": "TotalSegmentator"}


def label_names(keyword: str) -> dict[int, dict]:
    """``{label: {name, role, color, margin_mm, description}}`` for a keyword's class table."""
    return {value: properties(name) for value, name in class_names(keyword).items()}


def is_keyword(text: str | Path) -> bool:
    return str(text).lower() in KEYWORDS


def parse_mapping_file(raw: dict[str, Any], path: Path) -> dict[int, dict]:
    """A ``surgiplan.totalsegmentator/1`` label-names file: ``{"version": "v2", "task": ...}``."""
    key = (str(raw.get("version", "")).lower(), str(raw.get("task", "total")))
    if key not in _TABLE_OF:
        known = ", ".join(f"version {v} task {t}" for v, t in _TABLE_OF)
        raise BadInputError(f"unknown TotalSegmentator version/task {key}", path=path,
                            action=f"Use one of: {known}")
    keyword = next(k for k, f in KEYWORDS.items() if f == _TABLE_OF[key])
    return label_names(keyword)


def embedded_label_names(path: str | Path) -> dict[int, dict] | None:
    """Names TotalSegmentator stored in a multi-label NIfTI's header extension, else None."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except (OSError, ValueError, nib.filebasedimages.ImageFileError):
        return None
    for extension in getattr(image.header, "extensions", []):
        content = extension.get_content()
        if not isinstance(content, bytes) or b"LabelTable" not in content:
            continue
        try:
            root = ET.fromstring(content.decode("utf-8", errors="replace").strip())
        except ET.ParseError:
            return None
        names = {int(label.get("Key", "0")): (label.text or "").strip()
                 for label in root.iter("Label")}
        return {v: properties(n) for v, n in names.items() if v > 0 and n}
    return None


def is_mask_folder(path: str | Path) -> bool:
    """True for a folder of TotalSegmentator per-structure masks (``<class>.nii.gz`` files)."""
    path = Path(path)
    return path.is_dir() and any(path.glob("*.nii.gz"))


def mask_files(folder: str | Path) -> list[tuple[str, Path]]:
    """(class name, file) of each ``*.nii.gz`` / ``*.nii`` mask in a folder, sorted by name."""
    out = []
    for file in sorted(Path(folder).iterdir()):
        name = file.name
        for suffix in (".nii.gz", ".nii"):
            if name.lower().endswith(suffix):
                out.append((name[: -len(suffix)], file))
                break
    return out
