"""Head on a T1-weighted MR: the ventricles and the no-go regions for a trajectory's entry.

STARTING POINTS the user checks and corrects. Intensities are relative to white matter (the
median of the brain mask, ``wm``); positions use the patient's LPS axes, whatever the scan's
orientation.

1. Depth: each head voxel's distance (mm, SimpleITK Maurer map) to the air outside the head.
2. Ventricles (critical): CSF-dark voxels (< ``CSF_FRACTION`` x wm) deeper than
   ``VENTRICLE_DEPTH_MM`` and above the globes' centre, shrunk by 1.5 mm (thin sulcal CSF
   goes), islands >= 0.3 ml whose centre lies within ``VENTRICLE_REACH_MM`` of the head's
   centre left-right and within 40 mm front-back, grown back by 1.5 mm within the dark voxels,
   holes filled (the lateral and third ventricles).
3. Globes: dark (< ``GLOBE_FRACTION`` x wm) voxels of the head's front (anterior to its centre by
   ``GLOBE_FRONT_MM``), opened by a 4 mm ball, islands of 2.5-14 ml, the two most anterior on
   either side of the mid-line. Each orbit (critical) is its globe grown by ``ORBIT_GROW_MM``
   within the head (the orbital fat, muscles and the start of the optic nerve).
4. Face (critical): the head in front of the globes' centres (less ``FACE_BACK_MM``) and below
   their top (``FACE_TOP_MM`` above their centre): nose, sinuses, mouth, jaw.
5. Ears (critical): the head more than its half-width less ``EAR_DEPTH_MM`` from the mid-line,
   within ``EAR_HALF_LENGTH_MM`` front-back of the head's centre and from 50 mm below the
   globes' centre to 5 mm above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.morphology import (
    distance_to_mask_mm,
    fill_holes,
    grow_mask,
    shrink_mask,
)

CSF_FRACTION = 0.5
VENTRICLE_DEPTH_MM = 30.0
VENTRICLE_REACH_MM = 25.0
GLOBE_FRACTION = 0.35
GLOBE_FRONT_MM = 45.0
ORBIT_GROW_MM = 8.0
FACE_BACK_MM = 5.0
FACE_TOP_MM = 15.0
EAR_DEPTH_MM = 25.0
EAR_HALF_LENGTH_MM = 25.0
METHOD = ("intensity relative to white matter, depth below the scalp and position in the "
          "patient's axes (SimpleITK distance maps, scipy islands)")


@dataclass
class HeadResult:
    """Ventricles and the no-go regions (name -> mask); ``globes`` for the checks."""

    ventricles: np.ndarray = field(repr=False)
    no_go: dict[str, np.ndarray] = field(repr=False)
    globes: list[np.ndarray] = field(repr=False)


def _lps(geometry: ImageGeometry, shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Broadcastable LPS x, y, z (mm) of the voxel centres (k, j, i arrays)."""
    m = geometry.index_to_lps_matrix
    kk, jj, ii = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return [m[a, 0] * ii + m[a, 1] * jj + m[a, 2] * kk + m[a, 3] for a in range(3)]


def _islands(mask: np.ndarray, geometry: ImageGeometry, min_ml: float, max_ml: float,
             ) -> list[np.ndarray]:
    labels, n = ndimage.label(mask)
    ml = np.bincount(labels.ravel(), minlength=n + 1) * geometry.voxel_volume_mm3 / 1000.0
    return [labels == v for v in range(1, n + 1) if min_ml <= ml[v] <= max_ml]


def _centre(mask: np.ndarray, xyz: list[np.ndarray]) -> np.ndarray:
    return np.array([float(np.broadcast_to(c, mask.shape)[mask].mean()) for c in xyz])


def segment_head(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray,
                 brain: np.ndarray) -> HeadResult:
    """Ventricles and no-go regions on a T1 MR (see the module docstring)."""
    if not brain.any():
        raise BadInputError("no brain mask to scale the intensities by",
                            action="segment the brain first")
    wm = float(np.median(image[brain]))
    xyz = _lps(geometry, image.shape)
    depth = distance_to_mask_mm(~head, geometry.spacing_mm[::-1])
    centre = _centre(head, xyz)
    globes = _globes(image, geometry, head, wm, xyz, centre)
    floor = (float(np.mean([_centre(g, xyz)[2] for g in globes])) if globes
             else float(centre[2]) - 20.0)
    ventricles = _ventricles(image, geometry, head, depth, wm, xyz, centre, floor)
    no_go: dict[str, np.ndarray] = {}
    if len(globes) == 2:
        for globe in globes:
            side = "left" if _centre(globe, xyz)[0] > centre[0] else "right"
            no_go[f"orbit {side}"] = grow_mask(globe, geometry, ORBIT_GROW_MM) & head
        eyes = np.mean([_centre(g, xyz) for g in globes], axis=0)
        no_go["face"] = (head & (xyz[1] < eyes[1] + FACE_BACK_MM)
                         & (xyz[2] < eyes[2] + FACE_TOP_MM))
        half_width = 0.5 * float(np.ptp(np.broadcast_to(xyz[0], head.shape)[head]))
        ear_band = (head & (np.abs(xyz[1] - centre[1]) <= EAR_HALF_LENGTH_MM)
                    & (xyz[2] >= eyes[2] - 50.0) & (xyz[2] <= eyes[2] + 5.0))
        lateral = np.abs(xyz[0] - centre[0]) >= half_width - EAR_DEPTH_MM
        no_go["ears"] = ear_band & lateral
    return HeadResult(ventricles, no_go, globes)


def _ventricles(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray,
                depth: np.ndarray, wm: float, xyz: list[np.ndarray], centre: np.ndarray,
                floor_mm: float) -> np.ndarray:
    dark = (head & (image < CSF_FRACTION * wm) & (depth > VENTRICLE_DEPTH_MM)
            & (xyz[2] > floor_mm + 10.0))
    core = shrink_mask(dark, geometry, 1.0)  # thin sulcal CSF goes
    out = np.zeros_like(head)
    for island in _islands(core, geometry, 0.3, 200.0):
        c = _centre(island, xyz)
        if abs(c[0] - centre[0]) <= VENTRICLE_REACH_MM and abs(c[1] - centre[1]) <= 40.0:
            out |= island
    return fill_holes(grow_mask(out, geometry, 1.0) & dark)


def _globes(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray, wm: float,
            xyz: list[np.ndarray], centre: np.ndarray) -> list[np.ndarray]:
    """The two eyeballs (empty list unless one on each side is found)."""
    front = head & (image < GLOBE_FRACTION * wm) & (xyz[1] < centre[1] - GLOBE_FRONT_MM)
    inner = distance_to_mask_mm(~front, geometry.spacing_mm[::-1]) > 4.0
    opened = grow_mask(inner, geometry, 4.0) & front
    found: dict[str, tuple[float, np.ndarray]] = {}
    for island in _islands(opened, geometry, 2.5, 14.0):
        c = _centre(island, xyz)
        side = "left" if c[0] > centre[0] else "right"
        if abs(c[0] - centre[0]) > 15.0 and (side not in found or c[1] < found[side][0]):
            found[side] = (c[1], island)
    return [v[1] for v in found.values()] if len(found) == 2 else []
