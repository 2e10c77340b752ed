"""Liver, its vessels and the spleen on a contrast CT (HU); a lesion grown from one seed click.

STARTING POINTS the user checks and corrects. The grid's k axis must run along S (axial CT).

1. Organ (liver, spleen): the image smoothed (SimpleITK recursive Gaussian, ``SMOOTH_MM``); the
   parenchyma level is the mean +- ``BAND_SD`` standard deviations (at least ``MIN_HALF_BAND_HU``)
   of the smoothed HU in a ``SEED_RADIUS_MM`` ball at the seed; the voxels in that band are
   opened by ``OPEN_MM`` (cuts the bridges to the kidney, heart, stomach, bowel), the island
   holding the seed is grown back by the opening radius within the band, then closed by
   ``CLOSE_MM`` and its holes filled per axial slice and in 3D (the vessels inside belong to
   the organ).
1b. Liver only, the dome: the heart's wall sits on the liver with the same HU, so the grown
   island is split from it by a marker watershed (SimpleITK) on the gradient magnitude
   (``HEART_EDGE_MM``), in the slices from the seed's up, between the island in the seed's
   slice and the heart's blood pool grown by ``HEART_MARKER_MM``; the pool is the largest
   island, after a ``HEART_CORE_MM`` erosion, of the blood (>= 50 HU brighter than the liver)
   above the seed's slice (and every island of at least ``HEART_CHAMBER_ML``: the chambers,
   apart once eroded in a crop), if it holds ``HEART_POOL_ML``. The liver's marker also holds
   the island's core (eroded by ``LIVER_CORE_MM``, wider than the heart's wall): a crop's
   seed may sit in its bottom slice. The island the liver's marker floods is kept.
1c. Liver only: in the slices above the seed, the thin dark sheets (the diaphragm's fat: the
   darkest full-resolution voxel of a coarse voxel, smoothed by ``WALL_SMOOTH_MM``, more than
   ``DIAPHRAGM_DARKER_HU`` below the liver's level) are left out of the band.
2. Automatic seed: where the soft-tissue band (``BAND_HU``) is thickest (largest distance to
   anything else, SimpleITK Maurer distance) on the patient's right half of the body for the
   liver; for the spleen, more than ``SPLEEN_LATERAL_MM`` to the left and behind the body's
   centre, in the liver's slices, within -40..+70 HU of the liver's level; or one click.
3. Liver vessels: voxels of the liver brighter than its parenchyma (>= mean + ``VESSEL_SD``
   sd), and voxels deeper than ``DARK_DEPTH_MM`` in it darker than its parenchyma (<= mean -
   ``VESSEL_SD`` sd, above mean - ``DARK_MAX_BELOW_HU``), that are tubular (SimpleITK
   ``ObjectnessMeasure`` of bright resp. dark lines at 1.5 and 3 mm, > 0 on either scale),
   islands >= ``MIN_VESSEL_ML``.
3b. Hepatic vs portal veins (``split_hepatic_portal``): the dark islands are hepatic veins
   (unenhanced in an arterial or early portal phase); a bright island reaching within
   ``IVC_CONTACT_MM`` of the vena cava drains into it (hepatic); the other bright islands are
   portal (fed from the hilum). Disjoint by construction; arteries run with the portal
   veins and are not told apart.
4. Lesion: SimpleITK ``ConfidenceConnected`` from the seed within the organ (mean +- 2.5 sd of
   its growing region), opened by 1 mm, the island at the seed, holes filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import bounding_box, pad_box
from surgiplan.segmentation.islands import keep_largest_island
from surgiplan.segmentation.morphology import (
    distance_to_mask_mm,
    fill_holes,
    grow_mask,
    shrink_mask,
)

SMOOTH_MM = 1.5
MIN_SLICES = 4  # SimpleITK's recursive Gaussians need four along each axis
BAND_HU = (40.0, 220.0)
SEED_RADIUS_MM = 10.0
BAND_SD = 2.5
MIN_HALF_BAND_HU = 35.0
OPEN_MM = 5.0
HEART_POOL_ML = 150.0
HEART_CORE_MM = 5.0
HEART_CHAMBER_ML = 20.0
LIVER_CORE_MM = 12.0
HEART_MARKER_MM = 7.0
HEART_EDGE_MM = 1.0
DIAPHRAGM_DARKER_HU = 50.0
WALL_SMOOTH_MM = 0.6
SPLEEN_LATERAL_MM = 50.0
CLOSE_MM = 4.0
VESSEL_SD = 2.0
MIN_VESSEL_ML = 0.3
DARK_DEPTH_MM = 4.0
DARK_MAX_BELOW_HU = 80.0
IVC_CONTACT_MM = 5.0
METHOD = ("parenchyma band around the seed's mean HU on the smoothed CT, opened, the seed's "
          "island grown back, closed and filled (SimpleITK, scipy)")
VESSEL_METHOD = ("voxels of the liver brighter or darker than its parenchyma and tubular "
                 "(SimpleITK ObjectnessMeasure at 1.5 and 3 mm)")
HEPATIC_METHOD = ("tubular voxels of the liver darker than its parenchyma (unenhanced veins), "
                  "and the bright tubular islands reaching the vena cava")
PORTAL_METHOD = ("bright tubular islands of the liver not reaching the vena cava (fed from the "
                 "hilum)")


@dataclass
class OrganResult:
    """An organ mask, its seed (k, j, i) and its parenchyma mean and sd (HU)."""

    mask: np.ndarray = field(repr=False)
    seed_zyx: tuple[int, int, int]
    mean_hu: float
    sd_hu: float


def smoothed(image: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """The image (float32) smoothed by a recursive Gaussian of ``SMOOTH_MM`` (mm)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    return sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, SMOOTH_MM))


