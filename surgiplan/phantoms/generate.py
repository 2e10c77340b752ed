"""Generate a phantom: CT volume + ground-truth labels + analytic truth, in memory or on disk.

On disk (``generate_phantom``) a phantom is a folder holding ``dicom/`` (a real CT series),
``labels.nrrd`` (the label map on exactly the DICOM grid), ``labels.json`` (what each label
means, ``surgiplan.labels/1``) and ``truth.json`` (the analytic description, see
:mod:`surgiplan.phantoms.truth`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.phantoms import anatomy_head, anatomy_liver, anatomy_spine
from surgiplan.phantoms.names import PHANTOM_NAMES as LIGHT_NAMES
from surgiplan.phantoms.render import RenderedPhantom, render_phantom
from surgiplan.phantoms.spec import PhantomSpec
from surgiplan.phantoms.truth import Truth, TruthStructure
from surgiplan.progress import CancelToken, ProgressCallback, check, report

BUILDERS: dict[str, Callable[[], PhantomSpec]] = {
    "head": anatomy_head.build,
    "spine": anatomy_spine.build,
    "liver": anatomy_liver.build,
}
PHANTOM_NAMES = tuple(BUILDERS)
assert PHANTOM_NAMES == LIGHT_NAMES, "surgiplan/phantoms/names.py lists other phantoms"
LABELS_SCHEMA = "surgiplan.labels/1"
CT_RANGE_HU = (-1024.0, 3071.0)  # what a 12-bit CT scanner stores


@dataclass(frozen=True)
class PhantomFiles:
    """Paths of a phantom written by :func:`generate_phantom`."""

    out_dir: Path
    dicom_dir: Path
    labels_nrrd: Path
    labels_json: Path
    truth_json: Path


def phantom_spec(name: str) -> PhantomSpec:
    """The analytic description of phantom ``name`` (one of :data:`PHANTOM_NAMES`)."""
    if name not in BUILDERS:
        raise BadInputError(
            f"unknown phantom {name!r}", action=f"Choose one of: {', '.join(PHANTOM_NAMES)}"
        )
    return BUILDERS[name]()


def make_phantom(
    name: str,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[ImageVolume, Segmentation, Truth]:
    """Render phantom ``name`` in memory: (CT volume in HU, ground-truth labels, truth)."""
    spec = phantom_spec(name)
    rendered = render_phantom(spec, seed=seed, progress=progress, cancel=cancel)
    volume = _volume(spec, rendered, seed)
    segmentation = Segmentation.from_labelmap(rendered.labels, spec.geometry, _label_names(spec))
    return volume, segmentation, _truth(spec, rendered, seed)


def generate_phantom(
    name: str,
    out_dir: Path,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> PhantomFiles:
    """Write phantom ``name`` to ``out_dir`` (dicom/, labels.nrrd, labels.json, truth.json)."""
    from surgiplan.io.dicom_write import write_series

    out_dir = Path(out_dir)
    dicom_dir = out_dir / "dicom"
    _prepare_out_dir(out_dir, dicom_dir)

    def sub(lo: float, hi: float) -> ProgressCallback:
        return lambda f, text: report(progress, lo + (hi - lo) * f, text)

    volume, segmentation, truth = make_phantom(
        name, seed=seed, progress=sub(0.0, 0.6), cancel=cancel
    )
    check(cancel)
    files = PhantomFiles(
        out_dir=out_dir, dicom_dir=dicom_dir, labels_nrrd=out_dir / "labels.nrrd",
        labels_json=out_dir / "labels.json", truth_json=out_dir / "truth.json",
    )
    write_series(
        volume, dicom_dir,
        patient_name=f"Phantom^{name.capitalize()}",
        patient_id=f"SP-PHANTOM-{name.upper()}",
        series_description=f"SurgiPlan {name} phantom, seed {seed}",
        study_uid=generate_uid(entropy_srcs=["surgiplan-phantom-study", name, str(seed)]),
        series_uid=generate_uid(entropy_srcs=["surgiplan-phantom-series", name, str(seed)]),
        progress=sub(0.6, 0.95), cancel=cancel,
    )
    write_label_nrrd(np.asarray(segmentation.layers[0]), truth.geometry, files.labels_nrrd)
    files.labels_json.write_text(json.dumps(labels_json(truth), indent=1), encoding="utf-8")
    truth.save(files.truth_json)
    report(progress, 1.0, f"wrote the {name} phantom to {out_dir}")
    return files


def _prepare_out_dir(out_dir: Path, dicom_dir: Path) -> None:
    """Create the folders; clear a previous phantom's slices, refuse foreign DICOM files."""
    if dicom_dir.is_dir() and any(dicom_dir.iterdir()):
        if not (out_dir / "truth.json").is_file():
            raise BadInputError(
                "folder already holds files that are not a SurgiPlan phantom", path=dicom_dir,
                action="choose an empty --out folder",
            )
        for old in dicom_dir.glob("IM_*.dcm"):
            old.unlink()
    dicom_dir.mkdir(parents=True, exist_ok=True)


