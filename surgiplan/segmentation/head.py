"""Head on a T1-weighted MR: the brain, the ventricles and the no-go regions for an entry.

STARTING POINTS the user checks and corrects. Intensities are relative to white matter
(``wm``: the median of the brightest of three SimpleITK Otsu classes, of the head deeper than
15 mm for the brain, of the brain for the rest);
positions use the patient's LPS axes, whatever the scan's orientation.

1. Brain (:func:`brain_mask`): brain-tissue voxels (``TISSUE_RANGE`` x wm: grey and white
   matter, not CSF, bone, air or fat) deeper than ``BRAIN_CUT_MM`` in that tissue (depths on
   a ~2 mm grid), which cuts the bridges to scalp, orbits and neck; largest island, grown back
   geodesically (scipy conditional dilation, ``BRAIN_CUT_MM + BRAIN_REACH_MM`` voxel steps)
   within the tissue deeper than ``BRAIN_MIN_DEPTH_MM`` below the skin, so the gyri reach the
   inner skull; closed by 3 mm (sulcal CSF) and filled. Caudal limit at the foramen magnum:
   below the lowest 1 mm axial section with at least ``FORAMEN_AREA_CM2`` of brain (the
   cerebellum's lower end) only the medulla and cord remain, and they are cut off.
2. Ventricles (critical): CSF-dark voxels (< ``CSF_FRACTION`` x wm) of the brain whose distance
   to brighter tissue exceeds ``VENTRICLE_THICK_MM`` (thin sulcal CSF goes) and to the brain's
   surface ``VENTRICLE_DEPTH_MM``; islands >= 0.3 ml centred within ``VENTRICLE_REACH_MM`` of
   the brain's mid-line and 40 mm of its centre front-back (the lateral ventricles' bodies and
   atria) grow back geodesically within the dark voxels more than 5 mm inside the brain for
   ``VENTRICLE_GROW_MM`` (frontal, occipital and temporal horns where resolvable), holes filled.
3. Globes: dark (< ``GLOBE_FRACTION`` x wm) voxels of the head's front (anterior to its centre by
   ``GLOBE_FRONT_MM``), opened by a 4 mm ball, islands of 2.5-14 ml, the two most anterior on
   either side of the mid-line. Each orbit (critical) is its globe grown by ``ORBIT_GROW_MM``
   within the head (the orbital fat, muscles and the start of the optic nerve).
4. Face (critical): the head in front of the globes' centres (less ``FACE_BACK_MM``) and below
   their top (``FACE_TOP_MM`` above their centre): nose, mouth, jaw.
5. Sinuses (critical): air-dark voxels (< ``AIR_FRACTION`` x wm) inside the head, outside the
   orbits and the brain grown by 2 mm, in a box around the globes' centre (``SINUS_BOX_MM``:
   40 mm either side of the mid-line, up to 55 mm behind, 40 mm above and 45 mm below: the
   mastoid cells, mouth and teeth are outside it), opened by ``SINUS_OPEN_MM`` (thin dark bone
   goes), islands >= 0.5 ml: the frontal, ethmoid, maxillary and sphenoid sinuses and the air
   of the nasal cavity.
6. Ears (critical): the auricles found as the head's lateral protrusions. On a ~2 mm grid
   (every n-th voxel, beyond the grid is air) the head is opened by a ``EAR_OPEN_MM`` ball
   (SimpleITK Maurer distance maps): what lies more than ``EAR_OUT_MM`` outside the opened head
   sticks out (ears, nose, chin, lips). Islands kept as ear: centred more lateral than the
   brain's half-width less ``EAR_LATERAL_SLACK_MM`` from its mid-line, within
   ``EAR_HALF_LENGTH_MM`` front-back of the brain's centre, from ``EAR_BELOW_MM`` below the
   brain's lowest point (the cerebellum) to ``EAR_ABOVE_MM`` below its centre (the temporal
   lobes' level). On the full grid they grow geodesically within what sticks out (the
   auricle's thin rims, the concha and canal opening) for ``EAR_REACH_MM``, then by
   ``EAR_MARGIN_MM`` within the head (the skin around the auricle); specks < 1 ml go.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import bounding_box, pad_box
from surgiplan.segmentation.islands import keep_largest_island, remove_small_islands
from surgiplan.segmentation.morphology import (
    distance_to_mask_mm,
    fill_holes,
    grow_mask,
    shrink_mask,
)

TISSUE_RANGE = (0.45, 1.3)
BRAIN_CUT_MM = 5.0
BRAIN_REACH_MM = 10.0
BRAIN_MIN_DEPTH_MM = 8.0
FORAMEN_AREA_CM2 = 12.0
CSF_FRACTION = 0.5
VENTRICLE_THICK_MM = 1.5
VENTRICLE_DEPTH_MM = 12.0
VENTRICLE_REACH_MM = 25.0
VENTRICLE_GROW_MM = 10.0
GLOBE_FRACTION = 0.3
GLOBE_FRONT_MM = 45.0
ORBIT_GROW_MM = 8.0
FACE_BACK_MM = 5.0
FACE_TOP_MM = 15.0
AIR_FRACTION = 0.15
SINUS_BOX_MM = (40.0, 55.0, 40.0, 45.0)  # |left-right|, behind, above, below the globes
SINUS_OPEN_MM = 2.0
EAR_OPEN_MM = 10.0
EAR_OUT_MM = 2.0
EAR_LATERAL_SLACK_MM = 10.0
EAR_HALF_LENGTH_MM = 40.0
EAR_BELOW_MM = 10.0
EAR_ABOVE_MM = 20.0
EAR_REACH_MM = 20.0
EAR_MARGIN_MM = 10.0
METHOD = ("intensity relative to white matter (SimpleITK multi-Otsu), depth and thickness "
          "(SimpleITK distance maps), geodesic growth and islands (scipy), position in the "
          "patient's axes; ears: the head's lateral protrusions beyond its 10 mm-ball opening")
BRAIN_METHOD = ("skull stripping: grey/white-matter intensities, 5 mm erosion, largest island, "
                "geodesic regrowth (scipy), cut at the foramen magnum")


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


def _geodesic_grow(seed: np.ndarray, within: np.ndarray, geometry: ImageGeometry,
                   reach_mm: float) -> np.ndarray:
    """``seed`` grown inside ``within`` by up to ``reach_mm`` (6-connected voxel steps)."""
    steps = max(1, round(reach_mm / min(geometry.spacing_mm)))
    grown = ndimage.binary_dilation(seed, ndimage.generate_binary_structure(3, 1),
                                    iterations=steps, mask=within)
    return grown | seed


def white_matter_level(image: np.ndarray, within: np.ndarray) -> float:
    """White matter's T1 intensity: the median of the brightest of three Otsu classes of the
    ``within`` voxels (SimpleITK ``OtsuMultipleThresholds``: CSF/bone, grey, white matter)."""
    import SimpleITK as sitk

    values = image[within]
    if values.size < 1000:
        raise BadInputError("the head is too small to find white matter in",
                            action="check that the image is a whole-head T1 MR")
    sample = np.ascontiguousarray(values[:: max(1, values.size // 2_000_000)], np.float32)
    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(2)
    otsu.SetNumberOfHistogramBins(256)
    otsu.Execute(sitk.GetImageFromArray(sample.reshape(1, 1, -1)))
    return float(np.median(sample[sample > otsu.GetThresholds()[-1]]))


def brain_mask(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray) -> np.ndarray:
    """The brain (cortex to the inner skull, cut at the foramen magnum; module docstring 1).

    White matter's level comes from the head deeper than 15 mm."""
    depth = _depth_mm(head, geometry)
    wm = white_matter_level(image, head & (depth > 15.0))
    tissue = head & (image >= TISSUE_RANGE[0] * wm) & (image <= TISSUE_RANGE[1] * wm)
    core = keep_largest_island(tissue & (_depth_mm(tissue, geometry) > BRAIN_CUT_MM))
    if not core.any():
        raise BadInputError("no brain found in the head",
                            action="check that the image is a whole-head T1 MR")
    reach = BRAIN_CUT_MM + BRAIN_REACH_MM
    brain = keep_largest_island(_geodesic_grow(core, tissue & (depth > BRAIN_MIN_DEPTH_MM),
                                               geometry, reach))
    brain = fill_holes(brain | shrink_mask(grow_mask(brain, geometry, 3.0), geometry, 3.0))
    return keep_largest_island(brain & _above_foramen_magnum(brain, geometry))


