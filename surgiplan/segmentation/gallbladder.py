"""Gallbladder on a contrast CT (HU): the bile-filled sac against the liver's under-surface.

A STARTING POINT the user checks and corrects (it may be absent: contracted, removed, or out
of view; then nothing is returned).

1. Bile: the CT smoothed by ``SMOOTH_MM`` (SimpleITK recursive Gaussian) in ``BILE_HU``,
   inside the body, not in the liver, opened by ``OPEN_MM`` (cuts thin fluid seams between
   bowel loops), 3D islands (scipy).
2. The gallbladder is the opened island (up to ``MAX_ML``) on the patient's right half whose
   share of voxels within ``CONTACT_MM`` of the liver is largest (at least ``MIN_CONTACT``),
   grown back by the opening radius within the bile (at least ``MIN_ML``), holes filled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import bounding_box, pad_box
from surgiplan.segmentation.morphology import fill_holes, grow_mask, shrink_mask

SMOOTH_MM = 1.5
BILE_HU = (-15.0, 35.0)
OPEN_MM = 3.0
CONTACT_MM = 10.0
MIN_CONTACT = 0.1
MIN_ML = 5.0
MAX_ML = 200.0
METHOD = ("bile-density island against the liver's under-surface on the patient's right "
          "(SimpleITK smoothing and morphology, scipy islands)")


def segment_gallbladder(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                        liver: np.ndarray) -> np.ndarray | None:
    """The gallbladder (see the module docstring) or None when no island qualifies."""
    import SimpleITK as sitk

    found = bounding_box(liver)
    if found is None:
        return None
    pad = tuple(int(np.ceil(30.0 / s)) for s in geometry.spacing_mm[::-1])
    box = pad_box(found, pad, image.shape)
    img = sitk.GetImageFromArray(np.ascontiguousarray(image[box], dtype=np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, SMOOTH_MM))
    near_liver = grow_mask(liver[box], geometry, CONTACT_MM)
    bile = (smooth >= BILE_HU[0]) & (smooth <= BILE_HU[1]) & body[box] & ~liver[box]
    core = shrink_mask(bile, geometry, OPEN_MM)
    labels, n = ndimage.label(core)
    if n == 0:
        return None
    count = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    touching = np.bincount(labels[near_liver].ravel(), minlength=n + 1)[1:]
    ii = np.arange(labels.shape[2])[None, None, :]
    sum_i = np.bincount(labels.ravel(), weights=np.broadcast_to(ii, labels.shape).ravel(),
                        minlength=n + 1)[1:]
    body_i = float(np.argwhere(body[box].any(axis=(0, 1))).mean())
    left = float(np.sign(geometry.direction[0, 0])) or 1.0
    ml = count * geometry.voxel_volume_mm3 / 1000.0
    contact = touching / np.maximum(count, 1)
    ok = ((ml >= MIN_ML * 0.5) & (ml <= MAX_ML) & (contact >= MIN_CONTACT)
          & ((sum_i / np.maximum(count, 1) - body_i) * left < 0))
    if not ok.any():
        return None
    best = labels == int(np.flatnonzero(ok)[np.argmax(contact[ok])]) + 1
    best = grow_mask(best, geometry, OPEN_MM) & bile
    if best.sum() * geometry.voxel_volume_mm3 / 1000.0 < MIN_ML:
        return None
    out = np.zeros(image.shape, bool)
    out[box] = fill_holes(best, per_slice_axis=0)
    return out