def write_label_nrrd(labels: np.ndarray, geometry: ImageGeometry, path: Path) -> Path:
    """Write a ``(nz, ny, nx)`` label array as NRRD in LPS on exactly ``geometry``'s grid."""
    import nrrd

    header = {
        "type": "uint8" if labels.dtype == np.uint8 else "uint16",
        "dimension": 3,
        "space": "left-posterior-superior",
        "space directions": (geometry.direction * np.asarray(geometry.spacing_mm)[None, :]).T,
        "space origin": np.asarray(geometry.origin_lps, dtype=float),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    nrrd.write(str(path), np.ascontiguousarray(labels), header, index_order="C")
    return Path(path)


def labels_json(truth: Truth) -> dict:
    """``labels.json`` content (schema ``surgiplan.labels/1``) for a phantom's label map."""
    return {
        "schema": LABELS_SCHEMA,
        "labels": [
            {
                "value": s.label, "name": s.name, "role": str(s.role), "color": list(s.color),
                "margin_mm": s.margin_mm, "description": s.description,
            }
            for s in sorted(truth.structures, key=lambda s: s.label)
        ],
    }


def _label_names(spec: PhantomSpec) -> dict[int, dict]:
    return {
        s.label: {"name": s.name, "role": str(s.role), "color": s.color,
                  "margin_mm": s.margin_mm, "description": s.description}
        for s in spec.structures
    }


def _volume(spec: PhantomSpec, rendered: RenderedPhantom, seed: int) -> ImageVolume:
    hu = np.rint(np.clip(rendered.hu, *CT_RANGE_HU)).astype(np.int16)
    return ImageVolume(
        array=hu, geometry=spec.geometry, modality="CT",
        description=f"SurgiPlan {spec.name} phantom, seed {seed}",
        window_center=spec.window[0], window_width=spec.window[1],
        metadata={"phantom": spec.name, "seed": seed, "body_part": spec.body_part},
    )


def _inside_grid(spec: PhantomSpec, bounds_lps: np.ndarray) -> bool:
    lo, hi = bounds_lps
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    ijk = spec.geometry.lps_to_index(corners)
    return bool(np.all(ijk >= 1.0) and np.all(ijk <= np.asarray(spec.geometry.size) - 2.0))


def _truth(spec: PhantomSpec, rendered: RenderedPhantom, seed: int) -> Truth:
    structures = []
    for s in spec.structures:
        n_shape, n_label = rendered.shape_voxels[s.name], rendered.label_voxels[s.name]
        exact = n_shape > 0 and n_shape == n_label and _inside_grid(spec, s.shape.bounds_lps())
        structures.append(
            TruthStructure(
                name=s.name, label=s.label, role=s.role, hu=s.hu, priority=s.priority,
                margin_mm=s.margin_mm, color=s.color, description=s.description,  # type: ignore[arg-type]
                exact=exact, shape=s.shape, shape_voxels=n_shape, label_voxels=n_label,
                core_hu=s.core_hu, cortex_mm=s.cortex_mm,
            )
        )
    return Truth(
        phantom=spec.name, geometry=spec.geometry, seed=seed, noise_sd_hu=spec.noise_sd_hu,
        blur_sigma_mm=spec.blur_sigma_mm, background_hu=spec.background_hu,
        structures=tuple(structures), description=spec.description,
    )
