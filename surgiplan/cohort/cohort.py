"""Cohorts: the twins a template runs over, as small JSON-ready references.

A cohort is a folder, or a JSON file (``surgiplan.cohort/1``)::

    {"name": "spine50",
     "generated": {"phantom": "spine", "count": 50, "first_seed": 0, "scale_sd": 0.05,
                   "shift_mm": 5.0, "spacing_mm": 1.6, "field_mm": [130, 120, 110]}}
    {"name": "mine", "cases": ["a.surgiplan", "phantom_dir/", ...]}

A folder cohort holds case bundles (``*.surgiplan``) and/or phantom-style folders (``dicom/``
plus ``labels.nrrd`` and ``labels.json``) whose twins are built on the fly. Relative paths are
relative to the cohort file. A reference is resolved (:func:`load_twin`) on the worker, so only
the reference travels, never the volume.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from surgiplan.errors import BadInputError

SCHEMA = "surgiplan.cohort/1"


@dataclass(frozen=True)
class TwinRef:
    """One twin: ``kind`` "generated" (``variation``) or "bundle"/"folder" (``path``)."""

    twin_id: str
    kind: str
    seed: int
    path: str = ""
    variation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def source(self) -> str:
        """Where the twin comes from: a path, or ``generated:<phantom>?seed=N``."""
        if self.kind == "generated":
            assert self.variation is not None
            return f"generated:{self.variation['phantom']}?seed={self.seed}"
        return self.path


def load_cohort(path: Path) -> tuple[str, list[TwinRef]]:
    """(cohort name, twin references) from a cohort JSON file or a folder of cases."""
    path = Path(path)
    if path.is_dir():
        return path.name, _folder_refs(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read the cohort: {exc}", path=path,
                            action="give a cohort JSON file or a folder of case bundles") from exc
    return cohort_from_json(data, base=path.parent, source=str(path))


def cohort_from_json(data: dict[str, Any], *, base: Path = Path("."),
                     source: str = "cohort") -> tuple[str, list[TwinRef]]:
    """Validate cohort JSON (see module docstring) into its twin references."""
    if not isinstance(data, dict) or ("generated" in data) == ("cases" in data):
        raise BadInputError(f"{source}: give exactly one of 'generated' or 'cases'",
                            action="see surgiplan/cohort/cohort.py for the format")
    name = str(data.get("name") or "cohort")
    if "generated" in data:
        return name, generated_refs(name, **data["generated"])
    refs = [_case_ref(base / p, i) for i, p in enumerate(data["cases"])]
    return name, _unique(refs)


def generated_refs(name: str, *, phantom: str, count: int, first_seed: int = 0,
                   scale_sd: float = 0.05, shift_mm: float = 5.0, spacing_mm: float = 2.0,
                   field_mm: list[float] | None = None) -> list[TwinRef]:
    """``count`` generated variants of ``phantom``, seeds ``first_seed``.. (one twin each)."""
    from surgiplan.phantoms.variants import draw_variation

    if count < 1:
        raise BadInputError(f"cohort {name}: count must be >= 1", action="give a positive count")
    field = None if field_mm is None else tuple(float(v) for v in field_mm)
    refs = []
    for seed in range(first_seed, first_seed + count):
        variation = draw_variation(phantom, seed, scale_sd=scale_sd, shift_mm=shift_mm,
                                   spacing_mm=spacing_mm, field_mm=field)  # type: ignore[arg-type]
        refs.append(TwinRef(f"{name}-{seed:04d}", "generated", seed,
                            variation=variation.to_json()))
    return refs


def _folder_refs(folder: Path) -> list[TwinRef]:
    entries = sorted(p for p in folder.iterdir()
                     if p.suffix == ".surgiplan" or (p / "labels.json").is_file())
    if not entries:
        raise BadInputError("no case bundles (*.surgiplan) or phantom folders in the cohort",
                            path=folder, action="put case bundles or phantom folders in it")
    return _unique([_case_ref(p, i) for i, p in enumerate(entries)])


def _case_ref(path: Path, index: int) -> TwinRef:
    if path.suffix == ".surgiplan" and path.exists():
        return TwinRef(path.stem, "bundle", index, path=str(path.resolve()))
    if path.is_dir() and (path / "dicom").is_dir() and (path / "labels.json").is_file():
        return TwinRef(path.name, "folder", index, path=str(path.resolve()))
    raise BadInputError("not a case bundle or a phantom-style folder (dicom/, labels.json)",
                        path=path, action="fix the cohort's list of cases")


def _unique(refs: list[TwinRef]) -> list[TwinRef]:
    seen: dict[str, int] = {}
    out = []
    for r in refs:
        n = seen.get(r.twin_id, 0)
        seen[r.twin_id] = n + 1
        out.append(r if n == 0 else TwinRef(f"{r.twin_id}-{n}", r.kind, r.seed, r.path,
                                            r.variation))
    return out


def load_twin(ref: TwinRef) -> Any:
    """The :class:`surgiplan.twin.Twin` of a reference (generated, loaded or built)."""
    from surgiplan.twin import Twin

    if ref.kind == "generated":
        from surgiplan.phantoms.variants import Variation, make_variant

        v = dict(ref.variation or {})
        v["shift_lps"] = tuple(v["shift_lps"])
        v["field_mm"] = None if v.get("field_mm") is None else tuple(v["field_mm"])
        image, labels = make_variant(Variation(**v))
        return Twin(image, labels, patient_ref=ref.twin_id)
    if ref.kind == "bundle":
        from surgiplan.io.bundle import load_bundle

        return load_bundle(Path(ref.path))
    from surgiplan.io.twin_build import build_twin

    folder = Path(ref.path)
    return build_twin(folder / "dicom", labels=[folder / "labels.nrrd"],
                      label_names=folder / "labels.json")
