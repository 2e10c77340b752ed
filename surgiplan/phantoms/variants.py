"""Anatomical variants of the generated phantoms, for in-silico cohorts.

A variant is a base phantom (``spine``, ``liver``, ``head``) whose whole anatomy is scaled
uniformly by ``scale`` about the grid centre and then shifted by ``shift_lps`` (mm), rendered on
a grid of ``spacing_mm`` (isotropic) over the base field of view (or a ``field_mm`` box, full
extents L, P, S, around the base grid centre). Uniform scaling keeps every
signed distance exact: ``d'(p) = scale * d((p - c - t) / scale + c)``. The scale and shift are
drawn from ``seed`` (scale ~ N(1, scale_sd) clipped to +-2 SD, shift ~ U(-shift_mm, shift_mm)
per axis), so the same seed always gives the same twin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Segmentation
from surgiplan.model.volume import ImageVolume
from surgiplan.phantoms.primitives import Shape
from surgiplan.phantoms.spec import PhantomSpec


class Scaled(Shape):
    """``child`` scaled by ``scale`` about ``pivot_lps`` then moved by ``shift_lps`` (mm)."""

    kind = "scaled"

    def __init__(self, child: Shape, scale: float, pivot_lps: Any, shift_lps: Any) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.child = child
        self.scale = float(scale)
        self.pivot = np.asarray(pivot_lps, dtype=float).reshape(3)
        self.shift = np.asarray(shift_lps, dtype=float).reshape(3)
        self.exact_inside = child.exact_inside
        self.exact_outside = child.exact_outside

    def _local(self, points_lps: Any) -> np.ndarray:
        p = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        return (p - self.pivot - self.shift) / self.scale + self.pivot

    def signed_distance(self, points_lps: Any) -> np.ndarray:
        return self.scale * self.child.signed_distance(self._local(points_lps))

    def signed_distance_bound(self, points_lps: Any) -> np.ndarray:
        return self.scale * self.child.signed_distance_bound(self._local(points_lps))

    def bounds_lps(self) -> np.ndarray:
        b = np.asarray(self.child.bounds_lps(), dtype=float)
        return (b - self.pivot) * self.scale + self.pivot + self.shift

    def volume_mm3(self) -> float | None:
        v = self.child.volume_mm3()
        return None if v is None else v * self.scale**3

    def params(self) -> dict[str, Any]:
        return {"child": self.child.to_json(), "scale": self.scale,
                "pivot_lps": self.pivot.tolist(), "shift_lps": self.shift.tolist()}


@dataclass(frozen=True)
class Variation:
    """One twin's draw: base phantom, seed, scale (1 = base size), shift (LPS mm), grid."""

    phantom: str
    seed: int
    scale: float
    shift_lps: tuple[float, float, float]
    spacing_mm: float
    field_mm: tuple[float, float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def draw_variation(phantom: str, seed: int, *, scale_sd: float = 0.05, shift_mm: float = 5.0,
                   spacing_mm: float = 2.0,
                   field_mm: tuple[float, float, float] | None = None) -> Variation:
    """The variation of twin ``seed`` (deterministic; see module docstring)."""
    rng = np.random.default_rng([20261206, seed])
    scale = 1.0 + float(np.clip(rng.normal(0.0, scale_sd), -2 * scale_sd, 2 * scale_sd))
    shift = rng.uniform(-shift_mm, shift_mm, 3) if shift_mm > 0 else np.zeros(3)
    field = None if field_mm is None else _xyz(field_mm)
    return Variation(phantom, int(seed), scale, _xyz(shift), float(spacing_mm), field)


def _xyz(v: Any) -> tuple[float, float, float]:
    """A 3-vector (x, y, z or L, P, S mm) as a float triple."""
    return float(v[0]), float(v[1]), float(v[2])


def variant_spec(variation: Variation) -> PhantomSpec:
    """The base phantom's spec with every shape scaled/shifted and the grid re-sampled."""
    from surgiplan.phantoms.generate import phantom_spec

    base = phantom_spec(variation.phantom)
    g = base.geometry
    size = np.asarray(g.size, dtype=float)
    spacing = np.asarray(g.spacing_mm, dtype=float)
    centre = np.asarray(g.origin_lps) + (size - 1) / 2 * spacing  # axis-aligned base grids
    extent = size * spacing
    if variation.field_mm is not None:  # a smaller field of view around the base centre
        extent = np.minimum(extent, np.asarray(variation.field_mm, dtype=float))
    new_size = np.maximum(np.floor(extent / variation.spacing_mm), 8).astype(int)
    new_spacing = np.full(3, variation.spacing_mm)
    # half-step offset keeps flat faces off voxel centres, as the base grids do
    origin = centre - (new_size - 1) / 2 * new_spacing + 0.25 * variation.spacing_mm
    geometry = ImageGeometry((int(new_size[0]), int(new_size[1]), int(new_size[2])),
                             _xyz(new_spacing), _xyz(origin), g.direction)
    structures = tuple(
        replace(s, shape=Scaled(s.shape, variation.scale, centre, variation.shift_lps))
        for s in base.structures
    )
    return replace(base, geometry=geometry, structures=structures,
                   description=f"{base.description}; variant {variation.to_json()}")


def make_variant(variation: Variation) -> tuple[ImageVolume, Segmentation]:
    """Render a variant in memory: (CT volume in HU, ground-truth labels), seed = noise seed."""
    from surgiplan.phantoms.generate import _label_names, _volume
    from surgiplan.phantoms.render import render_phantom

    spec = variant_spec(variation)
    rendered = render_phantom(spec, seed=variation.seed)
    volume = _volume(spec, rendered, variation.seed)
    labels = Segmentation.from_labelmap(rendered.labels, spec.geometry, _label_names(spec))
    return volume, labels