def _axial_check(geometry: ImageGeometry) -> None:
    if abs(float(geometry.direction[2, 2])) < 0.9:
        raise BadInputError("the liver preset needs an axial CT (slices across S)",
                            action="reformat the scan to axial slices first")


def auto_seed(smooth: np.ndarray, geometry: ImageGeometry, body: np.ndarray, *,
              organ: str, band_hu: tuple[float, float] = BAND_HU,
              slices: slice = slice(None)) -> tuple[int, int, int]:
    """(k, j, i) where the soft-tissue band (``band_hu``) is thickest on the organ's side,
    within ``slices`` (see step 2)."""
    band = (smooth >= band_hu[0]) & (smooth <= band_hu[1]) & body
    keep = np.zeros(band.shape[0], bool)
    keep[slices] = True
    band &= keep[:, None, None]
    depth = np.zeros(band.shape, np.float32)
    found = bounding_box(band)
    if found is not None:  # beyond the band's box grown by one voxel all is outside the band:
        box = pad_box(found, (1, 1, 1), band.shape)  # that ring is as near as anything beyond
        depth[box] = distance_to_mask_mm(~band[box], geometry.spacing_mm[::-1])
    per_slice = body.sum(axis=2)
    count = np.maximum(per_slice.sum(axis=1), 1)
    centre_i = (body.sum(axis=1) @ np.arange(body.shape[2])) / count
    centre_j = (per_slice @ np.arange(body.shape[1])) / count
    ii = np.arange(body.shape[2])[None, None, :]
    jj = np.arange(body.shape[1])[None, :, None]
    left = float(np.sign(geometry.direction[0, 0])) or 1.0  # +1: i runs to the patient's left
    side = (ii - centre_i[:, None, None]) * left
    if organ == "liver":
        allowed = side < 0
    elif organ == "spleen":  # lateral (beyond the back muscles), behind the body's centre
        allowed = ((side * geometry.spacing_mm[0] > SPLEEN_LATERAL_MM)
                   & (jj > centre_j[:, None, None]))
    else:
        raise ValueError(f"unknown organ {organ!r}")
    depth = np.where(allowed & band, depth, 0.0)
    if not depth.any():
        raise BadInputError(f"no {organ} found (no soft tissue on its side of the body)",
                            action=f"click a seed inside the {organ}")
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(k), int(j), int(i)


def _ball(shape: tuple[int, int, int], centre: Sequence[int], geometry: ImageGeometry,
          radius_mm: float) -> np.ndarray:
    sz, sy, sx = geometry.spacing_mm[::-1]
    kk, jj, ii = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return (((kk - centre[0]) * sz) ** 2 + ((jj - centre[1]) * sy) ** 2
            + ((ii - centre[2]) * sx) ** 2 <= radius_mm ** 2)


