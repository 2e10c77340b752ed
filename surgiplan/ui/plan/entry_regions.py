"""Allowed-entry regions derived from anatomy (issue 15, item 5): for a head, entries belong on the
skin over the cranial vault, not on the face or the ears. Over the vault, scalp + skull + CSF put
the brain within about 15 mm of the skin; over the face (orbits, sinuses, nose) and the ears the
brain is farther. :func:`face_zone_mask` marks the skin farther than ``distance_mm`` from the
brain; added as a structure and named as a no-go structure, the safest-path search rejects
every entry on it (a path starting inside a no-go structure enters it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surgiplan.model.structures import Role

FACE_DISTANCE_MM = 20.0  # skin farther than this from the brain is face or ear, not vault
ZONE_NAME = "face and ears (no entry)"


def brain_structure(twin: Any) -> str | None:
    """The brain: a structure named like it, else the largest organ-role structure."""
    named = [s.name for s in twin.structures if "brain" in s.name.lower()
             or "cerebrum" in s.name.lower()]
    if named:
        return named[0]
    organs = [s.name for s in twin.structures if s.role is Role.ORGAN]
    return max(organs, key=twin.voxel_count) if organs else None


def skin_structure(twin: Any) -> str | None:
    skins = [s.name for s in twin.structures if s.role is Role.SKIN]
    return skins[0] if skins else None


def face_zone_mask(twin: Any, *, distance_mm: float = FACE_DISTANCE_MM) -> np.ndarray:
    """Skin voxels farther than ``distance_mm`` from the brain (bool, z y x); ValueError naming
    what is missing when the case has no skin or no brain."""
    skin, brain = skin_structure(twin), brain_structure(twin)
    if skin is None or brain is None:
        missing = "a skin-role structure" if skin is None else "a brain (or organ) structure"
        raise ValueError(f"deriving the face and ears needs {missing}")
    from surgiplan.simulation import SimulationContext

    distance = SimulationContext(twin).distance_map(brain)  # signed, mm (LPS grid)
    return twin.segmentation.mask(skin) & (distance > distance_mm)


def add_face_zone(twin: Any, mask: np.ndarray, editor: Any = None) -> str:
    """Add (or replace) the derived zone as a structure (one undo step with ``editor``)."""
    props = {"role": Role.OTHER, "color": (0.6, 0.6, 0.6),
             "description": f"skin farther than {FACE_DISTANCE_MM:g} mm from the brain: face "
                            "and ears (derived from anatomy; no entry)"}
    if ZONE_NAME in twin.segmentation.names():
        twin.remove_structure(ZONE_NAME)
    if editor is not None:
        editor.add_structure(ZONE_NAME, mask, **props)
    else:
        twin.add_structure(ZONE_NAME, mask, **props)
    return ZONE_NAME
