"""Region growing from seed clicks (SimpleITK connected / confidence-connected threshold).

``"connected"``: the voxels connected (6-neighbours) to a seed whose value lies in
``[lower, upper]``; missing bounds come from the seeds' neighbourhood: mean -/+ ``multiplier``
standard deviations of the voxels within ``neighbourhood_mm`` of the seeds.
``"confidence"``: ITK's ConfidenceConnected (the interval is re-estimated from the grown region
``iterations`` times).

Background seeds (``background_lps``, "grow from seeds" as in 3D Slicer) separate a structure
from touching neighbours of similar intensity: foreground and background seeds compete in a
marker-based watershed on the gradient magnitude, and only the foreground's basin may grow.

The live preview (:class:`RegionGrowPreview`) grows inside a box around the seeds that doubles
while the result touches its faces and the time budget allows; ``commit`` grows in the box of
the last preview, so Apply adds exactly what the preview showed (a preview stopped at its box
says so; background seeds or a narrower interval then stop the leak).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.processing.crop import Box, box_from_ijk, pad_box
from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.segmentation.brush import sphere_region
from surgiplan.segmentation.region import MaskRegion

METHODS = ("connected", "confidence")


def seed_indices(geometry: ImageGeometry, seeds_lps: Any) -> np.ndarray:
    """Nearest voxel ``(i, j, k)`` of each seed (LPS mm); refuses seeds off the grid."""
    pts = np.asarray(seeds_lps, dtype=float).reshape(-1, 3)
    if pts.shape[0] == 0:
        raise BadInputError("region growing needs at least one seed",
                            action="click inside the structure to grow")
    if not np.all(geometry.contains_lps(pts)):
        raise BadInputError("a region-growing seed lies outside the image",
                            action="click inside the image")
    ijk = np.rint(geometry.lps_to_index(pts)).astype(int)
    return np.clip(ijk, 0, np.asarray(geometry.size) - 1)


def seed_interval(image: np.ndarray, geometry: ImageGeometry, seeds_lps: Any, *,
                  multiplier: float = 2.5, neighbourhood_mm: float = 2.0) -> tuple[float, float]:
    """``(lower, upper)``: mean -/+ multiplier x std of the voxels near the seeds."""
    values = []
    for ijk in seed_indices(geometry, seeds_lps):
        centre = geometry.index_to_lps(ijk)
        region = sphere_region(geometry, centre, max(neighbourhood_mm, 1e-3))
        values.append(image[region.box][region.mask] if region else image[tuple(ijk[::-1])])
    v = np.concatenate([np.ravel(x) for x in values]).astype(float)
    mean, std = float(v.mean()), float(v.std())
    return mean - multiplier * std, mean + multiplier * std


def _roi(geometry: ImageGeometry, seeds_ijk: np.ndarray, radius_mm: float | None) -> Box:
    if radius_mm is None:
        nz, ny, nx = geometry.shape_zyx
        return slice(0, nz), slice(0, ny), slice(0, nx)
    lo, hi = seeds_ijk.min(axis=0), seeds_ijk.max(axis=0) + 1
    box = box_from_ijk(lo, hi)
    reach = np.ceil(radius_mm / np.asarray(geometry.spacing_mm)[::-1]).astype(int)
    return pad_box(box, reach, geometry.shape_zyx)


def _grow(crop: np.ndarray, spacing: Sequence[float], seeds: list[tuple[int, int, int]],
          method: str, interval: tuple[float, float], multiplier: float, iterations: int,
          radius_vox: int) -> np.ndarray:
    import SimpleITK as sitk

    native = crop.dtype in (np.int16, np.uint16, np.int32, np.float32, np.float64, np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(crop if native else
                                                        crop.astype(np.float32)))
    image.SetSpacing([float(s) for s in spacing])
    if method == "connected":
        out = sitk.ConnectedThreshold(image, seedList=seeds, lower=interval[0],
                                      upper=interval[1], replaceValue=1)
    else:
        out = sitk.ConfidenceConnected(image, seedList=seeds, numberOfIterations=iterations,
                                       multiplier=multiplier,
                                       initialNeighborhoodRadius=radius_vox, replaceValue=1)
    return sitk.GetArrayFromImage(out).astype(bool)


def region_grow(image: np.ndarray, geometry: ImageGeometry, seeds_lps: Any, *,
                method: str = "connected", lower: float | None = None,
                upper: float | None = None, multiplier: float = 2.5,
                neighbourhood_mm: float = 2.0, iterations: int = 3,
                roi_radius_mm: float | None = None, within: np.ndarray | None = None,
                background_lps: Any = None,
                progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> MaskRegion | None:
    """Grow from seeds (LPS mm); ``roi_radius_mm`` limits growth to a box around the seeds;
    ``background_lps`` seeds (LPS mm) mark what must stay out (see the module notes).

    ``within`` (full-grid mask) limits the result; only the parts connected to a seed stay.
    Returns the grown region (None when nothing grew).
    """
    if method not in METHODS:
        raise BadInputError(f"unknown region-growing method {method!r}",
                            action="use connected or confidence")
    check(cancel)
    seeds_ijk = seed_indices(geometry, seeds_lps)
    box = _roi(geometry, seeds_ijk, roi_radius_mm)
    auto = seed_interval(image, geometry, seeds_lps, multiplier=multiplier,
                         neighbourhood_mm=neighbourhood_mm)
    interval = (auto[0] if lower is None else lower, auto[1] if upper is None else upper)
    crop = image[box]
    start_ijk = np.array([box[2].start, box[1].start, box[0].start])
    local = [(int(i), int(j), int(k)) for i, j, k in seeds_ijk - start_ijk]
    radius_vox = max(1, round(neighbourhood_mm / min(geometry.spacing_mm)))
    report(progress, 0.1, "region growing")
    grown = _grow(crop, geometry.spacing_mm, local, method, interval, multiplier,
                  iterations, radius_vox)
    background = _local_seeds(geometry, background_lps, box)
    if background:
        check(cancel)
        grown = _seeded_part(grown & _foreground_basin(crop, geometry.spacing_mm, local,
                                                       background), local)
    if within is not None:
        grown = _seeded_part(grown & np.asarray(within, dtype=bool)[box], local)
    report(progress, 1.0, "region growing")
    found = MaskRegion.from_mask(grown)
    if found is None:
        return None
    shifted = tuple(slice(b.start + f.start, b.start + f.stop)
                    for b, f in zip(box, found.box, strict=True))
    return MaskRegion(shifted, found.mask)  # type: ignore[arg-type]


def _local_seeds(geometry: ImageGeometry, seeds_lps: Any, box: Box) -> list[tuple[int, ...]]:
    """Seeds (LPS mm) inside ``box`` as (i, j, k) indices relative to it."""
    if seeds_lps is None or len(np.asarray(seeds_lps, float).reshape(-1, 3)) == 0:
        return []
    ijk = np.rint(geometry.lps_to_index(np.asarray(seeds_lps, float).reshape(-1, 3))).astype(int)
    start = np.array([box[2].start, box[1].start, box[0].start])
    stop = np.array([box[2].stop, box[1].stop, box[0].stop])
    inside = np.all((ijk >= start) & (ijk < stop), axis=1)
    return [tuple(int(v) for v in p - start) for p in ijk[inside]]


def _foreground_basin(crop: np.ndarray, spacing: Sequence[float],
                      foreground: Sequence[tuple[int, ...]],
                      background: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Voxels of the foreground seeds' basin in a marker watershed (foreground = 1,
    background = 2) on the smoothed gradient magnitude of ``crop``."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(crop, dtype=np.float32))
    image.SetSpacing([float(s) for s in spacing])
    gradient = sitk.GradientMagnitudeRecursiveGaussian(image, sigma=float(min(spacing)))
    markers = np.zeros(crop.shape, np.uint8)
    for value, seeds in ((2, background), (1, foreground)):
        for i, j, k in seeds:
            markers[k, j, i] = value
    marker_image = sitk.GetImageFromArray(markers)
    marker_image.CopyInformation(gradient)
    basins = sitk.MorphologicalWatershedFromMarkers(gradient, marker_image,
                                                    markWatershedLine=False,
                                                    fullyConnected=False)
    return sitk.GetArrayFromImage(basins) == 1


def _seeded_part(mask: np.ndarray, seeds_ijk: list[tuple[int, int, int]]) -> np.ndarray:
    from scipy import ndimage

    labels, _n = ndimage.label(mask)
    hit = {int(labels[k, j, i]) for i, j, k in seeds_ijk} - {0}
    return np.isin(labels, list(hit))


@dataclass(frozen=True)
class GrowPreviewResult:
    """A preview: ``complete`` is True when the growth did not reach the preview box faces."""

    region: MaskRegion | None
    complete: bool
    seconds: float


def _touches_open_face(region: MaskRegion | None, roi: Box, shape_zyx: Sequence[int]) -> bool:
    if region is None:
        return False
    for r, b, n in zip(region.box, roi, shape_zyx, strict=True):
        if (r.start == b.start and b.start > 0) or (r.stop == b.stop and b.stop < n):
            return True
    return False


class RegionGrowPreview:
    """Live region-growing preview within ``budget_s`` seconds (a box that grows around the
    seeds); call :meth:`update` on every seed or option change and :meth:`commit` on accept."""

    def __init__(self, image: np.ndarray, geometry: ImageGeometry, *, budget_s: float = 0.4,
                 start_radius_mm: float = 40.0) -> None:
        self.image = image
        self.geometry = geometry
        self.budget_s = budget_s
        self.start_radius_mm = start_radius_mm
        self.last_radius_mm: float | None = None  # box of the last preview (None: whole grid)

    def update(self, seeds_lps: Any, **options: Any) -> GrowPreviewResult:
        """Grow in a box of ``start_radius_mm`` around the seeds, doubling it while the
        result reaches its faces and the next (about 8x dearer) round fits in the budget."""
        t0 = time.perf_counter()
        radius = self.start_radius_mm
        extent = float(np.max(np.asarray(self.geometry.size) * self.geometry.spacing_mm))
        while True:
            t_round = time.perf_counter()
            region = region_grow(self.image, self.geometry, seeds_lps, roi_radius_mm=radius,
                                 **options)
            roi = _roi(self.geometry, seed_indices(self.geometry, seeds_lps), radius)
            open_face = _touches_open_face(region, roi, self.geometry.shape_zyx)
            now = time.perf_counter()
            self.last_radius_mm = radius
            if not open_face or radius >= extent:
                return GrowPreviewResult(region, True, now - t0)
            if (now - t0) + 8.0 * (now - t_round) > self.budget_s:
                return GrowPreviewResult(region, False, now - t0)
            radius *= 2.0

    def commit(self, seeds_lps: Any, **options: Any) -> MaskRegion | None:
        """Exactly what the last preview showed: the growth in its box (whole grid when no
        preview ran)."""
        return region_grow(self.image, self.geometry, seeds_lps,
                           roi_radius_mm=self.last_radius_mm, **options)
