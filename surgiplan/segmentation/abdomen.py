"""The contrast abdominal CT's structures for the ``ct-liver`` preset, each kept apart.

STARTING POINTS the user checks and corrects; each comes with its method for the provenance.
The organs (``surgiplan.segmentation.liver``, ``kidneys``, ``gallbladder``) and the great
vessels (``great_vessels``, placed by the spine's canal from ``spine``) are found separately,
then made disjoint (an IVC track that never leaves the liver is dropped, see
``_leaves_liver``): the vena cava is cut out of the liver (the liver's band holds the
isodense caval lumen), and no vessel structure keeps a voxel of the liver (except the
hepatic and portal veins, inside it), the spleen, a kidney or the gallbladder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role

UNREVIEWED = "quality: automatic, unreviewed: check and correct"
MIN_OUTSIDE_SLICES = 3


@dataclass
class Found:
    """One structure: name, role, mask on the CT's grid, and its provenance note."""

    name: str
    role: Role
    mask: np.ndarray = field(repr=False)
    note: str


def _spine_landmarks(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """(spinal canal, spine bone), or None without a spine in view."""
    from surgiplan.segmentation.spine import segment_spine

    try:
        spine = segment_spine(image, geometry, body)
    except BadInputError:  # no spine in view: no landmark for the great vessels, kidneys
        return None
    return spine.canal, spine.bone()


def without_ivc_inside_liver(vessels: dict[str, np.ndarray], image: np.ndarray,
                             geometry: ImageGeometry, body: np.ndarray) -> dict[str, np.ndarray]:
    """``vessels`` (from ``great_vessels.segment_aorta_ivc``) less an inferior vena cava that
    never leaves the liver (``_leaves_liver``), for the presets that find no liver themselves
    (``ct-spine``): the liver is found automatically (``liver.segment_abdomen`` without the
    spleen and the liver's vessels); without a liver in view the vessels are unchanged."""
    from surgiplan.segmentation import liver

    ivc = vessels.get("inferior vena cava")
    if ivc is None:
        return vessels
    try:
        organ = liver.segment_abdomen(image, geometry, body, with_spleen=False,
                                       with_vessels=False).liver.mask
    except BadInputError:  # no liver in view (or not axial): nothing to judge the IVC by
        return vessels
    if _leaves_liver(ivc, organ):
        return vessels
    return {name: mask for name, mask in vessels.items() if name != "inferior vena cava"}


def _leaves_liver(vessel: np.ndarray, liver: np.ndarray) -> bool:
    """Whether at least ``MIN_OUTSIDE_SLICES`` of the vessel's cross-sections lie mostly outside
    the liver. An IVC track that never leaves the liver was not started on the enhancing
    infrahepatic IVC: inside the liver the IVC is as dense as the parenchyma, so an enhancing
    round section there is another vessel (the portal vein), and it is dropped."""
    area = vessel.sum(axis=(1, 2))
    outside = (vessel & ~liver).sum(axis=(1, 2))
    return int(((area > 0) & (outside >= 0.5 * area)).sum()) >= MIN_OUTSIDE_SLICES


def abdomen_structures(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray
                       ) -> list[Found]:
    """Liver, hepatic and portal veins (and their union, "liver vessels"), spleen, kidneys,
    gallbladder, aorta and inferior vena cava where found (see the module docstring)."""
    from surgiplan.segmentation import gallbladder, great_vessels, kidneys, liver

    organs = liver.segment_abdomen(image, geometry, body)
    spleen = organs.spleen.mask if organs.spleen is not None else np.zeros_like(body)
    landmarks = _spine_landmarks(image, geometry, body)
    vessels: dict[str, np.ndarray] = {}
    found_kidneys: dict[str, np.ndarray] = {}
    if landmarks is not None:
        canal, bone = landmarks
        vessels = great_vessels.segment_aorta_ivc(image, geometry, body, canal, bone)
        found_kidneys = kidneys.segment_kidneys(image, geometry, body, canal, bone,
                                                exclude=organs.liver.mask | spleen)
    ivc = vessels.get("inferior vena cava")
    if ivc is not None and not _leaves_liver(ivc, organs.liver.mask):
        del vessels["inferior vena cava"]
        ivc = None
    liver_mask = organs.liver.mask & ~ivc if ivc is not None else organs.liver.mask
    gall = gallbladder.segment_gallbladder(image, geometry, body, liver_mask)
    hepatic, portal = liver.split_hepatic_portal(
        organs.vessels & liver_mask, organs.dark_vessels & liver_mask, geometry, ivc)
    organ_note = f"automatic ({liver.METHOD}); {UNREVIEWED}"
    out = [Found("liver", Role.ORGAN, liver_mask, organ_note),
           Found("hepatic veins", Role.CRITICAL, hepatic,
                 f"automatic ({liver.HEPATIC_METHOD}); {UNREVIEWED}"),
           Found("portal veins", Role.CRITICAL, portal,
                 f"automatic ({liver.PORTAL_METHOD}); {UNREVIEWED}"),
           Found("liver vessels", Role.CRITICAL, hepatic | portal,
                 f"automatic (hepatic and portal veins together: {liver.VESSEL_METHOD}); "
                 f"{UNREVIEWED}")]
    taken = spleen.copy()
    if spleen.any():
        out.append(Found("spleen", Role.ORGAN, spleen, organ_note))
    for name, mask in found_kidneys.items():
        mask = mask & ~liver_mask & ~spleen
        out.append(Found(name, Role.ORGAN, mask, f"automatic ({kidneys.METHOD}); {UNREVIEWED}"))
        taken |= mask
    if gall is not None:
        out.append(Found("gallbladder", Role.ORGAN, gall & ~taken,
                         f"automatic ({gallbladder.METHOD}); {UNREVIEWED}"))
        taken |= gall
    for name, mask in vessels.items():
        keep = mask & ~taken & (~liver_mask if name != "inferior vena cava" else True)
        out.append(Found(name, Role.CRITICAL, keep,
                         f"automatic ({great_vessels.METHOD}); {UNREVIEWED}"))
    return [f for f in out if f.mask.any()]