def _heart_pool(smooth: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                seed_zyx: tuple[int, int, int], organ_hu: float) -> np.ndarray:
    """The heart's blood pool in the slices above the seed (step 1b): the blood (>= the organ's
    level + 50 HU) there, eroded by ``HEART_CORE_MM`` (cuts the vessels off the chambers), its
    largest island and every island of at least ``HEART_CHAMBER_ML`` (the chambers: apart once
    eroded where a crop holds only the heart's lower part) grown back within the blood; empty
    when under ``HEART_POOL_ML``."""
    from scipy import ndimage

    up = float(np.sign(geometry.direction[2, 2])) or 1.0
    above = (np.arange(smooth.shape[0]) - seed_zyx[0]) * up > 0
    pool = (smooth >= organ_hu + 50.0) & (smooth < 600.0) & body & above[:, None, None]
    labels, n = ndimage.label(shrink_mask(pool, geometry, HEART_CORE_MM))
    if n == 0:
        return np.zeros_like(pool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * geometry.voxel_volume_mm3 / 1000.0
    sizes[0] = 0.0
    chambers = (sizes >= HEART_CHAMBER_ML) | (sizes == sizes.max())
    chambers[0] = False
    heart = grow_mask(chambers[labels], geometry, HEART_CORE_MM) & pool
    if heart.sum() * geometry.voxel_volume_mm3 / 1000.0 < HEART_POOL_ML:
        return np.zeros_like(pool)
    return heart


def _from_slice_up(k: int, nz: int, up: float) -> slice:
    """The slices from ``k`` toward S (``up`` = +1: k grows toward S), at least four of them
    where the grid has them (SimpleITK's recursive Gaussians need four along each axis)."""
    if up > 0:
        return slice(max(0, min(k, nz - 4)), nz)
    return slice(0, min(nz, max(k + 1, 4)))


def _thick_core(organ: np.ndarray, geometry: ImageGeometry, seed_zyx: tuple[int, int, int]
                ) -> np.ndarray:
    """The organ eroded by ``LIVER_CORE_MM`` (wider than the heart's wall it leaked into), the
    island at the seed (else the largest): the liver's marker where the seed's slice holds
    little of it (a crop whose bottom slice has the seed)."""
    from scipy import ndimage

    labels, n = ndimage.label(shrink_mask(organ, geometry, LIVER_CORE_MM))
    if n == 0:
        return np.zeros_like(organ)
    value = labels[seed_zyx] or int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    return labels == value


def _without_heart(organ: np.ndarray, smooth: np.ndarray, geometry: ImageGeometry,
                   heart: np.ndarray, seed_zyx: tuple[int, int, int]) -> np.ndarray:
    """The organ less the heart's wall it leaked into (step 1b): a marker watershed (SimpleITK)
    on the gradient magnitude between the organ in the seed's slice and the heart's pool grown
    by ``HEART_MARKER_MM``, in the slices from the seed's up; the organ's marker also holds its
    thick core (``_thick_core``); the organ keeps what its marker floods (and all of itself
    below the seed's slice)."""
    import SimpleITK as sitk

    up = float(np.sign(geometry.direction[2, 2])) or 1.0
    ks = _from_slice_up(seed_zyx[0], organ.shape[0], up)
    seed_local = seed_zyx[0] - ks.start
    part, heart_marker = organ[ks], grow_mask(heart, geometry, HEART_MARKER_MM)[ks]
    markers = np.full(part.shape, 3, np.uint8)
    markers[part | heart_marker] = 0
    markers[seed_local][part[seed_local] & ~heart_marker[seed_local]] = 1
    markers[_thick_core(organ, geometry, seed_zyx)[ks] & ~heart_marker] = 1
    markers[heart_marker] = 2
    img = sitk.GetImageFromArray(np.ascontiguousarray(smooth[ks], dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    gradient = sitk.GradientMagnitudeRecursiveGaussian(img, HEART_EDGE_MM)
    # Only the unmarked voxels (organ and heart marker less their markers) flood, and only
    # from their neighbours: the watershed runs on their box grown by one voxel.
    found = bounding_box(part | heart_marker)
    if found is None:  # nothing to flood in these slices
        return organ.copy()
    box = pad_box(found, (1, 1, 1), part.shape)
    grad = sitk.GetArrayFromImage(gradient)[box]
    flooded = sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(np.ascontiguousarray(grad)),
        sitk.GetImageFromArray(np.ascontiguousarray(markers[box])),
        markWatershedLine=False, fullyConnected=True)
    inside = np.zeros(part.shape, bool)
    inside[box] = sitk.GetArrayFromImage(flooded) == 1
    out = organ.copy()
    out[ks] = part & inside
    return out


def _thin_walls(walls: np.ndarray, geometry: ImageGeometry, seed_zyx: tuple[int, int, int],
                organ_hu: float) -> np.ndarray:
    """The thin dark sheets (the diaphragm's fat, darker than the organ by
    ``DIAPHRAGM_DARKER_HU`` at full resolution) in the slices above the seed (step 1c)."""
    up = float(np.sign(geometry.direction[2, 2])) or 1.0
    above = (np.arange(walls.shape[0]) - seed_zyx[0]) * up > 0
    return (walls < organ_hu - DIAPHRAGM_DARKER_HU) & above[:, None, None]


def grow_organ(smooth: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
               seed_zyx: tuple[int, int, int], *, heart_barrier: bool = False,
               walls: np.ndarray | None = None) -> OrganResult:
    """The organ holding ``seed_zyx`` (step 1 of the module docstring); with
    ``heart_barrier`` the heart's wall is kept out first (step 1b)."""
    ball = _ball(smooth.shape, seed_zyx, geometry, SEED_RADIUS_MM) & body
    values = smooth[ball]
    mean, sd = float(values.mean()), float(values.std())
    half = max(BAND_SD * sd, MIN_HALF_BAND_HU)
    band = (smooth >= mean - half) & (smooth <= mean + half) & body
    heart = (_heart_pool(smooth, geometry, body, seed_zyx, mean) if heart_barrier
             else np.zeros_like(band))
    if walls is not None:
        band &= ~_thin_walls(walls, geometry, seed_zyx, mean)
    core = shrink_mask(band, geometry, OPEN_MM)
    core = grow_mask(core, geometry, OPEN_MM) & band
    from scipy import ndimage

    labels, _ = ndimage.label(core)
    value = labels[seed_zyx]
    if value == 0:
        near = _ball(smooth.shape, seed_zyx, geometry, 2 * SEED_RADIUS_MM) & (labels > 0)
        if not near.any():
            raise BadInputError("the seed is not inside an organ of even intensity",
                                action="click well inside the organ")
        value = np.bincount(labels[near]).argmax()
    organ = labels == value
    if heart.any():
        organ = keep_largest_island(_without_heart(organ, smooth, geometry, heart, seed_zyx))
    organ = grow_mask(shrink_mask(grow_mask(organ, geometry, CLOSE_MM), geometry, CLOSE_MM)
                      | organ, geometry, 0.0) & body
    organ = fill_holes(fill_holes(organ, per_slice_axis=0))
    return OrganResult(organ, seed_zyx, mean, sd)


def liver_vessels(image: np.ndarray, smooth: np.ndarray, geometry: ImageGeometry,
                  liver: OrganResult) -> tuple[np.ndarray, np.ndarray]:
    """(bright, dark) tubular vessels inside the liver (step 3 of the module docstring)."""
    import SimpleITK as sitk

    from surgiplan.segmentation.islands import remove_small_islands

    box = bounding_box(liver.mask)
    if box is None:
        return np.zeros_like(liver.mask), np.zeros_like(liver.mask)
    inside = liver.mask[box]
    bright = inside & (smooth[box] >= liver.mean_hu + VESSEL_SD * liver.sd_hu)
    deep = shrink_mask(inside, geometry, DARK_DEPTH_MM)
    dark = deep & (smooth[box] <= liver.mean_hu - VESSEL_SD * liver.sd_hu) & (
        smooth[box] > liver.mean_hu - DARK_MAX_BELOW_HU)
    img = sitk.GetImageFromArray(np.ascontiguousarray(image[box], dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    tubes = {True: np.zeros(inside.shape, bool), False: np.zeros(inside.shape, bool)}
    for sigma in (1.5, 3.0):
        blurred = sitk.SmoothingRecursiveGaussian(img, sigma)
        for is_bright in (True, False):
            hessian = sitk.ObjectnessMeasure(blurred, objectDimension=1, brightObject=is_bright,
                                             scaleObjectnessMeasure=True)
            tubes[is_bright] |= sitk.GetArrayFromImage(hessian) > 0
    out = []
    for found, tubular in ((bright, tubes[True]), (dark, tubes[False])):
        full = np.zeros_like(liver.mask)
        full[box] = found & tubular
        out.append(remove_small_islands(full, geometry, min_volume_mm3=MIN_VESSEL_ML * 1000.0))
    return out[0], out[1]


def split_hepatic_portal(bright: np.ndarray, dark: np.ndarray, geometry: ImageGeometry,
                         ivc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(hepatic veins, portal veins) from the liver's tubular vessels (step 3b): an island of
    ``bright`` vessels reaching within ``IVC_CONTACT_MM`` of the vena cava drains into it
    (hepatic), the other bright islands (fed from the hilum) are portal; the ``dark`` islands
    (unenhanced veins of an arterial or early portal phase) are hepatic."""
    from scipy import ndimage

    hepatic = dark.copy()
    box = bounding_box(bright)  # the islands are labelled on their box
    if box is not None and ivc is not None and ivc.any():
        labels, n = ndimage.label(bright[box])
        near = grow_mask(ivc, geometry, IVC_CONTACT_MM)[box]
        touching = np.zeros(n + 1, bool)
        touching[labels[near & (labels > 0)]] = True
        drains = np.zeros_like(bright)
        drains[box] = touching[labels]
        hepatic |= drains
        portal = bright & ~drains
    else:
        portal = bright.copy()
    return hepatic & ~portal, portal


def lesion_from_seed(image: np.ndarray, geometry: ImageGeometry, organ: np.ndarray,
                     seed_lps: Sequence[float], *, multiplier: float = 2.5) -> np.ndarray:
    """A lesion grown from one click inside ``organ`` (step 4 of the module docstring)."""
    import SimpleITK as sitk

    ijk = np.rint(geometry.lps_to_index(np.asarray(seed_lps, dtype=float))).astype(int)
    zyx = (int(ijk[2]), int(ijk[1]), int(ijk[0]))
    inside = all(0 <= v < n for v, n in zip(zyx, organ.shape, strict=True))
    if not inside or not organ[zyx]:
        raise BadInputError("the lesion seed is not inside the organ",
                            action="click inside the lesion, within the segmented organ")
    img = sitk.GetImageFromArray(np.where(organ, image, -1000).astype(np.float32))
    grown = sitk.ConfidenceConnected(img, seedList=[(int(ijk[0]), int(ijk[1]), int(ijk[2]))],
                                     numberOfIterations=3, multiplier=multiplier,
                                     initialNeighborhoodRadius=2, replaceValue=1)
    lesion = sitk.GetArrayFromImage(grown).astype(bool) & organ
    lesion = shrink_mask(grow_mask(lesion, geometry, 1.0), geometry, 1.0) & organ
    lesion = keep_largest_island(lesion)
    if not lesion[zyx]:
        raise BadInputError("no lesion of distinct intensity grows from this seed",
                            action="click nearer the lesion's centre or draw it")
    return fill_holes(fill_holes(lesion, per_slice_axis=0))


@dataclass
class AbdomenResult:
    """Liver, its vessels (brighter and darker than the parenchyma) and the spleen on the CT's
    grid (None where not found)."""

    liver: OrganResult
    vessels: np.ndarray = field(repr=False)
    spleen: OrganResult | None
    dark_vessels: np.ndarray = field(repr=False)


def _coarse(image: np.ndarray, geometry: ImageGeometry, step: int
            ) -> tuple[np.ndarray, ImageGeometry]:
    """The image block-averaged ``step`` x ``step`` in-plane, and its grid."""
    nz, ny, nx = image.shape
    cy, cx = ny // step, nx // step
    small = np.zeros((nz, cy, cx), np.float32)  # integer HU: sums exact in float32
    for dj in range(step):
        for di in range(step):
            small += image[:, dj:cy * step:step, di:cx * step:step]
    small /= step * step
    sx, sy, sz = geometry.spacing_mm
    coarse = ImageGeometry((cx, cy, nz), (sx * step, sy * step, sz), geometry.origin_lps,
                           geometry.direction)
    return small, coarse


def _coarse_min(image: np.ndarray, geometry: ImageGeometry, step: int, above_k: int
                ) -> np.ndarray:
    """The darkest voxel of each ``step`` x ``step`` block of the image smoothed by
    ``WALL_SMOOTH_MM`` (a thin dark sheet survives the block averaging here), in the slices
    above ``above_k`` (+inf elsewhere: only the dome needs it)."""
    import SimpleITK as sitk

    nz, ny, nx = image.shape
    cy, cx = ny // step, nx // step
    out = np.full((nz, cy, cx), np.inf, np.float32)
    up = float(np.sign(geometry.direction[2, 2])) or 1.0
    ks = _from_slice_up(above_k, nz, up)
    img = sitk.GetImageFromArray(np.ascontiguousarray(image[ks], dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    fine = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, WALL_SMOOTH_MM))
    out[ks] = fine[:, :cy * step, :cx * step].reshape(-1, cy, step, cx, step).min(axis=(2, 4))
    return out


def _fine(mask: np.ndarray, shape: tuple[int, int, int], step: int) -> np.ndarray:
    """A coarse mask back on the full grid (each coarse voxel to its ``step`` x ``step``)."""
    out = np.zeros(shape, bool)
    up = np.repeat(np.repeat(mask, step, axis=1), step, axis=2)
    out[:, :up.shape[1], :up.shape[2]] = up
    return out


def _refined(organ: OrganResult, coarse_mask: np.ndarray, image: np.ndarray, step: int
             ) -> np.ndarray:
    """The coarse organ on the full grid; its rim voxels (one coarse voxel either side of the
    boundary) kept where the full-resolution HU, averaged 3x3 in-plane, is in the band."""
    from scipy import ndimage

    inner = _fine(ndimage.binary_erosion(coarse_mask), image.shape, step)
    outer = _fine(ndimage.binary_dilation(coarse_mask), image.shape, step)
    found = bounding_box(outer)
    if found is None:
        return inner
    box = pad_box(found, (0, 1, 1), image.shape)  # the 3x3 mean's reach
    local = ndimage.uniform_filter(image[box].astype(np.float32), size=(1, 3, 3))
    half = max(BAND_SD * organ.sd_hu, MIN_HALF_BAND_HU)
    band = np.zeros(image.shape, bool)
    band[box] = (local >= organ.mean_hu - half) & (local <= organ.mean_hu + half)
    return fill_holes(inner | (outer & band), per_slice_axis=0)


def segment_abdomen(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray, *,
                    liver_seed_zyx: tuple[int, int, int] | None = None,
                    with_spleen: bool = True, with_vessels: bool = True) -> AbdomenResult:
    """Liver (automatic or from one seed, full-grid index), its vessels and the spleen, run on
    a grid block-averaged to about 2 mm in-plane and refined at the boundary (see the module
    docstring); without the vessels (empty masks) or the spleen (None) when not asked for."""
    _axial_check(geometry)
    if image.shape[0] < MIN_SLICES:
        raise BadInputError(f"the liver preset needs at least {MIN_SLICES} axial slices, the "
                            f"image has {image.shape[0]}",
                            action="load a series that covers the liver")
    step = max(1, round(2.0 / max(geometry.spacing_mm[0], geometry.spacing_mm[1])))
    small, coarse = _coarse(image, geometry, step)
    small_body = body[:, ::step, ::step][:, :small.shape[1], :small.shape[2]]
    smooth = smoothed(small, coarse)
    seed = (auto_seed(smooth, coarse, small_body, organ="liver") if liver_seed_zyx is None
            else (liver_seed_zyx[0], liver_seed_zyx[1] // step, liver_seed_zyx[2] // step))
    liver = grow_organ(smooth, coarse, small_body, seed, heart_barrier=True,
                       walls=_coarse_min(image, geometry, step, seed[0]))
    bright, dark = (liver_vessels(small, smooth, coarse, liver) if with_vessels
                    else (np.zeros_like(liver.mask), np.zeros_like(liver.mask)))
    vessels = _fine(bright, image.shape, step)
    dark_vessels = _fine(dark, image.shape, step)
    spleen = None
    if with_spleen:
        ks = np.flatnonzero(liver.mask.any(axis=(1, 2)))
        spleen_seed = auto_seed(smooth, coarse, small_body & ~liver.mask, organ="spleen",
                                band_hu=(liver.mean_hu - 40.0, liver.mean_hu + 70.0),
                                slices=slice(int(ks[0]), int(ks[-1]) + 1))
        found = grow_organ(smooth, coarse, small_body & ~liver.mask, spleen_seed)
        spleen = OrganResult(_refined(found, found.mask, image, step) & body,
                             _full_seed(spleen_seed, step), found.mean_hu, found.sd_hu)
    full_liver = _refined(liver, liver.mask, image, step) & body
    if spleen is not None:
        spleen.mask &= ~full_liver
    return AbdomenResult(OrganResult(full_liver, _full_seed(seed, step), liver.mean_hu,
                                     liver.sd_hu), vessels & full_liver, spleen,
                         dark_vessels & full_liver)


def _full_seed(seed: tuple[int, int, int], step: int) -> tuple[int, int, int]:
    return seed[0], seed[1] * step + step // 2, seed[2] * step + step // 2
