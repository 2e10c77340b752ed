"""Signed distance maps of structures (mm, positive outside) and trilinear sampling at LPS points.

What a value means
------------------
The structure's surface is taken to be the boundary between its voxels and the others (voxels
beyond the grid edge count as outside, so a structure cut by the field of view is closed there,
like its surface mesh). For a voxel centre, let ``D`` be the Euclidean distance (mm, spacing
honoured; the direction matrix is a rotation so it does not change distances) to the nearest
voxel centre on the *other* side of that boundary, computed exactly with SimpleITK's
``SignedMaurerDistanceMap``. The map holds ``D - min(h/2, D/2)`` with the sign of the side
(positive outside, negative inside), where ``h`` is the largest voxel spacing:

* the boundary lies between the voxel and that nearest centre, so the distance to it is in
  ``(0, D]``; subtracting half a voxel puts the zero level half-way between the last inside and
  the first outside voxel centres, and the ``D/2`` cap keeps every sign right on anisotropic
  grids;
* against a smooth analytic surface sampled by the voxel centres, ``|error| <= h/2`` near
  the surface (verified on spheres in tests/test_distance.py); near edges and corners of a
  box-like shape it can exceed ``h/2`` slightly, staying within half a voxel *diagonal*
  (0.56 mm measured on the spine phantom's 0.8x0.8x1 mm grid, tests/test_phantoms.py). It is
  exact on isotropic grids for a plane aligned with an axis. In-plane distances on thick-slice
  grids are biased towards zero (up to ``h/2``), the conservative side for a critical
  structure.

Special values: an empty mask gives ``+inf`` everywhere (no structure, infinitely far). With
``roi_margin_mm``, voxels outside the region of interest hold ``+inf``: their true distance is
more than the margin. A mask filling the whole grid gives finite negative values (distance to
the grid edge, see above).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.label_layer import LabelLayer
from surgiplan.processing.crop import (
    Box,
    bounding_box,
    crop_padded,
    margin_voxels_zyx,
    pad_box,
    sub_geometry,
    union_box,
)
from surgiplan.progress import CancelToken, ProgressCallback, report


def signed_distance_map(
    mask: np.ndarray,
    geometry: ImageGeometry,
    *,
    roi_margin_mm: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Signed distance (float32 mm, ``(nz, ny, nx)``) to a mask's surface: positive outside.

    ``roi_margin_mm``: compute only within the mask's bounding box padded by this margin; the
    rest holds ``+inf``. Use :func:`signed_distance_roi` to avoid allocating the full grid.
    See the module docstring for the exact meaning of a value.
    """
    mask = _checked_mask(mask, geometry)
    box = bounding_box(mask)
    if box is None:
        report(progress, 1.0, "distance map: empty structure")
        return np.full(geometry.shape_zyx, np.inf, dtype=np.float32)
    if roi_margin_mm is None:
        nz, ny, nx = mask.shape
        region = (slice(0, nz), slice(0, ny), slice(0, nx))
    else:
        region = _roi_region(box, geometry, roi_margin_mm)
    values = _signed_distance_region(mask, region, box, geometry, progress, cancel)
    if values.shape == mask.shape:
        return values
    out = np.full(geometry.shape_zyx, np.inf, dtype=np.float32)
    out[region] = values
    return out


def signed_distance_roi(
    mask: np.ndarray,
    geometry: ImageGeometry,
    *,
    margin_mm: float,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, ImageGeometry]:
    """Signed distance map cropped to the mask's bounding box padded by ``margin_mm``.

    Returns ``(values, sub_geometry)``: float32 mm on the crop grid (same values as
    :func:`signed_distance_map` there); points off the crop are farther than ``margin_mm``.
    ``sample_volume(values, sub_geometry, points, fill_value=np.inf)`` reads it at LPS points.
    An empty mask gives a single-voxel crop holding ``+inf``.
    """
    mask = _checked_mask(mask, geometry)
    box = bounding_box(mask)
    if box is None:
        report(progress, 1.0, "distance map: empty structure")
        one = (slice(0, 1),) * 3
        return np.full((1, 1, 1), np.inf, dtype=np.float32), sub_geometry(geometry, one)
    region = _roi_region(box, geometry, margin_mm)
    values = _signed_distance_region(mask, region, box, geometry, progress, cancel)
    return values, sub_geometry(geometry, region)


