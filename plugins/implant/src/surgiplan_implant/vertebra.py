"""Auto-suggest a pedicle screw for a chosen vertebra and side, from its label mask.

1. The vertebra: a bone structure holding one vertebra, or (one ``bone`` structure for the
   whole skeleton) the connected bone around a picked point within a 32 mm slab along S.
2. Pedicle seed: on the chosen side, the centroid of the bone beside the canal (the holes the
   vertebra encloses in its axial slices), level with its front half, in the slices where the
   ring is closed: the pedicles join the body to the arch there. Without a closed ring, the
   antero-posterior level where the bone's coronal cross-section is smallest between the
   body and the posterior elements (the waist of the vertebral ring).
3. Pedicle axis through the isthmus: the straight line through the pedicle at the seed that
   maximises its smallest plus its mean inscribed distance (minus the signed distance) over
   12 mm around it: a grid search over the point (+-3 mm), the medial convergence
   (-5..35 deg) and the cranio-caudal tilt (+-15 deg); then refined to the centre line (the
   least-squares line through the mid-points between the walls, +-3 mm around the level)
   unless that makes the line shallower. The narrowest pedicle width is the smallest
   wall-to-wall width across that axis.
4. Length = 80 % of the bone chord along the axis from the posterior entry to the anterior
   cortex of the body; diameter = 80 % of the narrowest width, but no more than the room the
   axis leaves: its inscribed distance past the shank's first quarter, its distance to the
   bony canal, and its distance to the canal's critical contents (a segmented spinal canal)
   less :data:`CANAL_MARGIN_MM`; each rounded down to a catalogue size. The head goes at the
   posterior entry (where the axis leaves the bone), sunk along the axis where the axis meets
   the bone at a glancing angle (:func:`seat_depth_mm`); the tip along the axis.

Refusals (``BadInputError``, never a guess): the bone is not separable into vertebrae (the
connected bone around the point spans more than :data:`MAX_VERTEBRA_HEIGHT_MM` along S or
holds more than :data:`MAX_VERTEBRA_ML`: one merged ``bone`` label), the vertebra's spinal
canal cannot be found (no closed ring in its axial slices), the pedicle leaves no room for the
smallest screw, or the screw would enter the canal (the holes enclosed by the vertebra in its
axial slices; trilinear signed distance < 0 at a sample point of the screw's body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.processing.distance import signed_distance_roi
from surgiplan.simulation import SimulationContext
from surgiplan_implant.library import ScrewFamily, screw_family
from surgiplan_implant.pose import pose_from_axis
from surgiplan_implant.scoring import GridSampler

MAX_VERTEBRA_HEIGHT_MM = 60.0  # a lumbar vertebra with its processes spans ~35-45 mm along S
MAX_VERTEBRA_ML = 150.0  # a lumbar vertebra holds ~40-90 ml of bone
MIN_CANAL_AREA_MM2 = 30.0  # smaller enclosed holes are cancellous gaps, not the canal
DIAMETER_FRACTION = 0.8
LENGTH_FRACTION = 0.8
CANAL_MARGIN_MM = 2.0  # the screw's whole body keeps this far from the canal's contents
ENTRY_SKIP_FRACTION = 0.25  # the shank's first quarter enters the bone obliquely at its surface
PEDICLE_REACH_MM = 12.0  # the pedicle: bone beside the canal's side wall, up to this far out
SIDES = {"left": 1.0, "right": -1.0}  # patient left is +L


@dataclass(frozen=True)
class ScrewSuggestion:
    """A suggested screw (LPS mm): head at ``entry_lps``, tip at ``tip_lps``."""

    vertebra: str
    side: str
    diameter_mm: float
    length_mm: float
    entry_lps: tuple[float, float, float]
    tip_lps: tuple[float, float, float]
    isthmus_lps: tuple[float, float, float]
    isthmus_width_mm: float
    chord_mm: float
    pose: np.ndarray
    screw_id: str

    def to_json(self) -> dict[str, Any]:
        return {"vertebra": self.vertebra, "side": self.side, "diameter_mm": self.diameter_mm,
                "length_mm": self.length_mm, "entry_lps": list(self.entry_lps),
                "tip_lps": list(self.tip_lps), "isthmus_lps": list(self.isthmus_lps),
                "isthmus_width_mm": self.isthmus_width_mm, "chord_mm": self.chord_mm,
                "pose": self.pose.tolist(), "screw_id": self.screw_id}


def vertebra_mask(context: SimulationContext, structure: str,
                  point_lps: Any = None, *, half_height_mm: float = 16.0) -> np.ndarray:
    """The vertebra's voxels: the whole structure, or with ``point_lps`` the connected bone
    of ``structure`` around that point within +-``half_height_mm`` along S."""
    mask = np.asarray(context.mask(structure))
    if point_lps is None:
        return mask
    geometry = context.geometry
    point = np.asarray(point_lps, float)
    offsets = np.array([[0.0, 0.0, -half_height_mm], [0.0, 0.0, half_height_mm]])
    s_index = geometry.lps_to_index(point + offsets)[:, 2]
    k0, k1 = (int(np.clip(v, 0, geometry.size[2] - 1)) for v in np.sort(np.round(s_index)))
    slab = np.zeros_like(mask)
    slab[k0:k1 + 1] = mask[k0:k1 + 1]
    labels, _ = ndimage.label(slab)
    seed = np.rint(geometry.lps_to_index(point)).astype(int)[::-1]
    value = labels[tuple(np.clip(seed, 0, np.asarray(mask.shape) - 1))]
    if value == 0:
        near = np.argwhere(slab)
        if len(near) == 0:
            raise BadInputError(f"no {structure} voxels near the picked point",
                                action="pick a point inside the vertebra")
        value = labels[tuple(near[np.argmin(np.abs(near - seed).sum(axis=1))])]
    return labels == value


def pedicle_level(points_lps: np.ndarray, centre: np.ndarray, side: float) -> float:
    """AP coordinate (mm from the centroid, + posterior) of the waist on one side.

    The profile is the bone area per voxel row (count / rows in each 1 mm bin, so the grid's
    spacing does not alias it; a bin no row falls in, on a grid coarser than 1 mm, takes the
    value interpolated between its neighbours rather than 0, a false waist); past the body
    (where it first halves) and before the largest posterior peak, the middle of the run
    within 10 % of the smallest value is the waist.
    """
    rel = points_lps - centre
    ap = rel[side * rel[:, 0] > 2.0][:, 1]
    ap = ap[ap >= 0.0]
    if len(ap) == 0:
        raise BadInputError("the vertebra has no bone posterior to its centre on that side",
                            action="check the vertebra segmentation")
    edges = np.arange(0.0, float(ap.max()) + 1.0, 1.0)
    rows = np.histogram(np.unique(np.round(ap, 3)), edges)[0]
    area = np.histogram(ap, edges)[0] / np.maximum(rows, 1)
    mids = 0.5 * (edges[:-1] + edges[1:])  # bins between rows of a coarser grid: interpolated
    area = np.interp(mids, mids[rows > 0], area[rows > 0])
    area = np.convolve(area, np.ones(3) / 3.0, mode="same")
    past_body = int(np.argmax(area < 0.5 * area[:3].max()))
    peak = past_body + int(np.argmax(area[past_body:]))
    if peak - past_body < 2:
        raise BadInputError("no pedicle waist found between the body and the posterior "
                            "elements", action="check the vertebra segmentation")
    low = max(0, past_body - 2)
    segment = area[low:peak]
    floor = segment.min()
    j = low + int(np.argmin(segment))
    a, b = j, j
    while a > low and area[a - 1] <= 1.1 * floor:
        a -= 1
    while b < peak - 1 and area[b + 1] <= 1.1 * floor:
        b += 1
    return float(0.5 * (edges[a] + edges[b + 1]))


def pedicle_seed(mask: np.ndarray, geometry: Any, points_lps: np.ndarray, side: float
                 ) -> np.ndarray:
    """A point in the pedicle on ``side`` (LPS mm): the centroid of the bone beside the canal
    (within ``PEDICLE_REACH_MM`` of its side wall, level with its front half) in the slices
    where the vertebra closes its ring round the canal; the pedicles join the body to the
    arch exactly there. Without a closed ring: the waist of :func:`pedicle_level`."""
    canal = canal_mask(mask, geometry)
    if canal.any():
        hole = geometry.index_to_lps(np.argwhere(canal)[:, ::-1].astype(float))
        ring = np.isin(np.argwhere(mask)[:, 0], np.flatnonzero(canal.any(axis=(1, 2))))
        c = hole.mean(axis=0)
        wall = float((side * (hole[:, 0] - c[0])).max())
        rel = points_lps[ring] - c
        beside = ((side * rel[:, 0] > wall) & (side * rel[:, 0] < wall + PEDICLE_REACH_MM)
                  & (rel[:, 1] <= 0.0) & (rel[:, 1] > hole[:, 1].min() - c[1]))
        if beside.sum() >= 10:
            return points_lps[ring][beside].mean(axis=0)
    centre = points_lps.mean(axis=0)
    level = pedicle_level(points_lps, centre, side)
    rel = points_lps - centre
    return points_lps[(side * rel[:, 0] > 2.0) & (np.abs(rel[:, 1] - level) < 1.0)].mean(axis=0)


def centre_line(sampler: GridSampler, point: np.ndarray, direction: np.ndarray, *,
                iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Refine a line through the pedicle to its centre line: the least-squares line through
    the mid-points between the bone's walls (two perpendicular directions) over +-3 mm."""
    for _ in range(iterations):
        e1, e2 = _perpendiculars(direction)
        mids = []
        for t in np.arange(-3.0, 3.01, 0.5):
            p = point + t * direction
            shift = sum(0.5 * (_crossing(sampler, p, e) - _crossing(sampler, p, -e)) * e
                        for e in (e1, e2))
            mids.append(p + shift)
        mids = np.asarray(mids)
        point = mids.mean(axis=0)
        axis = np.linalg.svd(mids - point)[2][0]
        direction = axis if axis @ direction > 0 else -axis
    return point, direction


