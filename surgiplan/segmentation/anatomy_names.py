"""Standard structure names per anatomy (head, spine, abdomen) with default role, colour and
safety margin (mm). The margins are conservative planning defaults, not clinical guidance: the
surgeon sets the margin of each case. Colours are RGB in 0..1 (close to 3D Slicer's
terminology colours so structures look familiar).

Names are matched after normalisation (case, ``_``/``-``, US spelling ``tumor``) and through
synonyms (``IVC``, ``left kidney``, ``lesion``...); a name containing tumour/tumor/lesion/
metastasis is a target whatever else it says. Structures without a known name get distinct
colours from :data:`DISTINCT_COLORS` (:func:`distinct_color`).
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
    ("abdomen", "heart", Role.CRITICAL, (206, 110, 84), 3.0),
    ("abdomen", "adrenal gland", Role.ORGAN, (249, 186, 150), 1.0),
    ("abdomen", "duodenum", Role.CRITICAL, (255, 253, 229), 2.0),
)

# other spellings -> a name of the table (after normalisation)
SYNONYMS: dict[str, str] = {
    "tumor": "tumour", "lesion": "tumour", "neoplasm": "tumour", "metastasis": "tumour",
    "liver tumor": "liver tumour", "hepatic tumour": "liver tumour",
    "liver lesion": "liver tumour", "hcc": "liver tumour",
    "ivc": "inferior vena cava", "vena cava": "inferior vena cava",
    "portal": "portal vein", "hepatic vein": "hepatic veins", "bile duct": "bile ducts",
    "gall bladder": "gallbladder", "kidneys": "kidney", "left kidney": "kidney",
    "right kidney": "kidney", "kidney left": "kidney", "kidney right": "kidney",
    "lungs": "lung", "left lung": "lung", "right lung": "lung", "lung left": "lung",
    "lung right": "lung", "colon": "bowel", "small bowel": "bowel", "intestine": "bowel",
    "small intestine": "bowel", "bones": "bone", "vessel": "vessels", "arteries": "vessels",
    "vertebra": "vertebrae", "cord": "spinal cord",
    "adrenal": "adrenal gland", "adrenal glands": "adrenal gland", "scalp": "skin",
    "lateral ventricles": "ventricles",
}
TARGET_WORDS = ("tumour", "tumor", "lesion", "metastasis", "metastases", "neoplasm")

# Distinct display colours (0..255) for structures without a known name, in order
# (close to 3D Slicer's GenericAnatomyColors first entries).
DISTINCT_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 174, 128), (241, 214, 145), (177, 122, 101), (111, 184, 210), (216, 101, 79),
    (221, 130, 101), (144, 238, 144), (192, 104, 88), (220, 245, 20), (78, 63, 0),
    (255, 250, 220), (230, 220, 70), (200, 200, 235), (250, 250, 210), (244, 214, 49),
    (0, 151, 206), (216, 132, 105), (183, 156, 220), (183, 214, 211), (152, 189, 207),
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


def normalised_name(name: str) -> str:
    """Lower case, ``_``/``-`` as spaces, single spaces, US ``tumor`` as ``tumour``."""
    text = " ".join(name.strip().lower().replace("_", " ").replace("-", " ").split())
    return text.replace("tumor", "tumour")


def lookup_anatomy(name: str) -> AnatomyName | None:
    """The entry for this name or a synonym (case/spelling-insensitive), else None; a name
    naming a tumour/lesion that is not listed gets the generic tumour entry (a target)."""
    key = normalised_name(name)
    key = SYNONYMS.get(key, key)
    found = next((a for a in ANATOMY_NAMES if a.name == key), None)
    if found is None:
        trimmed = key.rstrip("0123456789 ")  # "tumour 2", "kidney 1"
        trimmed = SYNONYMS.get(trimmed, trimmed)
        found = next((a for a in ANATOMY_NAMES if a.name == trimmed), None)
    if found is None and any(word in key.split() for word in TARGET_WORDS):
        found = next(a for a in ANATOMY_NAMES if a.name == "tumour")
    return found


def distinct_color(index: int) -> tuple[float, float, float]:
    """The ``index``-th colour of :data:`DISTINCT_COLORS` (cycling), RGB in 0..1."""
    return _rgb(*DISTINCT_COLORS[index % len(DISTINCT_COLORS)])


def imported_style(name: str, role: Role, color: tuple[float, float, float],
                   margin_mm: float, taken: set[tuple[float, ...]]
                   ) -> tuple[Role, tuple[float, float, float], float]:
    """(role, colour, margin) for an imported structure: a known name (or synonym) fills in
    what the file left at the defaults - role ``other``, the role's default colour, margin 0;
    an unknown name gets the first distinct colour not in ``taken`` (colours in use) instead
    of its role's shared one. The colour chosen is added to ``taken``."""
    from surgiplan.model.structures import ROLE_COLORS

    def key(c) -> tuple[float, ...]:
        return tuple(round(float(v), 3) for v in c)

    entry = lookup_anatomy(name)
    default_colour = key(color) == key(ROLE_COLORS[Role(role)])
    if entry is not None and Role(role) is Role.OTHER:
        role, margin_mm = entry.role, margin_mm or entry.margin_mm
    if default_colour:
        if entry is not None:
            color = entry.color
        else:
            used = {key(c) for c in taken}
            free = [c for n in range(len(DISTINCT_COLORS))
                    if key(c := distinct_color(n)) not in used]
            color = free[0] if free else distinct_color(len(taken))
    taken.add(key(color))
    return Role(role), color, margin_mm