def sample_volume(
    array: np.ndarray,
    geometry: ImageGeometry,
    points_lps: Any,
    *,
    fill_value: float = np.nan,
) -> np.ndarray:
    """Trilinear interpolation of ``array`` (``(nz, ny, nx)`` on ``geometry``) at LPS points.

    ``points_lps``: ``(..., 3)`` mm. Returns float64 of shape ``(...)``. Points within the
    grid's voxel extent but beyond the outermost voxel centres take the edge value; points
    outside the extent get ``fill_value``. Like ``scipy.ndimage.map_coordinates(order=1)``,
    except that infinite voxels with zero weight do not turn a result into NaN (``+inf`` marks
    "beyond the region of interest" in distance maps).
    """
    if array.shape != geometry.shape_zyx:
        raise ValueError(f"array shape {array.shape} does not match grid {geometry.shape_zyx}")
    pts = np.asarray(points_lps, dtype=float)
    if pts.shape[-1:] != (3,):
        raise ValueError(f"points_lps must have shape (..., 3), got {pts.shape}")
    flat = pts.reshape(-1, 3)
    zyx = geometry.lps_to_index(flat)[:, ::-1]
    shape = np.asarray(array.shape)
    inside = np.all((zyx >= -0.5) & (zyx <= shape - 0.5), axis=1)
    out = np.full(flat.shape[0], fill_value, dtype=np.float64)
    if np.any(inside):
        out[inside] = _trilinear(array, np.clip(zyx[inside], 0, shape - 1))
    return out.reshape(pts.shape[:-1])


