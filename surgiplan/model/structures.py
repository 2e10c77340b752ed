"""Segmented anatomy: structures stored as labels in one or more label-map layers.

Like a 3D Slicer segmentation, non-overlapping structures share a layer (one ``uint8`` or
``uint16`` label array of shape ``(nz, ny, nx)``, held as a :class:`LabelLayer`: only the box of
its labelled voxels is stored); a structure that overlaps another goes to a new layer. A
structure is ``(layer, label)`` plus its clinical meaning: name, role, colour and the safety
margin (mm) simulators score against.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.label_layer import LabelLayer, LayerList


class Role(StrEnum):
    """What a structure is for in planning."""

    TARGET = "target"
    CRITICAL = "critical"
    BONE = "bone"
    ORGAN = "organ"
    SKIN = "skin"
    OTHER = "other"


# Default display colours per role (RGB in 0..1), used when a structure has none.
ROLE_COLORS: dict[Role, tuple[float, float, float]] = {
    Role.TARGET: (0.95, 0.85, 0.10),
    Role.CRITICAL: (0.90, 0.15, 0.15),
    Role.BONE: (0.93, 0.90, 0.80),
    Role.ORGAN: (0.80, 0.45, 0.40),
    Role.SKIN: (0.95, 0.75, 0.65),
    Role.OTHER: (0.50, 0.70, 0.90),
}


@dataclass
class Structure:
    """One segmented structure. ``margin_mm`` is the safety margin: closer counts as caution."""

    name: str
    role: Role
    label: int
    layer: int = 0
    color: tuple[float, float, float] | None = None
    margin_mm: float = 0.0
    visible: bool = True
    opacity: float = 1.0
    description: str = ""
    # Other programs' segment tags (e.g. 3D Slicer's TerminologyEntry), kept for round trips.
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.role = Role(self.role)
        if not self.name or not self.name.strip():
            raise ValueError("a structure needs a name")
        if not 0 < int(self.label) < 65536:
            raise ValueError(f"label must be in 1..65535, got {self.label}")
        if self.color is None:
            self.color = ROLE_COLORS[self.role]
        for key in ("margin_mm", "color", "opacity", "visible", "description"):
            setattr(self, key, checked_property(key, getattr(self, key)))


MAX_MARGIN_MM = 100.0


def checked_property(key: str, value: Any) -> Any:
    """``value`` checked (and normalised) for the structure property ``key``.

    ``margin_mm`` finite in 0..100 mm; ``color`` three finite RGB values in 0..1; ``opacity``
    finite in 0..1; ``visible`` a bool; ``description`` text; ``role`` a :class:`Role`.
    Raises ``ValueError`` naming the property otherwise: a bad value never reaches the twin.
    """
    if key == "role":
        return Role(value)
    if key == "margin_mm":
        margin = _finite(key, value)
        if not 0.0 <= margin <= MAX_MARGIN_MM:
            raise ValueError(f"margin_mm must be between 0 and {MAX_MARGIN_MM:g} mm, got {value}")
        return margin
    if key == "color":
        rgb = tuple(_finite(key, c) for c in value)
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValueError(f"color must be three RGB values in 0..1, got {value!r}")
        return rgb
    if key == "opacity":
        opacity = _finite(key, value)
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be in 0..1, got {value}")
        return opacity
    if key == "visible":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"visible must be true or false, got {value!r}")
        return bool(value)
    if key == "description":
        if not isinstance(value, str):
            raise ValueError(f"description must be text, got {type(value).__name__}")
        return value
    raise ValueError(f"unknown structure property {key!r}")


def _finite(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return number


@dataclass
class Segmentation:
    """Structures on the image grid. ``layers[n]`` is a :class:`LabelLayer` of shape
    ``(nz, ny, nx)`` (full arrays given are cropped to their labelled box)."""

    geometry: ImageGeometry
    layers: list[LabelLayer] = field(default_factory=LayerList)
    structures: list[Structure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layers = LayerList(self.layers)
        for n, layer in enumerate(self.layers):
            if layer.shape != self.geometry.shape_zyx:
                raise ValueError(f"layer {n} shape {layer.shape} != grid {self.geometry.shape_zyx}")
        for s in self.structures:
            if s.layer >= len(self.layers):
                raise ValueError(f"structure {s.name!r} refers to missing layer {s.layer}")

    # ------------------------------------------------------------------ lookup
    def __iter__(self) -> Iterator[Structure]:
        return iter(self.structures)

    def __len__(self) -> int:
        return len(self.structures)

    def names(self) -> list[str]:
        return [s.name for s in self.structures]

    def get(self, name: str) -> Structure:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"no structure named {name!r}; have {self.names()}")

    def by_role(self, role: Role | str) -> list[Structure]:
        return [s for s in self.structures if s.role == Role(role)]

    def mask(self, name: str) -> np.ndarray:
        """Boolean array ``(nz, ny, nx)``, True inside the structure."""
        s = self.get(name)
        return self.layers[s.layer] == s.label

    def voxel_count(self, name: str) -> int:
        s = self.get(name)
        return self.layers[s.layer].count(s.label)

    def volume_ml(self, name: str) -> float:
        """Structure volume in millilitres (voxel count x voxel volume)."""
        return self.voxel_count(name) * self.geometry.voxel_volume_mm3 / 1000.0

    # ------------------------------------------------------------------ editing
    def add(
        self,
        name: str,
        mask: np.ndarray,
        *,
        role: Role | str = Role.OTHER,
        color: tuple[float, float, float] | None = None,
        margin_mm: float = 0.0,
        description: str = "",
    ) -> Structure:
        """Add a structure from a boolean mask, sharing a layer where it overlaps nothing."""
        if name in self.names():
            raise ValueError(f"a structure named {name!r} exists already")
        mask = self._check_mask(mask)
        layer_index = self._free_layer_for(mask)
        label = self._next_label(layer_index)
        layer = self.layers[layer_index]
        if label > np.iinfo(layer.dtype).max:
            self.layers[layer_index] = layer.astype(np.uint16)
            layer = self.layers[layer_index]
        layer[mask] = label
        structure = Structure(
            name=name, role=Role(role), label=label, layer=layer_index, color=color,
            margin_mm=margin_mm, description=description,
        )
        self.structures.append(structure)
        return structure

    def set_mask(self, name: str, mask: np.ndarray) -> None:
        """Replace a structure's voxels; moves it to another layer if it would overlap."""
        s = self.get(name)
        mask = self._check_mask(mask)
        old = layer = self.layers[s.layer]
        layer.clear_label(s.label)
        if layer.any_in(mask):
            new_layer = self._free_layer_for(mask)
            s.label = self._next_label(new_layer)
            s.layer = new_layer
            layer = self.layers[new_layer]
        layer[mask] = s.label
        old.compact()

    def remove(self, name: str) -> Structure:
        s = self.get(name)
        layer = self.layers[s.layer]
        layer.clear_label(s.label)
        layer.compact()
        self.structures.remove(s)
        return s

    def _check_mask(self, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.geometry.shape_zyx:
            raise BadInputError(
                f"mask shape {mask.shape} does not match the image grid {self.geometry.shape_zyx}",
                action="resample the mask onto the image grid first",
            )
        return mask

    def _free_layer_for(self, mask: np.ndarray) -> int:
        for n, layer in enumerate(self.layers):
            if not layer.any_in(mask):
                return n
        self.layers.append(LabelLayer(self.geometry.shape_zyx, np.uint8))
        return len(self.layers) - 1

    def _next_label(self, layer_index: int) -> int:
        used = [s.label for s in self.structures if s.layer == layer_index]
        return max(used, default=0) + 1

    @classmethod
    def from_labelmap(
        cls,
        labelmap: np.ndarray,
        geometry: ImageGeometry,
        names: dict[int, dict] | None = None,
    ) -> Segmentation:
        """Build from one label array; ``names`` maps label -> {name, role, color, margin_mm}.

        Labels present in the array but missing from ``names`` become ``label_<n>`` (role other).
        """
        if labelmap.shape != geometry.shape_zyx:
            raise BadInputError(
                f"label map shape {labelmap.shape} does not match the image grid "
                f"{geometry.shape_zyx}",
                action="resample the label map onto the image grid first",
            )
        if labelmap.dtype.kind not in "iub" or (labelmap.size and labelmap.min() < 0):
            raise BadInputError("label map must hold non-negative integer labels")
        if labelmap.size and labelmap.max() > 65535:
            raise BadInputError("label map has labels above 65535")
        dtype = np.uint8 if (labelmap.size == 0 or labelmap.max() < 256) else np.uint16
        seg = cls(geometry=geometry, layers=[LabelLayer.from_array(labelmap.astype(dtype,
                                                                          copy=False))])
        names = names or {}
        present = sorted(int(v) for v in np.unique(labelmap) if v != 0)
        for value in sorted(set(present) | set(names)):
            info = names.get(value, {})
            seg.structures.append(
                Structure(
                    name=info.get("name", f"label_{value}"),
                    role=Role(info.get("role", "other")),
                    label=value,
                    layer=0,
                    color=info.get("color"),
                    margin_mm=float(info.get("margin_mm", 0.0)),
                    description=info.get("description", ""),
                )
            )
        return seg
