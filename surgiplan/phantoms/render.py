"""Rasterise a phantom's analytic shapes into a CT volume (HU) and a ground-truth label map.

Each shape is evaluated only inside its bounding box, and there only in blocks of voxels that
can lie within ``band`` of its surface: the signed distance is 1-Lipschitz, so a block whose
centre is farther than (block half-diagonal + band) from the surface is uniformly inside or
outside. In the remaining blocks the shape's cheap distance bound decides which voxels need
the exact distance. Unions are rasterised part by part (inside a union the distance is only a
bound); their fractions combine by maximum. Labels: voxel centre inside (d <= 0), higher
priority wins. HU: partial-volume
fraction ``clip(0.5 - d / h, 0, 1)`` (h = cube root of the voxel volume), composited in
ascending priority over an air background, then optional Gaussian blur and seeded noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry
from surgiplan.phantoms.primitives import Shape, Union
from surgiplan.phantoms.spec import PhantomSpec
from surgiplan.progress import CancelToken, ProgressCallback, check, report

_BLOCK = 4
_PAD_VOXELS = 2


@dataclass
class GridDistance:
    """Signed distance (mm) of one shape on a sub-box of the grid.

    ``slices`` index the full ``(nz, ny, nx)`` array; ``distance_mm`` is exact (as the shape
    is) within ``band_mm`` of the surface and +-inf (right sign) farther away.
    """

    slices: tuple[slice, slice, slice]
    distance_mm: np.ndarray
    band_mm: float


@dataclass
class RenderedPhantom:
    """Noisy HU volume (float32), label map (uint8) and per-structure voxel counts."""

    hu: np.ndarray
    labels: np.ndarray
    shape_voxels: dict[str, int]
    label_voxels: dict[str, int]
    clean_hu: np.ndarray


def index_box(bounds_lps: np.ndarray, geometry: ImageGeometry, *, pad: int = _PAD_VOXELS):
    """Voxel index box ``(lo_ijk, hi_ijk)`` (hi exclusive) covering LPS bounds, or None."""
    lo_b, hi_b = bounds_lps
    corners = np.array([[x, y, z] for x in (lo_b[0], hi_b[0]) for y in (lo_b[1], hi_b[1])
                        for z in (lo_b[2], hi_b[2])])
    ijk = geometry.lps_to_index(corners)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + pad + 1, np.asarray(geometry.size))
    if np.any(hi <= lo):
        return None
    return lo, hi


def grid_signed_distance(
    shape: Shape, geometry: ImageGeometry, *, band_mm: float | None = None
) -> GridDistance | None:
    """Signed distance of ``shape`` at the voxel centres of its bounding box on ``geometry``.

    Returns None when the shape misses the grid. ``band_mm`` defaults to the largest spacing.
    """
    box = index_box(shape.bounds_lps(), geometry)
    if box is None:
        return None
    lo, hi = box
    band = float(max(geometry.spacing_mm)) if band_mm is None else float(band_mm)
    n_kji = (hi - lo)[::-1]
    nb = -(-n_kji // _BLOCK)
    kb, jb, ib = np.meshgrid(*(np.arange(n) for n in nb), indexing="ij")
    centres_ijk = np.stack([ib, jb, kb], axis=-1).reshape(-1, 3) * _BLOCK + lo + (_BLOCK - 1) / 2
    d_block = shape.signed_distance(geometry.index_to_lps(centres_ijk)).reshape(tuple(nb))
    reach = 0.5 * (_BLOCK - 1) * float(np.linalg.norm(geometry.spacing_mm)) + band
    fill = np.where(d_block > 0.0, np.inf, -np.inf)
    dist = fill.repeat(_BLOCK, 0).repeat(_BLOCK, 1).repeat(_BLOCK, 2)
    dist = np.ascontiguousarray(dist[: n_kji[0], : n_kji[1], : n_kji[2]])
    near = np.argwhere(np.abs(d_block) <= reach)
    if len(near):
        offsets = np.argwhere(np.ones((_BLOCK,) * 3, dtype=bool))
        vox = (near[:, None, :] * _BLOCK + offsets[None, :, :]).reshape(-1, 3)
        vox = vox[np.all(vox < n_kji, axis=1)]
        points = geometry.index_to_lps(vox[:, ::-1] + lo)
        bound = shape.signed_distance_bound(points)
        values = np.where(bound > 0.0, np.inf, -np.inf)
        close = np.flatnonzero(np.abs(bound) <= band)
        values[close] = shape.signed_distance(points[close])
        dist[vox[:, 0], vox[:, 1], vox[:, 2]] = values
    slices = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return GridDistance(slices=slices, distance_mm=dist, band_mm=band)


def partial_volume_fraction(distance_mm: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Fraction of each voxel inside the shape from the centre's signed distance (0..1)."""
    h = geometry.voxel_volume_mm3 ** (1.0 / 3.0)
    return np.clip(0.5 - distance_mm / h, 0.0, 1.0).astype(np.float32)


