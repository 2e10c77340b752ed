"""Standard structure names per anatomy (head, spine, abdomen) with default role, colour and
safety margin (mm). The margins are conservative planning defaults, not clinical guidance: the
surgeon sets the margin of each case. Colours are RGB in 0..1 (close to 3D Slicer's
terminology colours so structures look familiar).
"""

from __future__ import annotations

from dataclasses import dataclass

from surgiplan.model.structures import Role


@dataclass(frozen=True)
class AnatomyName:
    """A standard structure: ``name``, planning ``role``, display ``color``, ``margin_mm``."""

    name: str
    role: Role
    color: tuple[float, float, float]
    margin_mm: float
    region: str


def _rgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    return (round(r / 255, 4), round(g / 255, 4), round(b / 255, 4))


_TABLE: tuple[tuple[str, str, Role, tuple[int, int, int], float], ...] = (
    # region, name, role, colour (0..255), margin mm
    ("head", "skin", Role.SKIN, (177, 122, 101), 0.0),
    ("head", "skull", Role.BONE, (241, 214, 145), 0.0),
    ("head", "brain", Role.ORGAN, (250, 250, 225), 0.0),
    ("head", "ventricles", Role.CRITICAL, (88, 106, 215), 2.0),
    ("head", "brainstem", Role.CRITICAL, (185, 102, 83), 3.0),
    ("head", "optic nerve", Role.CRITICAL, (244, 214, 49), 2.0),
    ("head", "optic chiasm", Role.CRITICAL, (244, 214, 49), 2.0),
    ("head", "internal carotid artery", Role.CRITICAL, (216, 101, 79), 3.0),
    ("head", "vessels", Role.CRITICAL, (216, 101, 79), 2.0),
    ("head", "motor cortex", Role.CRITICAL, (220, 160, 110), 3.0),
    ("head", "tumour", Role.TARGET, (144, 238, 144), 0.0),
    ("spine", "vertebrae", Role.BONE, (241, 214, 145), 0.0),
    ("spine", "spinal cord", Role.CRITICAL, (244, 214, 49), 2.0),
    ("spine", "spinal canal", Role.CRITICAL, (200, 200, 235), 1.0),
    ("spine", "nerve roots", Role.CRITICAL, (232, 200, 32), 2.0),
    ("spine", "intervertebral discs", Role.ORGAN, (111, 184, 210), 0.0),
    ("spine", "aorta", Role.CRITICAL, (224, 97, 76), 3.0),
    ("spine", "pedicle", Role.TARGET, (230, 220, 70), 0.0),
    ("abdomen", "liver", Role.ORGAN, (221, 130, 101), 0.0),
    ("abdomen", "liver tumour", Role.TARGET, (144, 238, 144), 0.0),
    ("abdomen", "portal vein", Role.CRITICAL, (0, 151, 206), 3.0),
    ("abdomen", "hepatic veins", Role.CRITICAL, (0, 151, 206), 3.0),
    ("abdomen", "hepatic artery", Role.CRITICAL, (216, 101, 79), 3.0),
    ("abdomen", "inferior vena cava", Role.CRITICAL, (0, 151, 206), 3.0),
    ("abdomen", "bile ducts", Role.CRITICAL, (145, 200, 90), 2.0),
    ("abdomen", "gallbladder", Role.CRITICAL, (139, 150, 98), 2.0),
    ("abdomen", "kidney", Role.ORGAN, (185, 102, 83), 2.0),
    ("abdomen", "pancreas", Role.ORGAN, (249, 180, 111), 2.0),
    ("abdomen", "spleen", Role.ORGAN, (157, 108, 162), 2.0),
    ("abdomen", "stomach", Role.ORGAN, (216, 132, 105), 2.0),
    ("abdomen", "bowel", Role.CRITICAL, (255, 253, 229), 3.0),
    ("abdomen", "lung", Role.CRITICAL, (197, 165, 145), 2.0),
    ("abdomen", "bone", Role.BONE, (241, 214, 145), 0.0),
    ("abdomen", "vessels", Role.CRITICAL, (216, 101, 79), 3.0),
    ("abdomen", "skin", Role.SKIN, (177, 122, 101), 0.0),
)

ANATOMY_NAMES: tuple[AnatomyName, ...] = tuple(
    AnatomyName(name, role, _rgb(*rgb), margin, region)
    for region, name, role, rgb, margin in _TABLE
)


def anatomy_regions() -> list[str]:
    """The anatomy regions that have name lists: head, spine, abdomen."""
    return list(dict.fromkeys(a.region for a in ANATOMY_NAMES))


def anatomy_names(region: str | None = None) -> list[AnatomyName]:
    """Standard names of one region (``"liver"`` is accepted for abdomen), or of all."""
    if region == "liver":
        region = "abdomen"
    if region is not None and region not in anatomy_regions():
        raise ValueError(f"unknown anatomy region {region!r}; have {anatomy_regions()}")
    return [a for a in ANATOMY_NAMES if region is None or a.region == region]


def lookup_anatomy(name: str) -> AnatomyName | None:
    """The first entry with this name (case-insensitive), else None."""
    key = name.strip().lower()
    return next((a for a in ANATOMY_NAMES if a.name == key), None)