def _perpendiculars(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e1 = np.cross(direction, [0.0, 0.0, 1.0])
    if np.linalg.norm(e1) < 1e-3:
        e1 = np.cross(direction, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(direction, e1)


def refined_axis(sampler: GridSampler, point: np.ndarray, direction: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`centre_line` when it keeps the line at least as deep in the bone over +-6 mm
    (smallest inscribed distance, 0.25 mm slack); the line as given when the refinement
    drifts to a shallower line or its walls are not found (a real pedicle's irregular
    cortex)."""
    t = np.arange(-6.0, 6.01, 0.5)[:, None]
    depth = float((-sampler(point + t * direction)).min())
    try:
        new_point, new_direction = centre_line(sampler, point, direction)
    except BadInputError:
        return point, direction
    if float((-sampler(new_point + t * new_direction)).min()) < depth - 0.25:
        return point, direction
    return new_point, new_direction


def _canal_contents(context: SimulationContext, canal: np.ndarray) -> np.ndarray:
    """The critical structures inside the vertebra's canal (the segmented spinal canal, dural
    sac or cauda equina), as one mask; empty when there is none."""
    out = np.zeros_like(canal)
    for info in context.by_role(Role.CRITICAL):
        critical = np.asarray(context.mask(info.name))
        if (critical & canal).any():
            out |= critical
    return out


def room_mm(sampler: GridSampler, canal: np.ndarray, contents: np.ndarray, geometry: Any,
            entry: np.ndarray, tip: np.ndarray) -> float:
    """The largest screw radius (mm) the axis from ``entry`` to ``tip`` allows: its smallest
    inscribed distance in the bone past the first ``ENTRY_SKIP_FRACTION`` of the shank (where
    it may enter the bone obliquely; :func:`seat_depth_mm` then sinks its start), its
    distance to the bony ``canal``, and to the critical ``contents`` of the canal less
    ``CANAL_MARGIN_MM``."""
    length = float(np.linalg.norm(tip - entry))
    direction = (tip - entry) / length
    axis = entry + np.arange(0.0, length + 0.01, 0.25)[:, None] * direction
    deep = axis[np.arange(len(axis)) * 0.25 >= ENTRY_SKIP_FRACTION * length]
    room = float((-sampler(deep)).min())
    if canal.any():
        room = min(room, float(canal_distance_mm(canal, geometry, axis).min()))
    if contents.any():
        room = min(room, float(canal_distance_mm(contents, geometry, axis).min())
                   - CANAL_MARGIN_MM)
    return room


def seat_depth_mm(sampler: GridSampler, entry: np.ndarray, direction: np.ndarray,
                  radius_mm: float, within_mm: float) -> float:
    """How deep (mm along the axis) the shank's start must sit so that the shank of
    ``radius_mm`` stays in the bone past its first ``radius_mm`` (the entry zone a grade
    ignores): an axis that meets the bone surface at a glancing angle runs shallower than
    the radius for a few millimetres; searched within the first ``within_mm``."""
    t = np.arange(0.0, within_mm + 0.01, 0.25)
    shallow = t[-sampler(entry + t[:, None] * direction) < radius_mm - 0.25]
    return float(max(0.0, shallow.max() + 0.25 - radius_mm)) if len(shallow) else 0.0


def narrowest_width_mm(sampler: GridSampler, point: np.ndarray, direction: np.ndarray,
                       ) -> float:
    """Narrowest bone width (mm) across the axis near ``point``: for 18 directions
    perpendicular to the axis, the distance between the two zero crossings of the signed
    distance, averaged over +-3 mm along the axis; the smallest of these."""
    e1, e2 = _perpendiculars(direction)
    widths = []
    for theta in np.radians(np.arange(0.0, 180.0, 10.0)):
        u = np.cos(theta) * e1 + np.sin(theta) * e2
        per_t = [_crossing(sampler, point + t * direction, u)
                 + _crossing(sampler, point + t * direction, -u) for t in np.arange(-3, 3.1)]
        widths.append(float(np.mean(per_t)))
    return min(widths)


def _crossing(sampler: GridSampler, start: np.ndarray, direction: np.ndarray) -> float:
    """Distance (mm) from ``start`` to where the signed distance first reaches 0 (0 when
    ``start`` is outside the bone, 40 when the ray stays in it that far)."""
    t = np.arange(0.0, 40.0, 0.25)
    d = sampler(start + t[:, None] * direction)
    out = np.flatnonzero(d >= 0)
    if len(out) == 0:
        return 40.0
    j = int(out[0])
    if j == 0:
        return 0.0
    return float(t[j - 1] + d[j - 1] / (d[j - 1] - d[j]) * 0.25)


def _directions(side: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate axis directions (m, 3) pointing anterior-medially, and their angles (deg)."""
    conv = np.radians(np.arange(-5.0, 35.5, 1.0))
    tilt = np.radians(np.arange(-15.0, 15.5, 1.0))
    cc, tt = np.meshgrid(conv, tilt, indexing="ij")
    d = np.stack([-side * np.tan(cc), -np.ones_like(cc), np.tan(tt)], axis=-1).reshape(-1, 3)
    return d / np.linalg.norm(d, axis=1, keepdims=True), np.degrees(np.stack(
        [cc.ravel(), tt.ravel()], axis=1))


def best_axis(sampler: GridSampler, seed_lps: np.ndarray, side: float
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """(point, unit direction, inscribed radius mm) of the maximin line through the pedicle."""
    dirs, _ = _directions(side)
    offsets = np.arange(-3.0, 3.01, 0.5)
    uu, ww = np.meshgrid(offsets, offsets, indexing="ij")
    starts = seed_lps + np.stack([uu.ravel(), np.zeros(uu.size), ww.ravel()], axis=1)
    t = np.arange(-6.0, 6.01, 0.5)
    best = (-np.inf, 0, 0)
    penalty = 0.01 * (np.abs(uu.ravel()) + np.abs(ww.ravel()))
    for k, d in enumerate(dirs):
        pts = starts[:, None, :] + t[None, :, None] * d
        inscribed = -sampler(pts)
        value = inscribed.min(axis=1) + inscribed.mean(axis=1) - penalty
        i = int(np.argmax(value))
        if value[i] > best[0]:
            best = (float(value[i]), i, k)
    _, i, k = best
    radius = float((-sampler(starts[i] + t[:, None] * dirs[k])).min())
    return starts[i], dirs[k], radius


def _exit(sampler: GridSampler, start: np.ndarray, direction: np.ndarray,
          limit_mm: float = 150.0) -> np.ndarray:
    """Where the ray from ``start`` (inside) along ``direction`` first leaves the bone."""
    t = np.arange(0.0, limit_mm, 0.25)
    d = sampler(start + t[:, None] * direction)
    out = np.flatnonzero(d >= 0)
    if len(out) == 0 or out[0] == 0:
        raise BadInputError("the pedicle axis does not leave the bone cleanly",
                            action="check the vertebra segmentation or place the screw by hand")
    j = out[0]
    frac = d[j - 1] / (d[j - 1] - d[j])  # linear zero crossing
    return start + (t[j - 1] + frac * 0.25) * direction


def suggest_screw(context: SimulationContext, vertebra: str, side: str, *,
                  point_lps: Any = None, family: ScrewFamily | None = None) -> ScrewSuggestion:
    """A screw along the pedicle axis of ``vertebra`` on ``side`` ("left"/"right", patient).

    ``vertebra`` is a bone structure; with ``point_lps`` only the connected bone around that
    point is used (a whole-skeleton ``bone`` structure). See the module docstring.
    """
    if side not in SIDES:
        raise BadInputError(f"side must be left or right, got {side!r}",
                            action="give the patient side of the pedicle")
    if context.structure(vertebra).role != Role.BONE:
        raise BadInputError(f"{vertebra} is not a bone structure",
                            action="choose a vertebra (role bone)")
    family = family or screw_family()
    sign = SIDES[side]
    geometry = context.geometry
    check_separable(context, vertebra, point_lps)
    mask = vertebra_mask(context, vertebra, point_lps)
    zyx = np.argwhere(mask)
    points = geometry.index_to_lps(zyx[:, ::-1].astype(float))
    values, sub = signed_distance_roi(mask, geometry, margin_mm=4.0)
    sampler = GridSampler(values, sub, np.inf)
    point, direction, _ = best_axis(sampler, pedicle_seed(mask, geometry, points, sign), sign)
    point, direction = refined_axis(sampler, point, direction)
    entry = _exit(sampler, point, -direction)
    anterior = _exit(sampler, point, direction)
    chord = float(np.linalg.norm(anterior - entry))
    width = narrowest_width_mm(sampler, point, direction)
    length = family.length.floor(LENGTH_FRACTION * chord)
    tip = entry + length * direction
    canal = canal_mask(mask, geometry)
    room = room_mm(sampler, canal, _canal_contents(context, canal), geometry, entry, tip)
    if 2.0 * room < family.diameter.minimum:
        raise BadInputError(
            f"the pedicle of {vertebra} on the {side} leaves room for a {2 * room:.1f} mm screw "
            f"{CANAL_MARGIN_MM:.0f} mm from the canal (smallest: {family.diameter.minimum} mm)",
            action="check the vertebra segmentation or place the screw by hand")
    diameter = family.diameter.floor(min(DIAMETER_FRACTION * width, 2.0 * room))
    sunk = seat_depth_mm(sampler, entry, direction, 0.5 * diameter,
                         ENTRY_SKIP_FRACTION * length)
    if sunk > 0.0:
        entry = entry + sunk * direction
        chord -= sunk
        length = family.length.floor(LENGTH_FRACTION * chord)
        tip = entry + length * direction
    check_out_of_canal(mask, geometry, entry, tip, diameter, vertebra)
    return ScrewSuggestion(
        vertebra=vertebra, side=side, diameter_mm=diameter, length_mm=length,
        entry_lps=tuple(entry), tip_lps=tuple(tip), isthmus_lps=tuple(point),
        isthmus_width_mm=width, chord_mm=chord,
        pose=pose_from_axis(entry, tip), screw_id=family.screw_id(diameter, length))


def check_separable(context: SimulationContext, structure: str, point_lps: Any) -> None:
    """Refuse a bone that is not one vertebra: the connected bone of ``structure`` around
    ``point_lps`` (its largest part without a point) spans more than
    :data:`MAX_VERTEBRA_HEIGHT_MM` along S or holds more than :data:`MAX_VERTEBRA_ML`."""
    geometry = context.geometry
    mask = np.asarray(context.mask(structure))
    labels, n = ndimage.label(mask)
    if n == 0:
        raise BadInputError(f"{structure} is empty", action="segment the vertebra first")
    value = 0
    if point_lps is not None:
        seed = np.rint(geometry.lps_to_index(np.asarray(point_lps, float))).astype(int)[::-1]
        value = labels[tuple(np.clip(seed, 0, np.asarray(mask.shape) - 1))]
    if value == 0:
        value = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    part = labels == value
    slices = np.flatnonzero(part.any(axis=(1, 2)))
    ends = geometry.index_to_lps(np.array([[0.0, 0.0, slices[0]], [0.0, 0.0, slices[-1]]]))
    height = float(np.linalg.norm(ends[1] - ends[0])) + float(geometry.spacing_mm[2])
    volume = float(part.sum()) * geometry.voxel_volume_mm3 / 1000.0
    if height > MAX_VERTEBRA_HEIGHT_MM or volume > MAX_VERTEBRA_ML:
        raise BadInputError(
            f"{structure} is not separable into vertebrae: the connected bone there spans "
            f"{height:.0f} mm along S and holds {volume:.0f} ml (one vertebra: under "
            f"{MAX_VERTEBRA_HEIGHT_MM:.0f} mm, {MAX_VERTEBRA_ML:.0f} ml), so a screw cannot "
            "be suggested without guessing the vertebra",
            action="give a vertebra label (one structure per vertebra, e.g. TotalSegmentator "
                   "vertebrae_L3) or place the screw by hand")


def canal_mask(mask: np.ndarray, geometry: Any) -> np.ndarray:
    """The vertebra's spinal canal: the holes its bone encloses in each axial slice (at least
    :data:`MIN_CANAL_AREA_MM2`)."""
    pixel_mm2 = float(geometry.spacing_mm[0] * geometry.spacing_mm[1])
    canal = np.zeros_like(mask, dtype=bool)
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        holes = ndimage.binary_fill_holes(mask[k]) & ~mask[k]
        labels, n = ndimage.label(holes)
        if n:
            sizes = np.bincount(labels.ravel())[1:] * pixel_mm2
            keep = np.flatnonzero(sizes >= MIN_CANAL_AREA_MM2) + 1
            canal[k] = np.isin(labels, keep)
    return canal


def canal_distance_mm(canal: np.ndarray, geometry: Any, points_lps: np.ndarray) -> np.ndarray:
    """Signed distance (mm, < 0 inside) of LPS points to the canal, trilinear between voxel
    centres: the nearest voxel's label would flag points up to half a voxel outside it."""
    values, sub = signed_distance_roi(canal, geometry, margin_mm=4.0)
    return GridSampler(values, sub, np.inf)(points_lps)


def check_out_of_canal(mask: np.ndarray, geometry: Any, entry: np.ndarray, tip: np.ndarray,
                       diameter_mm: float, vertebra: str) -> None:
    """Refuse a suggestion whose screw (a cylinder from ``entry`` to ``tip``, sampled every
    0.5 mm on 3 radii x 12 angles) enters the canal (its interpolated signed distance < 0 at
    a sample point), or when no canal can be found to check it against."""
    canal = canal_mask(mask, geometry)
    if not canal.any():
        raise BadInputError(
            f"cannot find the spinal canal of {vertebra} (no closed vertebral ring in its "
            "axial slices), so the suggestion cannot be checked against it",
            action="check the vertebra segmentation or place the screw by hand")
    axis = tip - entry
    length = float(np.linalg.norm(axis))
    direction = axis / length
    e1, e2 = _perpendiculars(direction)
    r = np.linspace(0.0, 0.5 * diameter_mm, 3)
    angles = np.radians(np.arange(0.0, 360.0, 30.0))
    ring = (r[:, None, None] * (np.cos(angles)[None, :, None] * e1
                                + np.sin(angles)[None, :, None] * e2)).reshape(-1, 3)
    t = np.arange(0.0, length + 0.25, 0.5)
    points = (entry + t[:, None] * direction)[:, None, :] + ring[None]
    hit = canal_distance_mm(canal, geometry, points.reshape(-1, 3)) < 0.0
    if hit.any():
        raise BadInputError(
            f"the suggested screw in {vertebra} would enter the spinal canal "
            f"({int(hit.sum())} of its sample points), so it is not suggested",
            action="check the vertebra segmentation or place the screw by hand")
