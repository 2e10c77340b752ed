"""Import an implant mesh (STL, OBJ, PLY) in its own frame, with its units guessed from size.

The vendor file is only read (never written); its SHA-256 is recorded. Units: a longest
extent under 1 suggests metres, over 1000 suggests micrometres, else millimetres; the guess is
returned as a warning for the user to confirm (or pass ``units`` explicitly).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from surgiplan.errors import BadInputError

SUFFIXES = (".stl", ".obj", ".ply")
UNIT_SCALE_TO_MM = {"mm": 1.0, "m": 1000.0, "cm": 10.0, "um": 0.001, "in": 25.4}


@dataclass(frozen=True)
class ImportedImplant:
    """An implant mesh in its own frame, scaled to mm; ``units`` is what the file was read as."""

    implant_id: str
    vertices_mm: np.ndarray
    faces: np.ndarray
    units: str
    sha256: str
    warnings: list[str] = field(default_factory=list)


def guess_units(longest_extent: float) -> str:
    """Units of a mesh from its longest extent: < 1 -> "m", > 1000 -> "um", else "mm"."""
    if longest_extent < 1.0:
        return "m"
    if longest_extent > 1000.0:
        return "um"
    return "mm"


def import_implant(path: str | Path, *, units: str | None = None) -> ImportedImplant:
    """Read an STL/OBJ/PLY implant; ``units`` (mm, m, cm, um, in) overrides the size guess."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise BadInputError(f"implant files must be STL, OBJ or PLY, not {path.suffix!r}",
                            path=path, action="export the implant as STL, OBJ or PLY")
    try:
        data = path.read_bytes()
        mesh = trimesh.load_mesh(path, process=True, force="mesh")
    except Exception as exc:  # trimesh raises many types for broken files
        raise BadInputError(f"cannot read the implant mesh ({type(exc).__name__}: {exc})",
                            path=path, action="check the file is a valid STL, OBJ or PLY",
                            ) from exc
    if len(mesh.faces) == 0 or not np.all(np.isfinite(mesh.vertices)):
        raise BadInputError("the implant mesh has no triangles or non-finite vertices",
                            path=path, action="export the implant again")
    extent = float(np.max(np.ptp(mesh.vertices, axis=0)))
    warnings = []
    if units is None:
        units = guess_units(extent)
        warnings.append(f"{path.name}: units guessed as {units} from its longest extent "
                        f"{extent:g} (file units); confirm, or give the units explicitly")
    if units not in UNIT_SCALE_TO_MM:
        raise BadInputError(f"unknown implant units {units!r}", path=path,
                            action=f"use one of {sorted(UNIT_SCALE_TO_MM)}")
    if not mesh.is_watertight:
        warnings.append(f"{path.name}: the mesh is not closed; inside/outside tests on it "
                        "are approximate")
    vertices = np.asarray(mesh.vertices, float) * UNIT_SCALE_TO_MM[units]
    return ImportedImplant(implant_id=f"file:{path.name}", vertices_mm=vertices,
                           faces=np.asarray(mesh.faces, np.int64), units=units,
                           sha256=hashlib.sha256(data).hexdigest(), warnings=warnings)
