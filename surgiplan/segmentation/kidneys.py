"""Left and right kidney on a contrast CT (HU), found beside the spine.

A STARTING POINT the user checks and corrects. The grid's k axis must run along S (axial CT);
the spinal canal (``surgiplan.segmentation.spine``) places the search.

1. Enhancing parenchyma: the CT smoothed by ``SMOOTH_MM`` (SimpleITK recursive Gaussian) in
   ``PARENCHYMA_HU`` (cortex and medulla of an enhanced kidney), not within ``BONE_GAP_MM`` of
   bone (>= ``BONE_HU``, or the spine's bone).
2. Opened by ``OPEN_MM`` (SimpleITK binary morphology via ``shrink_mask``/``grow_mask``: cuts
   the renal vessels, the bowel and the liver's and spleen's touching rims), 3D islands
   (scipy); per side the largest island whose centre lies ``LATERAL_MM`` beside the canal
   and at most ``FRONT_MM`` in front of it, of ``MIN_ML``..``MAX_ML``.
3. Grown back by the opening radius + ``MEDULLA_MM`` within the voxels of ``MEDULLA_HU`` ..
   the top of step 1's band (the less enhanced medulla), closed by ``CLOSE_MM`` and its
   holes (the renal sinus, the medulla) filled per axial slice.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry
from surgiplan.segmentation.great_vessels import canal_centre_per_slice
from surgiplan.segmentation.morphology import fill_holes, grow_mask, shrink_mask

SMOOTH_MM = 1.5
PARENCHYMA_HU = (140.0, 400.0)
BONE_HU = 450.0
BONE_GAP_MM = 3.0
OPEN_MM = 4.0
LATERAL_MM = (25.0, 130.0)
FRONT_MM = 90.0
CLOSE_MM = 5.0
MEDULLA_HU = 80.0
MEDULLA_MM = 6.0
MIN_ML = 40.0
MAX_ML = 450.0
METHOD = ("enhancing parenchyma beside the spine, opened (cuts the renal vessels), the largest "
          "island per side grown back and filled (SimpleITK, scipy)")


def _smoothed(image: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    return sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, SMOOTH_MM))


def _box(canal: np.ndarray, geometry: ImageGeometry) -> tuple[slice, slice, slice]:
    """The slices with canal, the rows and columns within reach of the windows."""
    ks = np.flatnonzero(canal.any(axis=(1, 2)))
    js, is_ = np.nonzero(canal.any(axis=0))
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    reach_i, front_j, back_j = LATERAL_MM[1] + 40.0, FRONT_MM + 40.0, 80.0
    return (slice(int(ks[0]), int(ks[-1]) + 1),
            slice(max(0, int(js.min() - front_j / sy)), int(js.max() + back_j / sy) + 1),
            slice(max(0, int(is_.min() - reach_i / sx)), int(is_.max() + reach_i / sx) + 1))


def segment_kidneys(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                    canal: np.ndarray, spine_bone: np.ndarray,
                    exclude: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``{"left kidney": mask, "right kidney": mask}`` (a side not found is omitted; nothing
    without a canal to place them by). Sides are the patient's (LPS); ``exclude`` (the liver,
    the spleen) is kept out."""
    if not canal.any():
        return {}
    box = _box(canal, geometry)
    found = _kidneys(image[box], geometry, body[box] & ~(exclude[box] if exclude is not None
                                                          else False),
                     canal[box], spine_bone[box])
    out = {}
    for name, mask in found.items():
        full = np.zeros(image.shape, bool)
        full[box] = mask
        out[name] = full
    return out


def _kidneys(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
             canal: np.ndarray, spine_bone: np.ndarray) -> dict[str, np.ndarray]:
    """Step 1-3 of the module docstring on a crop (the grid's spacing and direction apply)."""
    smooth = _smoothed(image, geometry)
    bone = grow_mask(((image >= BONE_HU) & body) | spine_bone, geometry, BONE_GAP_MM)
    tissue = (smooth >= PARENCHYMA_HU[0]) & (smooth <= PARENCHYMA_HU[1]) & body & ~bone
    inner = (smooth >= MEDULLA_HU) & (smooth <= PARENCHYMA_HU[1]) & body & ~bone
    core = shrink_mask(tissue, geometry, OPEN_MM)
    labels, n = ndimage.label(core)
    if n == 0:
        return {}
    idx = np.arange(1, n + 1)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    centres = np.array(ndimage.center_of_mass(core, labels, idx)).reshape(-1, 3)
    canal_c = canal_centre_per_slice(canal)
    k = np.clip(np.rint(centres[:, 0]).astype(int), 0, canal.shape[0] - 1)
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    left_mm = (centres[:, 2] - canal_c[k, 1]) * sx * (float(np.sign(geometry.direction[0, 0]))
                                                     or 1.0)
    front_mm = (canal_c[k, 0] - centres[:, 1]) * sy
    out = {}
    for name, sign in (("left kidney", 1.0), ("right kidney", -1.0)):
        ok = ((sign * left_mm >= LATERAL_MM[0]) & (sign * left_mm <= LATERAL_MM[1])
              & (front_mm <= FRONT_MM))
        if not ok.any():
            continue
        best = int(idx[ok][np.argmax(sizes[ok])])
        kidney = grow_mask(labels == best, geometry, OPEN_MM + MEDULLA_MM) & inner
        closed = shrink_mask(grow_mask(kidney, geometry, CLOSE_MM), geometry, CLOSE_MM)
        kidney = fill_holes(kidney | (closed & body & ~bone), per_slice_axis=0)
        ml = kidney.sum() * geometry.voxel_volume_mm3 / 1000.0
        if MIN_ML <= ml <= MAX_ML:
            out[name] = kidney
    return out