def _union_parts(shape: Shape) -> list[Shape]:
    """The children of (nested) unions, or the shape itself."""
    if isinstance(shape, Union):
        return [p for c in shape.children for p in _union_parts(c)]
    return [shape]


def _coverage(shape: Shape, geometry: ImageGeometry, *, band_mm: float, cortex_mm: float):
    """``(slices, inside, fraction, core_fraction)`` of a shape on its box, or None.

    A union is covered part by part (fraction = max over parts): inside a union its distance
    is only a bound, which would leave shallow partial-volume seams where parts overlap.
    """
    box = index_box(shape.bounds_lps(), geometry)
    if box is None:
        return None
    lo, hi = box
    shape_kji = tuple((hi - lo)[::-1])
    inside = np.zeros(shape_kji, dtype=bool)
    frac = np.zeros(shape_kji, dtype=np.float32)
    core = np.zeros(shape_kji, dtype=np.float32)
    for part in _union_parts(shape):
        grid = grid_signed_distance(part, geometry, band_mm=band_mm)
        if grid is None:
            continue
        local = tuple(slice(g.start - o, g.stop - o)
                      for g, o in zip(grid.slices, lo[::-1], strict=True))
        inside[local] |= grid.distance_mm <= 0.0
        np.maximum(frac[local], partial_volume_fraction(grid.distance_mm, geometry),
                   out=frac[local])
        if cortex_mm > 0:
            part_core = partial_volume_fraction(grid.distance_mm + cortex_mm, geometry)
            np.maximum(core[local], part_core, out=core[local])
    slices = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return slices, inside, frac, core


def render_phantom(
    spec: PhantomSpec,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RenderedPhantom:
    """Rasterise every structure of ``spec``; noise is drawn from ``seed`` (deterministic)."""
    geo = spec.geometry
    hu = np.full(geo.shape_zyx, spec.background_hu, dtype=np.float32)
    labels = np.zeros(geo.shape_zyx, dtype=np.uint8)
    shape_voxels: dict[str, int] = {}
    ordered = spec.by_priority()
    for n, s in enumerate(ordered):
        check(cancel)
        report(progress, 0.9 * n / len(ordered), f"rasterising {s.name}")
        band = max(geo.spacing_mm) * (1.0 if s.core_hu is None else 2.0) + s.cortex_mm
        cover = _coverage(s.shape, geo, band_mm=band, cortex_mm=s.cortex_mm)
        if cover is None:
            shape_voxels[s.name] = 0
            continue
        slices, inside, frac, core = cover
        shape_voxels[s.name] = int(np.count_nonzero(inside))
        labels[slices][inside] = s.label
        sub = hu[slices]
        sub += frac * (np.float32(s.hu) - sub)
        if s.core_hu is not None:
            sub += core * (np.float32(s.core_hu) - sub)
    check(cancel)
    report(progress, 0.9, "adding blur and noise")
    clean = hu
    if spec.blur_sigma_mm > 0:
        sigma_vox = [spec.blur_sigma_mm / sp for sp in geo.spacing_mm[::-1]]
        clean = ndimage.gaussian_filter(hu, sigma_vox, mode="nearest")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy = clean + noise * np.float32(spec.noise_sd_hu)
    counts = np.bincount(labels.reshape(-1), minlength=256)
    label_voxels = {s.name: int(counts[s.label]) for s in spec.structures}
    report(progress, 1.0, "rendered")
    return RenderedPhantom(
        hu=noisy, labels=labels, shape_voxels=shape_voxels, label_voxels=label_voxels,
        clean_hu=clean,
    )