# ---------------------------------------------------------------------- internals
def _checked_mask(mask: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != geometry.shape_zyx:
        raise BadInputError(
            f"mask shape {mask.shape} does not match the image grid {geometry.shape_zyx}",
            action="resample the mask onto the image grid first",
        )
    return mask if mask.dtype == bool else mask != 0


def _roi_region(box: Box, geometry: ImageGeometry, margin_mm: float) -> Box:
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise BadInputError(
            f"the distance-map margin must be a finite number of mm >= 0, got {margin_mm}",
            action="give a margin such as 30 mm",
        )
    pad = margin_voxels_zyx(geometry, margin_mm)
    return pad_box(box, pad, geometry.shape_zyx)


def _half_voxel_corrected(distance_mm: np.ndarray, half_voxel_mm: float) -> None:
    """In place: ``D -> D - min(half_voxel, D / 2)`` (see the module docstring).

    Equal to ``max(D - half_voxel, D / 2)`` for ``D >= 0``; done slab by slab along z so that
    the temporaries stay one slab big (no full-grid float copy).
    """
    for slab in distance_mm:
        half = slab * np.float32(0.5)
        slab -= np.float32(half_voxel_mm)
        np.maximum(slab, half, out=slab)


class _ItkBuffer:
    """Keeps a SimpleITK image alive under a writable numpy view of its pixel buffer (the image
    is unique to us, so writing through the view is safe; it saves a full-grid copy)."""

    def __init__(self, image: Any) -> None:
        import SimpleITK as sitk

        self._image = image
        face = dict(sitk.GetArrayViewFromImage(image).__array_interface__)
        face["data"] = (face["data"][0], False)
        self.__array_interface__ = face


def _maurer_distance(
    inside: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    span: tuple[float, float],
) -> np.ndarray:
    """Distance (mm, float32) from each voxel outside ``inside`` to the nearest inside centre.

    Values at voxels of ``inside`` are meaningless (callers overwrite them).
    """
    import SimpleITK as sitk

    from surgiplan.processing.sitk_filters import execute_filter

    # filled slab by slab through a view of its own buffer: no region-sized temporary copy
    image = sitk.Image([int(n) for n in inside.shape[::-1]], sitk.sitkUInt8)
    pixels = np.asarray(_ItkBuffer(image))
    for k in range(inside.shape[0]):
        pixels[k] = inside[k]
    del pixels
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    filt = sitk.SignedMaurerDistanceMapImageFilter()
    filt.SetInsideIsPositive(False)
    filt.SetSquaredDistance(False)
    filt.SetUseImageSpacing(True)
    filt.SetBackgroundValue(0)
    result = execute_filter(
        filt, image, progress=progress, cancel=cancel, span=span, text="distance map"
    )
    del image
    return np.asarray(_ItkBuffer(result))


class _Voxels:
    """A structure's voxels, cut out box by box: a boolean mask, or the voxels of a label
    array equal to ``label`` (then no full-grid boolean mask is ever made)."""

    def __init__(self, array: np.ndarray | LabelLayer, label: int | None = None) -> None:
        self.array, self.label = array, label

    def crop(self, box: Box) -> np.ndarray:
        """Boolean ``mask[box]``, False where ``box`` reaches beyond the grid."""
        if self.label is None:
            return crop_padded(self.array, box, fill=False)
        return crop_padded(self.array, box, fill=0) == self.label

    def box(self) -> Box | None:
        """Bounding box of the voxels (slab by slab along z: temporaries stay a slab big)."""
        if self.label is None:
            return bounding_box(np.asarray(self.array))
        if isinstance(self.array, LabelLayer):  # scan its crop only
            return self.array.label_box(self.label)
        hits = [np.zeros(n, dtype=bool) for n in self.array.shape]
        for k in range(0, self.array.shape[0], LABEL_SLAB):
            slab = self.array[k:k + LABEL_SLAB] == self.label
            hits[0][k:k + LABEL_SLAB] = slab.any(axis=(1, 2))
            hits[1] |= slab.any(axis=(0, 2))
            hits[2] |= slab.any(axis=(0, 1))
        found = [np.flatnonzero(h) for h in hits]
        if found[0].size == 0:
            return None
        z, y, x = (slice(int(f[0]), int(f[-1]) + 1) for f in found)
        return z, y, x


LABEL_SLAB = 8  # z slices per step of a label array's bounding-box scan


def _signed_distance_region(
    mask: np.ndarray | _Voxels,
    region: Box,
    box: Box,
    geometry: ImageGeometry,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> np.ndarray:
    """Signed distance on ``mask[region]``; ``box`` is the mask's bounding box (whole grid)."""
    voxels = mask if isinstance(mask, _Voxels) else _Voxels(mask)
    spacing_zyx = geometry.spacing_mm[::-1]
    half_voxel = 0.5 * max(spacing_zyx)
    local = voxels.crop(region)
    n_region = local.size
    inner = pad_box(box, (1, 1, 1))  # every inside voxel plus one outside layer
    n_inner = int(np.prod([s.stop - s.start for s in inner]))
    split = n_region / (n_region + n_inner)
    # Outside voxels: distance to the nearest inside centre (all inside voxels are in region).
    values = _maurer_distance(local, spacing_zyx, progress, cancel, (0.0, split))
    del local
    _half_voxel_corrected(values, half_voxel)
    # Inside voxels: distance to the nearest outside centre, found within one voxel of the box
    # (beyond the grid counts as outside).
    # A fresh array (crop_padded may return a view of the caller's mask): one mask-sized copy.
    outside = np.logical_not(voxels.crop(inner))
    depth = _maurer_distance(outside, spacing_zyx, progress, cancel, (split, 1.0))
    _half_voxel_corrected(depth, half_voxel)
    np.negative(depth, out=depth)
    core = (slice(1, -1),) * 3
    local_box = tuple(
        slice(b.start - r.start, b.stop - r.start) for b, r in zip(box, region, strict=True)
    )
    target = values[local_box]
    for k in range(target.shape[0]):  # slab by slab: the inversion temporaries stay small
        np.copyto(target[k], depth[core][k], where=~outside[core][k])
    return values


def _trilinear(array: np.ndarray, zyx: np.ndarray) -> np.ndarray:
    """Trilinear values at continuous indices ``zyx`` (N, 3) already clipped to the array."""
    upper = np.asarray(array.shape) - 1
    base = np.minimum(np.floor(zyx).astype(np.intp), np.maximum(upper - 1, 0))
    frac = zyx - base
    total = np.zeros(zyx.shape[0], dtype=np.float64)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                step = np.array([dz, dy, dx])
                weight = np.prod(np.where(step == 1, frac, 1.0 - frac), axis=1)
                idx = np.minimum(base + step, upper)
                corner = array[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.float64)
                used = weight > 0
                total[used] += weight[used] * corner[used]
    return total


# ---------------------------------------------------------------------- region-of-interest maps
@dataclass(frozen=True)
class RoiDistanceMap:
    """A signed distance map kept only in a region of interest around its structure.

    ``values`` (float32 mm, read-only) cover ``region`` (``(z, y, x)`` slices of the full grid
    ``geometry``): the mask's bounding box padded by ``margin_mm`` and clipped to the grid.
    Inside the region the values equal :func:`signed_distance_map`'s there.

    :meth:`sample` is exact (trilinear, like :func:`sample_volume` on the full map) wherever the
    interpolation stencil lies within the region; beyond it, it returns a conservative *lower
    bound* of the full map's value: ``f(d_box)``, where ``d_box`` is the distance (mm) from the
    point to the box of the structure's voxel centres and ``f(D) = D - min(h/2, D/2)`` is the
    map's own half-voxel correction (monotone, so ``f(d_box) <= f(D)``). Every such point is
    outside the structure and at least ``margin_mm - h/2`` away. Points off the grid give
    ``+inf`` (as the full map sampled with ``fill_value=inf``). An empty structure is ``+inf``.
    """

    values: np.ndarray
    geometry: ImageGeometry
    region: Box
    mask_box: Box | None
    margin_mm: float

    @property
    def nbytes(self) -> int:
        """Bytes held by the values (the only array this object keeps)."""
        return int(self.values.nbytes)

    @property
    def sub_geometry(self) -> ImageGeometry:
        return sub_geometry(self.geometry, self.region)

    def sample(self, points_lps: Any) -> np.ndarray:
        """Signed distance (mm, float64 ``(...)``) at LPS points ``(..., 3)``; see the class."""
        pts = np.asarray(points_lps, dtype=float)
        if pts.shape[-1:] != (3,):
            raise ValueError(f"points_lps must have shape (..., 3), got {pts.shape}")
        flat = pts.reshape(-1, 3)
        out = np.full(flat.shape[0], np.inf)
        if self.mask_box is None:
            return out.reshape(pts.shape[:-1])
        zyx = self.geometry.lps_to_index(flat)[:, ::-1]
        shape = np.asarray(self.geometry.shape_zyx)
        on_grid = np.all((zyx >= -0.5) & (zyx <= shape - 0.5), axis=1)
        near = on_grid & self.exact_at_index(zyx)
        if np.any(near):
            start = np.array([s.start for s in self.region], dtype=float)
            local = np.clip(zyx[near], 0, shape - 1) - start
            upper = np.asarray(self.values.shape) - 1
            out[near] = _trilinear(self.values, np.clip(local, 0, upper))
        far = on_grid & ~near
        if np.any(far):
            out[far] = self.lower_bound_at_index(zyx[far])
        return out.reshape(pts.shape[:-1])

    def exact_at_index(self, zyx: np.ndarray) -> np.ndarray:
        """True where continuous full-grid indices ``(N, 3)`` have their trilinear stencil in
        the region (a region side on the grid edge also takes the edge's clamped half voxel)."""
        shape = self.geometry.shape_zyx
        lo = np.array([-0.5 if s.start == 0 else s.start for s in self.region])
        hi = np.array([n - 0.5 if s.stop == n else s.stop - 1
                       for s, n in zip(self.region, shape, strict=True)])
        return np.all((zyx >= lo) & (zyx <= hi), axis=1)

    def lower_bound_at_index(self, zyx: np.ndarray) -> np.ndarray:
        """``f(d_box)`` at continuous full-grid indices ``(N, 3)`` (see the class docstring)."""
        box = self.mask_box
        assert box is not None
        lo = np.array([s.start for s in box], dtype=float)
        hi = np.array([s.stop - 1 for s in box], dtype=float)
        spacing_zyx = np.asarray(self.geometry.spacing_mm[::-1], dtype=float)
        gap = (np.maximum(lo - zyx, 0) + np.maximum(zyx - hi, 0)) * spacing_zyx
        d_box = np.sqrt(np.sum(gap * gap, axis=1))
        half_voxel = 0.5 * float(spacing_zyx.max())
        return np.maximum(d_box - half_voxel, 0.5 * d_box)

    def full(self) -> np.ndarray:
        """The region pasted into a full grid of ``+inf`` (float32, ``(nz, ny, nx)``): for
        display or a quick look only; consumers needing true values everywhere compute
        :func:`signed_distance_map` instead."""
        out = np.full(self.geometry.shape_zyx, np.inf, dtype=np.float32)
        out[self.region] = self.values
        return out


def signed_distance_roi_map(
    mask: np.ndarray | LabelLayer,
    geometry: ImageGeometry,
    *,
    margin_mm: float,
    cover: Box | None = None,
    label: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RoiDistanceMap:
    """A :class:`RoiDistanceMap` of ``mask``: computed on the mask's bounding box padded by
    ``margin_mm`` only (memory ~ that crop, not the grid), grown to hold ``cover`` (full-grid
    ``(z, y, x)`` slices, clipped to the grid) when given. Values are exact on the whole
    region: it holds every inside voxel, so the Maurer distances are those of the full grid.

    ``label``: ``mask`` is a label array (a twin's layer) and the structure is its voxels equal
    to ``label`` (>= 1); no full-grid boolean mask is made then (memory ~ the region only)."""
    if label is None:
        voxels = _Voxels(_checked_mask(np.asarray(mask), geometry))
    else:
        if mask.shape != geometry.shape_zyx or label < 1:
            raise BadInputError(f"label array {mask.shape} / label {label} do not fit the "
                                f"grid {geometry.shape_zyx}",
                                action="give a layer of the grid and a label >= 1")
        voxels = _Voxels(mask, int(label))
    box = voxels.box()
    if box is None:
        report(progress, 1.0, "distance map: empty structure")
        empty = np.full((1, 1, 1), np.inf, dtype=np.float32)
        empty.setflags(write=False)
        return RoiDistanceMap(empty, geometry, (slice(0, 1),) * 3, None, float(margin_mm))
    region = _roi_region(box, geometry, margin_mm)
    if cover is not None:
        joined = union_box([region, pad_box(cover, (0, 0, 0), geometry.shape_zyx)])
        assert joined is not None  # the union of two boxes is a box
        region = joined
    values = _signed_distance_region(voxels, region, box, geometry, progress, cancel)
    values.setflags(write=False)
    return RoiDistanceMap(values, geometry, region, box, float(margin_mm))
