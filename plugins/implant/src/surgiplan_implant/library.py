"""The parametric pedicle screw library (package data ``data/pedicle_screws.json``).

Screw frame (mm): the shank starts at the origin and runs along +z, the tip is at
``z = length_mm``, the head sits at ``z <= 0``. ``diameter_mm`` is the major (outer thread)
diameter, ``length_mm`` the shank length without the head. Size text is ``DIAMETERxLENGTH``
(diameter first), e.g. ``6.5x45``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError

LIBRARY_SCHEMA = "surgiplan.implant-library/1"


def default_library_path() -> Path:
    """The plug-in's own library, shipped as package data (``surgiplan_implant/data``)."""
    return Path(str(files("surgiplan_implant") / "data" / "pedicle_screws.json"))


@dataclass(frozen=True)
class SizeRange:
    """An allowed range of a screw dimension (mm) and its catalogue step."""

    minimum: float
    maximum: float
    step: float

    def contains(self, value: float) -> bool:
        return self.minimum - 1e-9 <= value <= self.maximum + 1e-9

    def floor(self, value: float) -> float:
        """The largest catalogue size <= ``value``, clamped to the range."""
        n = math.floor((value - self.minimum) / self.step + 1e-9)
        return float(min(self.maximum, max(self.minimum, self.minimum + n * self.step)))


@dataclass(frozen=True)
class ScrewFamily:
    """One parametric screw family: size ranges and the geometry model."""

    family: str
    title: str
    source: str
    diameter: SizeRange
    length: SizeRange
    tip_length_per_diameter: float
    tip_end_diameter_fraction: float
    head_diameter_mm: float
    head_height_mm: float
    ring_spacing_mm: float
    sections: int

    def screw_id(self, diameter_mm: float, length_mm: float) -> str:
        return f"{self.family}:{diameter_mm:g}x{length_mm:g}"


def _range(data: dict[str, Any]) -> SizeRange:
    return SizeRange(float(data["min"]), float(data["max"]), float(data["step"]))


@lru_cache(maxsize=4)
def load_library(path: Path | None = None) -> tuple[ScrewFamily, ...]:
    """The screw families of a library file (``BadInputError`` naming it when malformed)."""
    path = Path(path) if path is not None else default_library_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != LIBRARY_SCHEMA:
            raise ValueError(f"schema must be {LIBRARY_SCHEMA}")
        families = []
        for s in data["screws"]:
            g = s["geometry"]
            families.append(ScrewFamily(
                family=str(s["family"]), title=str(s["title"]), source=str(s["source"]),
                diameter=_range(s["diameter_mm"]), length=_range(s["length_mm"]),
                tip_length_per_diameter=float(g["tip_length_per_diameter"]),
                tip_end_diameter_fraction=float(g["tip_end_diameter_fraction"]),
                head_diameter_mm=float(g["head_diameter_mm"]),
                head_height_mm=float(g["head_height_mm"]),
                ring_spacing_mm=float(g["ring_spacing_mm"]), sections=int(g["sections"])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"cannot read the implant library ({exc})", path=path,
                            action="reinstall the surgiplan-implant plug-in") from exc
    if not families:
        raise BadInputError("the implant library lists no screws", path=path,
                            action="reinstall the surgiplan-implant plug-in")
    return tuple(families)


def screw_family(name: str | None = None) -> ScrewFamily:
    """A family by name (the first one when ``name`` is None)."""
    families = load_library()
    if name is None:
        return families[0]
    for f in families:
        if f.family == name:
            return f
    raise BadInputError(f"no screw family {name!r} in the implant library",
                        action=f"use one of {[f.family for f in families]}")


def parse_screw_size(text: str, family: ScrewFamily | None = None) -> tuple[float, float]:
    """``"DIAMETERxLENGTH"`` (mm, diameter first) -> (diameter_mm, length_mm), range-checked."""
    family = family or screw_family()
    parts = text.lower().replace("×", "x").split("x")
    try:
        diameter, length = (float(p) for p in parts)
    except ValueError:
        raise BadInputError(f"screw size {text!r} is not DIAMETERxLENGTH",
                            action="give e.g. --screw 6.5x45 (mm, diameter first)") from None
    d_ok, l_ok = family.diameter.contains(diameter), family.length.contains(length)
    if not d_ok and not l_ok and family.diameter.contains(length) \
            and family.length.contains(diameter):
        raise BadInputError(f"screw size {text!r} looks swapped: the diameter comes first",
                            action=f"give --screw {length:g}x{diameter:g}")
    if not (d_ok and l_ok):
        raise BadInputError(
            f"screw size {text!r} is outside the library: diameter {family.diameter.minimum:g}-"
            f"{family.diameter.maximum:g} mm, length {family.length.minimum:g}-"
            f"{family.length.maximum:g} mm", action="pick a size in range (DIAMETERxLENGTH)")
    return diameter, length


def screw_profile(family: ScrewFamily, diameter_mm: float, length_mm: float) -> np.ndarray:
    """The (radius, z) outline (mm) revolved about +z: head top to tip, ends on the axis."""
    r = diameter_mm / 2.0
    tip_len = min(family.tip_length_per_diameter * diameter_mm, 0.5 * length_mm)
    r_tip = family.tip_end_diameter_fraction * r
    rh, hh = family.head_diameter_mm / 2.0, family.head_height_mm
    n_shank = max(2, math.ceil((length_mm - tip_len) / family.ring_spacing_mm) + 1)
    n_tip = max(2, math.ceil(tip_len / family.ring_spacing_mm) + 1)
    z_shank = np.linspace(0.0, length_mm - tip_len, n_shank)
    z_tip = np.linspace(length_mm - tip_len, length_mm, n_tip)[1:]
    r_cone = r + (r_tip - r) * (z_tip - (length_mm - tip_len)) / tip_len
    head = [(0.0, -hh), (rh, -hh), (rh, 0.0)]
    shank = [(r, z) for z in z_shank] + list(zip(r_cone, z_tip, strict=True))
    return np.array(head + shank + [(0.0, length_mm)], dtype=float)


def screw_mesh(diameter_mm: float, length_mm: float,
               family: ScrewFamily | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Closed, outward-oriented screw mesh in its own frame: (vertices mm (N, 3), faces (M, 3))."""
    import trimesh

    family = family or screw_family()
    mesh = trimesh.creation.revolve(screw_profile(family, diameter_mm, length_mm),
                                    sections=family.sections)
    mesh.merge_vertices()
    if mesh.volume < 0:
        mesh.invert()
    return np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