def _depth_mm(mask: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Distance (mm) of each voxel to the nearest voxel outside ``mask``, on a grid of about
    2 mm voxels (every n-th voxel; SimpleITK Maurer map) repeated back onto the full grid:
    within ~1.7 mm, eight times cheaper on a 1 mm MR, for the coarse depth tests here."""
    spacing = np.asarray(geometry.spacing_mm[::-1])
    step = np.maximum(1, np.rint(2.0 / spacing)).astype(int)
    coarse = mask[::step[0], ::step[1], ::step[2]]
    depth = distance_to_mask_mm(~coarse, tuple(spacing * step))
    for axis, n in enumerate(step):
        depth = np.repeat(depth, n, axis=axis)
    return depth[:mask.shape[0], :mask.shape[1], :mask.shape[2]]


def _above_foramen_magnum(brain: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Voxels at or above the lowest 1 mm axial section holding >= FORAMEN_AREA_CM2 of brain."""
    z = _lps(geometry, brain.shape)[2]
    bins = np.floor(np.broadcast_to(z, brain.shape)[brain]).astype(int)
    lowest = int(bins.min())
    area_cm2 = np.bincount(bins - lowest) * geometry.voxel_volume_mm3 / 100.0
    wide = np.nonzero(area_cm2 >= FORAMEN_AREA_CM2)[0]
    cut = lowest + int(wide.min()) if wide.size else lowest
    return np.asarray(z >= cut)


def segment_head(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray,
                 brain: np.ndarray) -> HeadResult:
    """Ventricles and no-go regions on a T1 MR (see the module docstring)."""
    if not brain.any():
        raise BadInputError("no brain mask to find the ventricles in",
                            action="segment the brain first")
    wm = white_matter_level(image, brain)
    xyz = _lps(geometry, image.shape)
    centre = _centre(head, xyz)
    globes = _globes(image, geometry, head, wm, xyz, centre)
    ventricles = _ventricles(image, geometry, brain, wm, xyz)
    no_go: dict[str, np.ndarray] = {}
    if len(globes) == 2:
        for globe in globes:
            side = "left" if _centre(globe, xyz)[0] > centre[0] else "right"
            no_go[f"orbit {side}"] = grow_mask(globe, geometry, ORBIT_GROW_MM) & head
        eyes = np.mean([_centre(g, xyz) for g in globes], axis=0)
        no_go["face"] = (head & (xyz[1] < eyes[1] + FACE_BACK_MM)
                         & (xyz[2] < eyes[2] + FACE_TOP_MM))
        orbits = no_go["orbit left"] | no_go["orbit right"]
        no_go["sinuses"] = _sinuses(image, geometry, head & ~orbits, brain, wm, xyz, eyes)
    ears = _ears(geometry, head, brain, xyz)
    if ears.any():
        no_go["ears"] = ears
    return HeadResult(ventricles, no_go, globes)


def _protrusions(head: np.ndarray, geometry: ImageGeometry,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head, mm, step) on the grid of every ``step``-th voxel (~2 mm; beyond it is air):
    the head and each voxel's distance (mm) outside the head's opening by an ``EAR_OPEN_MM``
    ball (0 inside it)."""
    spacing = np.asarray(geometry.spacing_mm[::-1])
    step = np.maximum(1, np.rint(2.0 / spacing)).astype(int)
    coarse = np.pad(head[::step[0], ::step[1], ::step[2]], 1)
    coarse_mm = (float(spacing[0] * step[0]), float(spacing[1] * step[1]),
                 float(spacing[2] * step[2]))
    core = distance_to_mask_mm(~coarse, coarse_mm) > EAR_OPEN_MM
    outside_mm = np.maximum(distance_to_mask_mm(core, coarse_mm) - EAR_OPEN_MM, 0.0)
    inner = (slice(1, -1),) * 3
    return coarse[inner], outside_mm[inner], step


def _ears(geometry: ImageGeometry, head: np.ndarray, brain: np.ndarray,
          xyz: list[np.ndarray]) -> np.ndarray:
    """Both auricles and ``EAR_MARGIN_MM`` of skin around them (module docstring 6)."""
    coarse_head, outside_mm, step = _protrusions(head, geometry)
    sticking_out = coarse_head & (outside_mm > EAR_OUT_MM)
    grid = (slice(None, None, step[0]), slice(None, None, step[1]), slice(None, None, step[2]))
    coarse_xyz = [np.broadcast_to(c, head.shape)[grid] for c in xyz]
    brain_xyz = [c[brain[grid]] for c in coarse_xyz]
    middle = np.array([float(c.mean()) for c in brain_xyz])
    half_width = 0.5 * float(np.ptp(brain_xyz[0]))
    lowest = float(brain_xyz[2].min())
    labels, n = ndimage.label(sticking_out)
    count = np.maximum(np.bincount(labels.ravel(), minlength=n + 1), 1)
    dx, dy, z = (np.bincount(labels.ravel(), weights=c.ravel(), minlength=n + 1) / count
                 for c in coarse_xyz)
    dx, dy = np.abs(dx - middle[0]), np.abs(dy - middle[1])
    keep = ((dx >= half_width - EAR_LATERAL_SLACK_MM) & (dy <= EAR_HALF_LENGTH_MM)
            & (z >= lowest - EAR_BELOW_MM) & (z <= middle[2] - EAR_ABOVE_MM))
    keep[0] = False
    ears = keep[labels]
    seeds = _upsample(ears, step, head.shape) & head
    box = _box(seeds, pad=int(np.ceil(EAR_REACH_MM / min(geometry.spacing_mm))) + 1)
    sticks_out = _upsample(coarse_head & (outside_mm > 0.0), step, head.shape)[box] & head[box]
    full = np.zeros_like(head)
    full[box] = _geodesic_grow(seeds[box], sticks_out, geometry, EAR_REACH_MM)
    grown = grow_mask(full, geometry, EAR_MARGIN_MM) & head
    return remove_small_islands(grown, geometry, min_volume_mm3=1000.0)  # specks of the "& head"


def _upsample(coarse: np.ndarray, step: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A mask on the grid of every ``step``-th voxel repeated back onto the full grid."""
    for axis, n in enumerate(step):
        coarse = np.repeat(coarse, n, axis=axis)
    return coarse[:shape[0], :shape[1], :shape[2]]


def _box(mask: np.ndarray, pad: int = 3) -> tuple[slice, ...]:
    """The bounding box of ``mask`` grown by ``pad`` voxels (the whole array when empty)."""
    found = bounding_box(mask)
    if found is None:
        return tuple(slice(0, n) for n in mask.shape)
    return tuple(pad_box(found, (pad, pad, pad), mask.shape))


def _ventricles(image: np.ndarray, geometry: ImageGeometry, brain: np.ndarray, wm: float,
                xyz: list[np.ndarray]) -> np.ndarray:
    box = _box(brain)
    sub = brain[box]
    spacing = geometry.spacing_mm[::-1]
    depth = distance_to_mask_mm(~sub, spacing)
    dark = sub & (image[box] < CSF_FRACTION * wm)
    thick = distance_to_mask_mm(~dark, spacing) > VENTRICLE_THICK_MM
    local = [np.broadcast_to(c, brain.shape)[box] for c in xyz]
    middle = _centre(sub, local)
    seeds = np.zeros_like(sub)
    for island in _islands(thick & (depth > VENTRICLE_DEPTH_MM), geometry, 0.3, 200.0):
        c = _centre(island, local)
        if abs(c[0] - middle[0]) <= VENTRICLE_REACH_MM and abs(c[1] - middle[1]) <= 40.0:
            seeds |= island
    out = np.zeros_like(brain)
    out[box] = fill_holes(_geodesic_grow(seeds, dark & (depth > 5.0), geometry,
                                         VENTRICLE_GROW_MM))
    return out


def _sinuses(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray, brain: np.ndarray,
             wm: float, xyz: list[np.ndarray], eyes: np.ndarray) -> np.ndarray:
    near = ((np.abs(xyz[0] - eyes[0]) <= SINUS_BOX_MM[0]) & (xyz[1] < eyes[1] + SINUS_BOX_MM[1])
            & (xyz[2] < eyes[2] + SINUS_BOX_MM[2]) & (xyz[2] > eyes[2] - SINUS_BOX_MM[3]))
    air = head & (image < AIR_FRACTION * wm) & near
    box = _box(air)
    air = air[box] & ~grow_mask(brain[box], geometry, 2.0)
    inner = distance_to_mask_mm(~air, geometry.spacing_mm[::-1]) > SINUS_OPEN_MM
    opened = grow_mask(inner, geometry, SINUS_OPEN_MM) & air
    out = np.zeros_like(head)
    for island in _islands(opened, geometry, 0.5, 1e9):
        out[box] |= island
    return out


def _globes(image: np.ndarray, geometry: ImageGeometry, head: np.ndarray, wm: float,
            xyz: list[np.ndarray], centre: np.ndarray) -> list[np.ndarray]:
    """The two eyeballs (empty list unless one on each side is found)."""
    front = head & (image < GLOBE_FRACTION * wm) & (xyz[1] < centre[1] - GLOBE_FRONT_MM)
    box = _box(front)
    inner = distance_to_mask_mm(~front[box], geometry.spacing_mm[::-1]) > 4.0
    opened = np.zeros_like(head)
    opened[box] = grow_mask(inner, geometry, 4.0) & front[box]
    found: dict[str, tuple[float, np.ndarray]] = {}
    for island in _islands(opened, geometry, 2.5, 14.0):
        c = _centre(island, xyz)
        side = "left" if c[0] > centre[0] else "right"
        if abs(c[0] - centre[0]) > 15.0 and (side not in found or c[1] < found[side][0]):
            found[side] = (c[1], island)
    return [v[1] for v in found.values()] if len(found) == 2 else []
