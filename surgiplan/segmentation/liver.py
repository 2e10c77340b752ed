"""Liver, its vessels and the spleen on a contrast CT (HU); a lesion grown from one seed click.

STARTING POINTS the user checks and corrects. The grid's k axis must run along S (axial CT).

1. Organ (liver, spleen): the image smoothed (SimpleITK recursive Gaussian, ``SMOOTH_MM``); the
   parenchyma level is the mean +- ``BAND_SD`` standard deviations (at least ``MIN_HALF_BAND_HU``)
   of the smoothed HU in a ``SEED_RADIUS_MM`` ball at the seed; the voxels in that band are
   opened by ``OPEN_MM`` (cuts the bridges to the kidney, heart, stomach, bowel), the island
   holding the seed is grown back by the opening radius within the band, then closed by
   ``CLOSE_MM`` and its holes filled per axial slice and in 3D (the vessels inside belong to
   the organ).
1b. Liver only: the band within ``HEART_WALL_MM`` of the heart's blood pool (islands of
   >= ``HEART_POOL_ML`` at least 50 HU brighter than the liver, above the seed's slice) is
   left out first, so the growing cannot pass the diaphragm into the myocardium.
2. Automatic seed: where the soft-tissue band (``BAND_HU``) is thickest (largest distance to
   anything else, SimpleITK Maurer distance) on the patient's right half of the body for the
   liver; for the spleen, more than ``SPLEEN_LATERAL_MM`` to the left and behind the body's
   centre, in the liver's slices, within -40..+70 HU of the liver's level; or one click.
3. Liver vessels: voxels of the liver brighter than its parenchyma (>= mean + ``VESSEL_SD``
   sd) that are tubular (SimpleITK ``ObjectnessMeasure`` of lines at 1.5 and 3 mm, > 0 on
   either scale), islands >= ``MIN_VESSEL_ML``: portal and hepatic veins together (not told
   apart).
4. Lesion: SimpleITK ``ConfidenceConnected`` from the seed within the organ (mean +- 2.5 sd of
   its growing region), opened by 1 mm, the island at the seed, holes filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.islands import keep_largest_island
from surgiplan.segmentation.morphology import (
    distance_to_mask_mm,
    fill_holes,
    grow_mask,
    shrink_mask,
)

SMOOTH_MM = 1.5
BAND_HU = (40.0, 220.0)
SEED_RADIUS_MM = 10.0
BAND_SD = 2.5
MIN_HALF_BAND_HU = 35.0
OPEN_MM = 5.0
HEART_WALL_MM = 10.0
HEART_POOL_ML = 150.0
SPLEEN_LATERAL_MM = 50.0
CLOSE_MM = 4.0
VESSEL_SD = 2.0
MIN_VESSEL_ML = 0.3
METHOD = ("parenchyma band around the seed's mean HU on the smoothed CT, opened, the seed's "
          "island grown back, closed and filled (SimpleITK, scipy)")
VESSEL_METHOD = ("voxels of the liver brighter than its parenchyma and tubular (SimpleITK "
                 "ObjectnessMeasure at 1.5 and 3 mm): portal and hepatic veins together")


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
    depth = distance_to_mask_mm(~band, geometry.spacing_mm[::-1])
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


def _heart_wall(smooth: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                seed_zyx: tuple[int, int, int], organ_hu: float) -> np.ndarray:
    """Within ``HEART_WALL_MM`` of the heart's blood pool: the islands of blood (>= the
    organ's level + 50 HU) of at least ``HEART_POOL_ML``, in the slices above the seed."""
    from scipy import ndimage

    pool = (smooth >= organ_hu + 50.0) & (smooth < 600.0) & body
    labels, n = ndimage.label(pool)
    if n == 0:
        return np.zeros_like(pool)
    idx = np.arange(1, n + 1)
    ml = np.bincount(labels.ravel(), minlength=n + 1)[1:] * geometry.voxel_volume_mm3 / 1000
    heart = np.isin(labels, idx[ml >= HEART_POOL_ML])
    up = float(np.sign(geometry.direction[2, 2])) or 1.0
    below = (np.arange(pool.shape[0]) - seed_zyx[0]) * up <= 0
    heart[below] = False
    return grow_mask(heart, geometry, HEART_WALL_MM) if heart.any() else heart


