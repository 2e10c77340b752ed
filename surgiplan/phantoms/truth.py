"""The analytic ground truth of a generated phantom (``truth.json``) and how to read it back.

``Truth.signed_distance_mm(name, points_lps)`` evaluates the exact (see each structure's
``distance_exact_inside`` / ``distance_exact_outside``) signed distance of a structure's shape
at any LPS point: mm, positive outside, negative inside. A structure marked ``exact`` has a
label region equal to its own shape on the grid (no higher-priority shape cuts it, and it lies
wholly inside the grid), so its label map, surface and distance map agree with the analytic
shape within half a voxel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.phantoms.primitives import Shape, shape_from_json
from surgiplan.phantoms.spec import PRIORITY_RULE

TRUTH_SCHEMA = "surgiplan.phantom-truth/1"


@dataclass(frozen=True)
class TruthStructure:
    """One structure of the truth: clinical meaning, imaging value and analytic shape."""

    name: str
    label: int
    role: Role
    hu: float
    priority: int
    margin_mm: float
    color: tuple[float, float, float]
    description: str
    exact: bool
    shape: Shape
    shape_voxels: int = 0
    label_voxels: int = 0
    core_hu: float | None = None
    cortex_mm: float = 0.0

    @property
    def distance_exact_inside(self) -> bool:
        return self.shape.exact_inside

    @property
    def distance_exact_outside(self) -> bool:
        return self.shape.exact_outside

    def signed_distance_mm(self, points_lps: Any) -> np.ndarray:
        """Signed distance (mm, + outside) of ``(N, 3)`` LPS points to this structure's shape."""
        return self.shape.signed_distance(points_lps)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "role": str(self.role),
            "hu": self.hu,
            "core_hu": self.core_hu,
            "cortex_mm": self.cortex_mm,
            "priority": self.priority,
            "margin_mm": self.margin_mm,
            "color": list(self.color),
            "description": self.description,
            "exact": self.exact,
            "distance_exact_inside": self.distance_exact_inside,
            "distance_exact_outside": self.distance_exact_outside,
            "shape_voxels": self.shape_voxels,
            "label_voxels": self.label_voxels,
            "analytic_volume_mm3": self.shape.volume_mm3(),
            "shape": self.shape.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TruthStructure:
        return cls(
            name=str(data["name"]),
            label=int(data["label"]),
            role=Role(data["role"]),
            hu=float(data["hu"]),
            priority=int(data["priority"]),
            margin_mm=float(data.get("margin_mm", 0.0)),
            color=tuple(float(c) for c in data["color"]),  # type: ignore[arg-type]
            description=str(data.get("description", "")),
            exact=bool(data["exact"]),
            shape=shape_from_json(data["shape"]),
            shape_voxels=int(data.get("shape_voxels", 0)),
            label_voxels=int(data.get("label_voxels", 0)),
            core_hu=None if data.get("core_hu") is None else float(data["core_hu"]),
            cortex_mm=float(data.get("cortex_mm", 0.0)),
        )


@dataclass(frozen=True)
class Truth:
    """A phantom's analytic description on its grid (LPS mm)."""

    phantom: str
    geometry: ImageGeometry
    seed: int
    noise_sd_hu: float
    blur_sigma_mm: float
    background_hu: float
    structures: tuple[TruthStructure, ...]
    description: str = ""

    def structure(self, name: str) -> TruthStructure:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"phantom {self.phantom} has no structure {name!r}; have {self.names()}")

    def names(self) -> list[str]:
        return [s.name for s in self.structures]

    def exact_structures(self) -> list[TruthStructure]:
        return [s for s in self.structures if s.exact]

    def priority_order(self) -> list[str]:
        """Structure names from the highest priority (wins overlaps) to the lowest."""
        return [s.name for s in sorted(self.structures, key=lambda s: -s.priority)]

    def signed_distance_mm(self, name: str, points_lps: Any) -> np.ndarray:
        """Signed distance (mm, + outside) of LPS points ``(N, 3)`` to structure ``name``."""
        return self.structure(name).signed_distance_mm(points_lps)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": TRUTH_SCHEMA,
            "phantom": self.phantom,
            "description": self.description,
            "frame": "DICOM patient LPS, millimetres; signed distance positive outside",
            "grid": self.geometry.to_json(),
            "seed": self.seed,
            "noise_sd_hu": self.noise_sd_hu,
            "blur_sigma_mm": self.blur_sigma_mm,
            "background_hu": self.background_hu,
            "priority_rule": PRIORITY_RULE,
            "priority_order": self.priority_order(),
            "exact_rule": (
                "exact = the structure's label region equals its own shape on the grid (no "
                "higher-priority shape cuts it, wholly inside the grid); distance_exact_inside/"
                "outside say where its signed distance is exact rather than a bound"
            ),
            "structures": [s.to_json() for s in self.structures],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Truth:
        return cls(
            phantom=str(data["phantom"]),
            geometry=ImageGeometry.from_json(data["grid"]),
            seed=int(data["seed"]),
            noise_sd_hu=float(data["noise_sd_hu"]),
            blur_sigma_mm=float(data.get("blur_sigma_mm", 0.0)),
            background_hu=float(data.get("background_hu", -1000.0)),
            structures=tuple(TruthStructure.from_json(s) for s in data["structures"]),
            description=str(data.get("description", "")),
        )

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return path


def load_truth(path: str | Path) -> Truth:
    """Read ``truth.json`` and rebuild every structure's analytic shape."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"cannot read phantom truth ({exc})", path=path,
            action="regenerate it with `surgiplan sample NAME --out DIR`",
        ) from exc
    if not isinstance(data, dict) or data.get("schema") != TRUTH_SCHEMA:
        raise BadInputError(
            f"not a phantom truth file (schema must be {TRUTH_SCHEMA})", path=path,
            action="pass the truth.json written by `surgiplan sample`",
        )
    try:
        return Truth.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(
            f"phantom truth is malformed ({exc})", path=path,
            action="regenerate it with `surgiplan sample NAME --out DIR`",
        ) from exc
