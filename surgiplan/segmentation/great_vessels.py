"""Aorta and inferior vena cava on a contrast CT (HU), tracked slice by slice in front of the spine.

A STARTING POINT the user checks and corrects. The grid's k axis must run along S (axial CT);
the spinal canal (from ``surgiplan.segmentation.spine``) gives the landmarks.

1. Landmarks per axial slice: the canal's centre and the front of the vertebral body (the most
   anterior spine bone within 8 mm of the canal's column).
2. Candidates per slice: the in-plane islands of enhancing blood (``lower``..700 HU, not
   within 2 mm of cortical bone, >= ``CORTEX_HU``), opened by a 2 mm disc (``scipy.ndimage``)
   to cut small branches, whose centre lies in a window in front of the body (the aorta on
   the patient's left of the canal, the IVC on its right), of a vessel's cross-section
   (``MIN_AREA_MM2``..``MAX_AREA_MM2``) and round (at least 85 % of the island within 1.3
   equivalent radii of its centre).
3. Tracking: from each candidate up and down, per slice the candidate within ``STEP_MM`` of the
   last centre whose area is within a factor 1.7 of the last; a slice without one takes the
   blood within 1.15 radii of the last centre if it holds half the last area (plaque, a merged
   neighbour; at most two slices in a row); the track ends there (a bifurcation, the heart,
   the liver around the IVC). The longest track is the vessel.
4. Each kept cross-section is the island within 1.3 equivalent radii of its centre (branches
   leaving the vessel are cut there), grown in-plane by ``WALL_MM`` into soft tissue (> 0 HU:
   the wall and the partial-volume rim, as reference segmentations include them).

The lower HU limit is the first of ``AORTA_LEVELS_HU`` (``IVC_LEVELS_HU``) whose track spans
half the slices (arterial, portal-venous or late phase); the IVC has its window on the right of
the canal and a larger step (it is oval).

5. IVC behind the liver: above its track's top the IVC runs as dense as the liver around it
   (unenhanced or mixing blood), so it is carried up slice by slice: the last cross-section's
   neighbourhood (``CARRY_MARGIN_MM`` around it, the CT smoothed by ``CARRY_SMOOTH_MM``) is
   matched in the next slice by normalised cross-correlation over in-plane shifts up to
   ``CARRY_SHIFT_MM``, and the section moves by the best shift, keeping its shape. It stops
   where the match drops below ``CARRY_MIN_NCC``, where the section's mean HU falls
   ``CARRY_DROP_HU`` below the median of the carried sections (lung, fat: it left the
   vein), where its blood is mostly above ``CARRY_ATRIUM_HU`` (the right atrium), or
   after ``CARRY_MAX_MM``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from surgiplan.model.geometry import ImageGeometry

AORTA_LEVELS_HU = (150.0, 100.0)
IVC_LEVELS_HU = (90.0, 70.0)
TOP_HU = 700.0
CORTEX_HU = 450.0
MIN_AREA_MM2 = 60.0
MAX_AREA_MM2 = 1300.0
STEP_MM = 8.0
WALL_MM = 2.0
CARRY_MARGIN_MM = 10.0
CARRY_SMOOTH_MM = 1.5
CARRY_SHIFT_MM = 4.5
CARRY_MIN_NCC = 0.7
CARRY_DROP_HU = 30.0
CARRY_MAX_MM = 150.0
CARRY_DRIFT_MM = 60.0
CARRY_ATRIUM_HU = 160.0
METHOD = ("round enhancing cross-sections in front of the spine, tracked slice by slice from "
          "the roundest one (scipy.ndimage islands and openings); the IVC carried up behind "
          "the liver by cross-correlation of its neighbourhood slice to slice")


@dataclass(frozen=True)
class Window:
    """Where a vessel's centre may lie in a slice, in mm from the landmarks: ``front_mm``
    (+ = in front of the vertebral body's front), ``left_mm`` (+ = patient left of the canal)."""

    front_min_mm: float
    front_max_mm: float
    left_min_mm: float
    left_max_mm: float


AORTA_WINDOW = Window(-10.0, 45.0, 4.0, 45.0)
IVC_WINDOW = Window(-10.0, 55.0, -60.0, -8.0)


@dataclass(frozen=True)
class _Section:
    k: int
    centre: np.ndarray  # (j, i) voxel
    area_mm2: float
    roundness: float
    mask: np.ndarray  # in-plane bool


def canal_centre_per_slice(canal: np.ndarray) -> np.ndarray:
    """The spinal canal's centre ``(j, i)`` (voxel row, column) per axial slice ``(nz, 2)``,
    linearly interpolated over slices without canal."""
    nz = canal.shape[0]
    centre = np.full((nz, 2), np.nan)
    for k in np.flatnonzero(canal.any(axis=(1, 2))):
        centre[k] = np.argwhere(canal[k]).mean(axis=0)
    found = np.flatnonzero(np.isfinite(centre[:, 0]))
    for c in range(2):
        centre[:, c] = np.interp(np.arange(nz), found, centre[found, c])
    return centre


def _landmarks(canal: np.ndarray, spine_bone: np.ndarray, geometry: ImageGeometry
               ) -> tuple[np.ndarray, np.ndarray]:
    """Canal centre (j, i) per slice (interpolated where empty) and the body's front row."""
    centre = canal_centre_per_slice(canal)
    front = centre[:, 0] - 30.0 / geometry.spacing_mm[1]
    half = round(8.0 / geometry.spacing_mm[0])
    for k in range(canal.shape[0]):
        i = round(centre[k, 1])
        rows = np.flatnonzero(spine_bone[k, :round(centre[k, 0]), max(0, i - half):i + half + 1]
                              .any(axis=1))
        if rows.size:
            front[k] = rows.min()
    return centre, front


def _disc(shape: tuple[int, int], centre: np.ndarray, radius_px: tuple[float, float]
          ) -> np.ndarray:
    jj, ii = np.ogrid[:shape[0], :shape[1]]
    return (((jj - centre[0]) / radius_px[0]) ** 2 + ((ii - centre[1]) / radius_px[1]) ** 2
            <= 1.0)


def _sections(blood: np.ndarray, k: int, canal_centre: np.ndarray, front_row: float,
              window: Window, geometry: ImageGeometry) -> list[_Section]:
    """The vessel-like islands of one slice's ``blood`` whose centre lies in ``window``."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    labels, n = ndimage.label(blood)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float) * sx * sy
    centres = np.array(ndimage.center_of_mass(blood, labels, idx)).reshape(-1, 2)
    front_mm = (front_row - centres[:, 0]) * sy
    left_mm = (centres[:, 1] - canal_centre[1]) * sx * _left_sign(geometry)
    ok = ((area >= MIN_AREA_MM2) & (area <= MAX_AREA_MM2)
          & (front_mm >= window.front_min_mm) & (front_mm <= window.front_max_mm)
          & (left_mm >= window.left_min_mm) & (left_mm <= window.left_max_mm))
    out = []
    for c in np.flatnonzero(ok):
        island = labels == c + 1
        radius = np.sqrt(area[c] / np.pi)
        core = island & _disc(island.shape, centres[c], (1.3 * radius / sy, 1.3 * radius / sx))
        out.append(_Section(k, centres[c], float(area[c]), float(core.sum() / island.sum()),
                            core))
    return [s for s in out if s.roundness >= 0.85]


def _left_sign(geometry: ImageGeometry) -> float:
    """+1 when the grid's i axis runs toward the patient's left (LPS +x)."""
    return float(np.sign(geometry.direction[0, 0])) or 1.0


def _predicted(blood: np.ndarray, last: _Section, k: int, geometry: ImageGeometry
               ) -> _Section | None:
    """The blood of slice ``k`` within 1.15 radii of the last section's centre, when it holds
    at least half the last area (a section merged with its neighbours or holed by plaque)."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    radius = 1.15 * np.sqrt(last.area_mm2 / np.pi)
    mask = blood[k] & _disc(blood.shape[1:], last.centre, (radius / sy, radius / sx))
    area = float(mask.sum() * sx * sy)
    if area < 0.5 * last.area_mm2:
        return None
    return _Section(k, np.argwhere(mask).mean(axis=0), area, last.roundness, mask)


def _chain(candidates: list[list[_Section]], blood: np.ndarray, seed: _Section,
           geometry: ImageGeometry, step_mm: float) -> list[_Section]:
    """The sections reached from ``seed`` slice by slice up and down (bottom to top); a slice
    without a matching candidate takes the predicted section (at most two in a row)."""
    spacing = np.array([geometry.spacing_mm[1], geometry.spacing_mm[0]])
    chain = [seed]
    for direction in (1, -1):
        last, guessed = seed, 0
        k = seed.k + direction
        while 0 <= k < len(candidates):
            near = [s for s in candidates[k]
                    if np.linalg.norm((s.centre - last.centre) * spacing) <= step_mm
                    and 1 / 1.7 <= s.area_mm2 / last.area_mm2 <= 1.7]
            if near:
                last = min(near, key=lambda s: float(np.linalg.norm(s.centre - last.centre)))
                guessed = 0
            else:
                found = _predicted(blood, last, k, geometry) if guessed < 2 else None
                if found is None:
                    break
                last, guessed = found, guessed + 1
            chain.append(last)
            k += direction
    return sorted(chain, key=lambda s: s.k)


def _track(candidates: list[list[_Section]], blood: np.ndarray, geometry: ImageGeometry,
           step_mm: float) -> list[_Section]:
    """The longest chain of sections (see the module docstring)."""
    best: list[_Section] = []
    seen: set[int] = set()
    for per in candidates:
        for seed in per:
            if id(seed) in seen:
                continue
            chain = _chain(candidates, blood, seed, geometry, step_mm)
            seen.update(id(s) for s in chain)
            if len(chain) > len(best):
                best = chain
    return best


def _crop(centre: np.ndarray, front: np.ndarray, geometry: ImageGeometry,
          shape: tuple[int, int, int]) -> tuple[slice, slice]:
    """Rows and columns around the spine's front that hold every window."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    j0 = int(max(0, front.min() - 90.0 / sy))
    j1 = int(min(shape[1], front.max() + 40.0 / sy))
    i0 = int(max(0, centre[:, 1].min() - 90.0 / sx))
    i1 = int(min(shape[2], centre[:, 1].max() + 90.0 / sx))
    return slice(j0, j1), slice(i0, i1)


@dataclass(frozen=True)
class _Frame:
    """What every track in front of one spine shares: the canal's centre and the vertebral
    body's front per slice, the crop (rows, columns) holding every window, and the crop's
    bone zone (cortex >= ``CORTEX_HU`` in the body grown by 2 mm, and the canal)."""

    centre: np.ndarray
    front: np.ndarray
    rows: slice
    cols: slice
    bone: np.ndarray


def _frame(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray, canal: np.ndarray,
           spine_bone: np.ndarray) -> _Frame:
    from surgiplan.segmentation.morphology import grow_mask

    centre, front = _landmarks(canal, spine_bone, geometry)
    rows, cols = _crop(centre, front, geometry, image.shape)
    sub, sub_body = image[:, rows, cols], body[:, rows, cols]
    bone = grow_mask((sub >= CORTEX_HU) & sub_body, geometry, 2.0) | canal[:, rows, cols]
    return _Frame(centre, front, rows, cols, bone)


def track_vessel(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                 canal: np.ndarray, spine_bone: np.ndarray, *, lower_hu: float,
                 window: Window, step_mm: float = STEP_MM,
                 frame: _Frame | None = None) -> np.ndarray:
    """One tubular vessel in front of the spine (see the module docstring); empty if none
    (or without a canal to place it by). ``frame``: ``_frame(...)`` computed once for several
    tracks (its bone zone from a body that differs from ``body`` by no voxel >= ``CORTEX_HU``)."""
    if not canal.any():
        return np.zeros(image.shape, bool)

    if frame is None:
        frame = _frame(image, geometry, body, canal, spine_bone)
    rows, cols, bone = frame.rows, frame.cols, frame.bone
    sub, sub_body = image[:, rows, cols], body[:, rows, cols]
    centre = frame.centre - np.array([rows.start, cols.start])
    front = frame.front - rows.start
    blood = (sub >= lower_hu) & (sub <= TOP_HU) & sub_body & ~bone
    radius = max(1, round(2.0 / geometry.spacing_mm[0]))
    disc = np.zeros((3, 2 * radius + 1, 2 * radius + 1), bool)
    disc[1] = _disc((2 * radius + 1, 2 * radius + 1), np.array([radius, radius]),
                    (radius + 0.5, radius + 0.5))
    blood = ndimage.binary_opening(blood, structure=disc)
    candidates = [_sections(blood[k], k, centre[k], front[k], window, geometry)
                  for k in range(image.shape[0])]
    lumen = np.zeros(sub.shape, bool)
    for section in _track(candidates, blood, geometry, step_mm):
        lumen[section.k] = section.mask
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    wall = ndimage.binary_dilation(lumen, structure=structure,
                                   iterations=round(WALL_MM / geometry.spacing_mm[0]))
    out = np.zeros(image.shape, bool)
    out[:, rows, cols] = lumen | (wall & (sub > 0) & ~bone & sub_body)
    return out


def _best_track(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                canal: np.ndarray, spine_bone: np.ndarray, levels: tuple[float, ...],
                window: Window, step_mm: float, frame: _Frame | None) -> np.ndarray:
    """The vessel at the first lower HU level in ``levels`` whose track spans at least half
    the slices (less enhanced scans need a lower level); else the longest track."""
    best = np.zeros(image.shape, bool)
    for level in levels:
        mask = track_vessel(image, geometry, body, canal, spine_bone, lower_hu=level,
                            window=window, step_mm=step_mm, frame=frame)
        span = int(mask.any(axis=(1, 2)).sum())
        if span >= 0.5 * image.shape[0]:
            return mask
        if span > int(best.any(axis=(1, 2)).sum()):
            best = mask
    return best


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equal-shape patches (-1..1)."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def _best_shift(before: np.ndarray, after: np.ndarray, box: tuple[slice, slice], reach: int
                ) -> tuple[float, int, int]:
    """(NCC, dj, di): the in-plane shift of ``after`` whose patch best matches ``before``'s."""
    ref = before[box]
    best = (-2.0, 0, 0)
    for dj in range(-reach, reach + 1):
        for di in range(-reach, reach + 1):
            moved = (slice(box[0].start + dj, box[0].stop + dj),
                     slice(box[1].start + di, box[1].stop + di))
            score = _ncc(ref, after[moved])
            if score > best[0]:
                best = (score, dj, di)
    return best


def _carry_crop(vessel: np.ndarray, geometry: ImageGeometry, top: int, up: int
                ) -> tuple[slice, slice, slice]:
    """The slices from ``top`` up to ``CARRY_MAX_MM`` and the rows and columns within
    ``CARRY_DRIFT_MM`` of the top section."""
    sx, sy, sz = geometry.spacing_mm
    js, is_ = np.nonzero(vessel[top])
    dj, di = int(np.ceil(CARRY_DRIFT_MM / sy)), int(np.ceil(CARRY_DRIFT_MM / sx))
    end = int(np.clip(top + up * int(CARRY_MAX_MM / sz), 0, vessel.shape[0] - 1))
    k0, k1 = min(top, end), max(top, end) + 1
    if k1 - k0 < 4:  # SimpleITK's recursive Gaussian needs four slices
        k0, k1 = max(0, min(k0, k1 - 4)), min(vessel.shape[0], max(k1, k0 + 4))
    return (slice(k0, k1),
            slice(max(0, js.min() - dj), min(vessel.shape[1], js.max() + dj + 1)),
            slice(max(0, is_.min() - di), min(vessel.shape[2], is_.max() + di + 1)))


def carry_up(image: np.ndarray, geometry: ImageGeometry, vessel: np.ndarray,
             bright_hu: float) -> np.ndarray:
    """``vessel`` carried up from its top section behind the liver (step 5 of the module
    docstring); unchanged when there is nothing to carry."""
    import SimpleITK as sitk

    ks = np.flatnonzero(vessel.any(axis=(1, 2)))
    if ks.size == 0:
        return vessel
    up = 1 if geometry.direction[2, 2] >= 0 else -1
    top = int(ks[-1] if up > 0 else ks[0])
    crop = _carry_crop(vessel, geometry, top, up)
    img = sitk.GetImageFromArray(np.ascontiguousarray(image[crop], np.float32))
    img.SetSpacing([float(s) for s in geometry.spacing_mm])
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(img, CARRY_SMOOTH_MM))
    pad = int(np.ceil(CARRY_MARGIN_MM / geometry.spacing_mm[0]))
    reach = max(1, round(CARRY_SHIFT_MM / geometry.spacing_mm[0]))
    k0 = crop[0].start
    section = vessel[top][crop[1:]].copy()
    means = [float(smooth[top - k0][section].mean())]
    out = vessel.copy()
    k = top + up
    while crop[0].start <= k < crop[0].stop:
        js, is_ = np.nonzero(section)
        box = (slice(js.min() - pad, js.max() + pad + 1),
               slice(is_.min() - pad, is_.max() + pad + 1))
        if (min(box[0].start, box[1].start) < reach or box[0].stop + reach > section.shape[0]
                or box[1].stop + reach > section.shape[1]):
            break
        score, dj, di = _best_shift(smooth[k - up - k0], smooth[k - k0], box, reach)
        moved = np.roll(section, (dj, di), axis=(0, 1))
        values = smooth[k - k0][moved]
        if (score < CARRY_MIN_NCC or values.mean() < np.median(means) - CARRY_DROP_HU
                or (values >= bright_hu).mean() > 0.5):
            break
        section = moved
        means.append(float(values.mean()))
        out[k][crop[1:]] |= section
        k += up
    return out


def segment_aorta_ivc(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                      canal: np.ndarray, spine_bone: np.ndarray) -> dict[str, np.ndarray]:
    """``{"aorta": mask, "inferior vena cava": mask}`` (empty masks omitted). The tracks share
    one ``_frame``: the aorta holds no voxel >= ``CORTEX_HU`` (its lumen and wall lie outside
    the bone zone), so ``body & ~aorta`` gives the IVC the same bone zone."""
    frame = _frame(image, geometry, body, canal, spine_bone) if canal.any() else None
    aorta = _best_track(image, geometry, body, canal, spine_bone, AORTA_LEVELS_HU,
                        AORTA_WINDOW, STEP_MM, frame)
    ivc = _best_track(image, geometry, body & ~aorta, canal, spine_bone, IVC_LEVELS_HU,
                      IVC_WINDOW, 10.0, frame)
    ivc = carry_up(image, geometry, ivc, CARRY_ATRIUM_HU) & body & ~aorta
    return {name: mask for name, mask in (("aorta", aorta), ("inferior vena cava", ivc))
            if mask.any()}