def grow_organ(smooth: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
               seed_zyx: tuple[int, int, int], *, heart_barrier: bool = False) -> OrganResult:
    """The organ holding ``seed_zyx`` (step 1 of the module docstring); with
    ``heart_barrier`` the heart's wall is kept out first (step 1b)."""
    ball = _ball(smooth.shape, seed_zyx, geometry, SEED_RADIUS_MM) & body
    values = smooth[ball]
    mean, sd = float(values.mean()), float(values.std())
    half = max(BAND_SD * sd, MIN_HALF_BAND_HU)
    band = (smooth >= mean - half) & (smooth <= mean + half) & body
    if heart_barrier:
        band &= ~_heart_wall(smooth, geometry, body, seed_zyx, mean)
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
    organ = grow_mask(shrink_mask(grow_mask(organ, geometry, CLOSE_MM), geometry, CLOSE_MM)
                      | organ, geometry, 0.0) & body
    organ = fill_holes(fill_holes(organ, per_slice_axis=0))
    return OrganResult(organ, seed_zyx, mean, sd)


def liver_vessels(image: np.ndarray, smooth: np.ndarray, geometry: ImageGeometry,
                  liver: OrganResult) -> np.ndarray:
    """Portal and hepatic vessels inside the liver (step 3 of the module docstring)."""
    import SimpleITK as sitk

    from surgiplan.processing.crop import bounding_box
    from surgiplan.segmentation.islands import remove_small_islands

    box = bounding_box(liver.mask)
    if box is None:
        return np.zeros_like(liver.mask)
    bright = liver.mask[box] & (smooth[box] >= liver.mean_hu + VESSEL_SD * liver.sd_hu)
    img = sitk.GetImageFromArray(np.ascontiguousarray(image[box], dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    tubular = np.zeros(bright.shape, bool)
    for sigma in (1.5, 3.0):
        blurred = sitk.SmoothingRecursiveGaussian(img, sigma)
        hessian = sitk.ObjectnessMeasure(blurred, objectDimension=1, brightObject=True,
                                         scaleObjectnessMeasure=True)
        tubular |= sitk.GetArrayFromImage(hessian) > 0
    out = np.zeros_like(liver.mask)
    out[box] = bright & tubular
    return remove_small_islands(out, geometry, min_volume_mm3=MIN_VESSEL_ML * 1000.0)


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
    """Liver, its vessels and the spleen on the CT's grid (None where not found)."""

    liver: OrganResult
    vessels: np.ndarray = field(repr=False)
    spleen: OrganResult | None


def _coarse(image: np.ndarray, geometry: ImageGeometry, step: int
            ) -> tuple[np.ndarray, ImageGeometry]:
    """The image block-averaged ``step`` x ``step`` in-plane, and its grid."""
    nz, ny, nx = image.shape
    cy, cx = ny // step, nx // step
    blocks = image[:, :cy * step, :cx * step].astype(np.float32)
    small = blocks.reshape(nz, cy, step, cx, step).mean(axis=(2, 4))
    sx, sy, sz = geometry.spacing_mm
    coarse = ImageGeometry((cx, cy, nz), (sx * step, sy * step, sz), geometry.origin_lps,
                           geometry.direction)
    return small, coarse


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
    local = ndimage.uniform_filter(image.astype(np.float32), size=(1, 3, 3))
    half = max(BAND_SD * organ.sd_hu, MIN_HALF_BAND_HU)
    band = (local >= organ.mean_hu - half) & (local <= organ.mean_hu + half)
    return fill_holes(inner | (outer & band), per_slice_axis=0)


def segment_abdomen(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray, *,
                    liver_seed_zyx: tuple[int, int, int] | None = None,
                    with_spleen: bool = True) -> AbdomenResult:
    """Liver (automatic or from one seed, full-grid index), its vessels and the spleen, run on
    a grid block-averaged to about 2 mm in-plane and refined at the boundary (see the module
    docstring)."""
    _axial_check(geometry)
    step = max(1, round(2.0 / max(geometry.spacing_mm[0], geometry.spacing_mm[1])))
    small, coarse = _coarse(image, geometry, step)
    small_body = body[:, ::step, ::step][:, :small.shape[1], :small.shape[2]]
    smooth = smoothed(small, coarse)
    seed = (auto_seed(smooth, coarse, small_body, organ="liver") if liver_seed_zyx is None
            else (liver_seed_zyx[0], liver_seed_zyx[1] // step, liver_seed_zyx[2] // step))
    liver = grow_organ(smooth, coarse, small_body, seed, heart_barrier=True)
    vessels = _fine(liver_vessels(small, smooth, coarse, liver), image.shape, step)
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
                                     liver.sd_hu), vessels & full_liver, spleen)


def _full_seed(seed: tuple[int, int, int], step: int) -> tuple[int, int, int]:
    return seed[0], seed[1] * step + step // 2, seed[2] * step + step // 2
