"""Spine on CT (HU): the spinal canal and one bone structure per vertebra, named by level.

A STARTING POINT the user checks and corrects (``relabel_levels`` renames the whole column
from one corrected level). Patient axes: the grid's k axis must run along S (axial CT).

1. Canal centre line: in each axial slice, the holes enclosed by bone (>= ``BONE_HU``) of
   30-700 mm2 whose mean is under ``CANAL_HU`` (CSF, cord and fat, not marrow); the one
   nearest the body's midline behind its centre. Slices with an open ring are interpolated
   (median-filtered over 5 slices first).
2. Canal: voxels under ``CANAL_HU``, not bone, within ``CANAL_RADIUS_MM`` of the centre line,
   the 2D component that holds the centre in each slice.
3. Discs: minima of the body centre's mean HU along S (``disc_profile``, a ``DISC_CORE_MM``
   disc 28 mm in front of the canal: the nucleus, ~70-100 HU, is darker than the marrow
   even where osteophytes bridge the front or the marrow is fatty), and each disc's slices.
4. Spine bone: bone in a box around the centre line (+-``HALF_WIDTH_MM`` left-right, from
   ``ANTERIOR_MM`` in front to ``POSTERIOR_MM`` behind), marrow filled per axial slice (the
   holes except the canal; in the body also those of the bone closed in-plane by
   ``MARROW_CLOSE_MM``; not in a disc's slices, where the ring apophysis encloses the
   disc); the islands touching the vertebral-body column.
5. Bodies: the islands of bone in the vertebral-body column (the discs part them, tilted or
   not); an island holding a disc minimum is cut there, one taller than ``MAX_BODY_MM`` also
   at the whole column's minima (``scipy.signal.find_peaks``). Each is one marker.
6. Vertebrae: each body marker grows by its ring round the canal (the spine bone in the middle
   half of its body's slices, in front of the canal centre + ``RING_BACK_MM``: body, pedicles,
   the laminae's roots), so each arch is seeded from its own pedicles; then a marker
   watershed (SimpleITK ``MorphologicalWatershedFromMarkers``) within the spine bone: in the
   body column on the negated HU, so neighbouring bodies meet on the disc along its tilt;
   elsewhere flat, so every other voxel goes to the marker nearest along the bone. Each
   vertebra's own marrow is then filled per slice.
7. Levels: counted up from the sacrum (the lowest segment whose bone at the body's depth is
   wider than ``SACRUM_WIDTH_MM``, the alae) as L5, L4, ... L1, T12, ...; without a sacrum
   in view, from the last rib-bearing vertebra (bone ``RIB_REACH_MM``-``RIB_OUTER_MM`` left
   and right of the canal in its slab, on the whole grid) as T12. With neither, the segments
   are named "vertebra 1".. from the bottom.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage, signal

from surgiplan.errors import BadInputError
from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.processing.crop import bounding_box, pad_box
from surgiplan.segmentation.morphology import fill_holes

if TYPE_CHECKING:
    from surgiplan.segmentation.editor import SegmentEditor
    from surgiplan.twin import Twin

BONE_HU = 180.0
CORTEX_HU = 300.0
PEDICLE_FRONT_MM = 8.0
MAX_BODY_MM = 40.0
MIN_BODY_MM = 8.0
DISC_CORE_MM = 8.0
DISC_PROMINENCE_HU = 50.0
MARROW_CLOSE_MM = 3.0
MARROW_HU = 40.0
BODY_HU = 120.0
CANAL_HU = 90.0
CANAL_RADIUS_MM = 11.0
HALF_WIDTH_MM = 48.0
ANTERIOR_MM = 62.0
POSTERIOR_MM = 55.0
SACRUM_WIDTH_MM = 85.0
RIB_REACH_MM = 58.0
RIB_OUTER_MM = 120.0
RIB_BACK_MM = 35.0
RING_BACK_MM = 6.0
RING_HALF_WIDTH_MM = 30.0
LEVELS = ([f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)]
          + [f"L{i}" for i in range(1, 6)])
METHOD = ("canal from bone-enclosed holes, vertebral bodies between disc minima, each grown "
          "by its pedicle ring, marker watershed (SimpleITK) within the spine bone; levels "
          "counted from the sacrum or the last rib-bearing vertebra")


@dataclass
class SpineResult:
    """The canal, the vertebrae and how their levels were set. The vertebrae are kept as one
    label image over the spine's box (``labels``: 0 none, s + 1 the segment ``names[s]``,
    bottom to top, "S" a sacral one) and put on the full grid only when asked, so a caller
    needing just the canal and the bone (``bone``) builds one full-size mask, not one per
    vertebra."""

    canal: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    box: tuple[slice, slice] = field(repr=False)  # (rows, columns) of ``labels`` on the grid
    names: list[str]
    level_source: str
    quality: str
    discs: list[tuple[int, int]] = field(default_factory=list)  # (first, last) slice of each

    def _full(self, local: np.ndarray) -> np.ndarray:
        out = np.zeros(self.canal.shape, bool)
        out[:, self.box[0], self.box[1]] = local
        return out

    def vertebra_masks(self, without: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Level name -> full-grid mask (bottom to top), less ``without`` (full-grid)."""
        keep = None if without is None else ~without[:, self.box[0], self.box[1]]
        return {name: self._full(self.labels == s + 1 if keep is None
                                 else (self.labels == s + 1) & keep)
                for s, name in enumerate(self.names) if name != "S"}

    @functools.cached_property
    def vertebrae(self) -> dict[str, np.ndarray]:
        """Level name -> full-grid mask, bottom to top."""
        return self.vertebra_masks()

    @property
    def sacrum(self) -> np.ndarray | None:
        sacral = [s + 1 for s, name in enumerate(self.names) if name == "S"]
        return self._full(np.isin(self.labels, sacral)) if sacral else None

    def bone(self) -> np.ndarray:
        """Every vertebra (not the sacrum) as one full-grid mask."""
        sacral = [s + 1 for s, name in enumerate(self.names) if name == "S"]
        return self._full((self.labels > 0) & ~np.isin(self.labels, sacral))


def _axial_check(geometry: ImageGeometry) -> None:
    if abs(float(geometry.direction[2, 2])) < 0.9:
        raise BadInputError("the spine preset needs an axial CT (slices across S)",
                            action="reformat the scan to axial slices first")


def _in_plane() -> np.ndarray:
    """6-connectivity within each axial slice (a 3D structure with no link along k)."""
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return structure


def _canal_points(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray,
                  close_mm: float = 0.0) -> np.ndarray:
    """(nz, 2) canal centre (row j, column i) per slice; NaN where no closed ring is found.
    With ``close_mm`` the bone is first closed in-plane (rings open at the laminae).
    All slices at once: per-slice holes, one in-plane labelling, statistics by bincount."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    out = np.full((image.shape[0], 2), np.nan)
    per_slice = body.sum(axis=2)  # (nz, ny)
    slice_count = np.maximum(per_slice.sum(axis=1), 1)
    body_j = per_slice @ np.arange(image.shape[1]) / slice_count
    body_i = body.sum(axis=1) @ np.arange(image.shape[2]) / slice_count
    # the canal lies behind the body's centre within 60 mm of its mid-line: search there
    centre = np.median(body_i[per_slice.sum(axis=1) > 0]) if body.any() else image.shape[2] / 2
    i0 = int(max(0, centre - 90.0 / sx))
    i1 = int(min(image.shape[2], centre + 90.0 / sx + 1))
    j0 = int(max(0, np.floor(body_j.min()) - 1))
    image, body = image[:, j0:, i0:i1], body[:, j0:, i0:i1]
    body_j, body_i = body_j - j0, body_i - i0
    bone = (image >= BONE_HU) & body
    if close_mm > 0:
        bone = ndimage.binary_closing(bone, structure=_in_plane(),
                                      iterations=max(1, round(close_mm / sx)))
    holes = fill_holes(bone, per_slice_axis=0) & ~bone
    labels, n = ndimage.label(holes, structure=_in_plane())
    if n == 0:
        return out
    size = np.bincount(labels.ravel(), minlength=n + 1) * (sx * sy)
    small = (size >= 30) & (size <= 700)
    small[0] = False
    kk, jj, ii = np.nonzero(small[labels])
    lab = np.searchsorted(np.flatnonzero(small), labels[kk, jj, ii]) + 1
    m = int(small.sum())
    count = np.bincount(lab, minlength=m + 1)[1:].astype(float)
    mean = np.bincount(lab, image[kk, jj, ii].astype(float), m + 1)[1:] / count
    cj = np.bincount(lab, jj, m + 1)[1:] / count
    ci = np.bincount(lab, ii, m + 1)[1:] / count
    ck = np.bincount(lab, kk, m + 1)[1:] // count
    k = ck.astype(int)
    ok = ((mean < CANAL_HU) & (cj > body_j[k])
          & (np.abs(ci - body_i[k]) * sx < 60))
    for slice_k in np.unique(k[ok]):
        pick = np.flatnonzero(ok & (k == slice_k))
        best = pick[np.argmin(np.abs(ci[pick] - body_i[slice_k]))]
        out[slice_k] = (cj[best] + j0, ci[best] + i0)
    return out


def _centre_line(points: np.ndarray) -> np.ndarray:
    """Fill the NaN slices by interpolation after a 5-slice running median (outliers out)."""
    found = np.flatnonzero(~np.isnan(points[:, 0]))
    if len(found) < 3:
        raise BadInputError("no spinal canal found (no closed vertebral ring in the axial "
                            "slices)", action="check that the CT shows the spine")
    line = np.empty_like(points)
    for c in range(2):
        smooth = ndimage.median_filter(points[found, c], size=5, mode="nearest")
        keep = np.abs(points[found, c] - smooth) < 8
        line[:, c] = np.interp(np.arange(len(points)), found[keep], points[found[keep], c])
    return line


def _disc_around(mask_shape: tuple[int, int, int], line: np.ndarray, geometry: ImageGeometry,
                 radius_mm: float) -> np.ndarray:
    """Per-slice discs of ``radius_mm`` around the centre line."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    jj, ii = np.ogrid[:mask_shape[1], :mask_shape[2]]
    out = np.zeros(mask_shape, bool)
    for k in range(mask_shape[0]):
        out[k] = ((jj - line[k, 0]) * sy) ** 2 + ((ii - line[k, 1]) * sx) ** 2 <= radius_mm ** 2
    return out


def canal_mask(image: np.ndarray, geometry: ImageGeometry, line: np.ndarray,
               bone: np.ndarray) -> np.ndarray:
    """The spinal canal around the centre line (see the module docstring, step 2)."""
    near = _disc_around(image.shape, line, geometry, CANAL_RADIUS_MM)
    soft = near & (image < CANAL_HU) & ~bone
    out = np.zeros_like(soft)
    for k in range(image.shape[0]):
        labels, _ = ndimage.label(soft[k])
        j, i = np.rint(line[k]).astype(int)
        value = labels[j, i]
        if value:
            out[k] = labels == value
    return out


def _box(line: np.ndarray, geometry: ImageGeometry, shape: tuple[int, int, int]
         ) -> tuple[slice, slice]:
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    j0 = int(max(0, np.floor(line[:, 0].min() - ANTERIOR_MM / sy)))
    j1 = int(min(shape[1], np.ceil(line[:, 0].max() + POSTERIOR_MM / sy) + 1))
    i0 = int(max(0, np.floor(line[:, 1].min() - HALF_WIDTH_MM / sx)))
    i1 = int(min(shape[2], np.ceil(line[:, 1].max() + HALF_WIDTH_MM / sx) + 1))
    return slice(j0, j1), slice(i0, i1)


def _body_column(shape: tuple[int, int, int], line: np.ndarray, geometry: ImageGeometry,
                 radius_mm: float = 13.0) -> np.ndarray:
    """The vertebral-body column: a ``radius_mm`` disc 28 mm in front of the canal centre."""
    front = line.copy()
    front[:, 0] -= 28.0 / geometry.spacing_mm[1]
    return _disc_around(shape, front, geometry, radius_mm)


def disc_profile(image: np.ndarray, line: np.ndarray, geometry: ImageGeometry,
                 body: np.ndarray) -> np.ndarray:
    """Mean HU per slice (smoothed along S) of the body's centre: a ``DISC_CORE_MM`` disc
    28 mm in front of the canal centre, where a disc's nucleus (~70-100 HU) is darker than
    the marrow above and below even when the anterior rim is bridged by osteophytes."""
    core = _body_column(image.shape, line, geometry, radius_mm=DISC_CORE_MM) & body
    sums = np.where(core, image, 0).astype(np.float64).sum(axis=(1, 2))
    mean = sums / np.maximum(core.sum(axis=(1, 2)), 1)
    return ndimage.gaussian_filter1d(mean, 0.7)


def _disc_slices(profile: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Slice indices of the intervertebral discs: minima of ``disc_profile`` at least
    ``DISC_PROMINENCE_HU`` below the bodies (``scipy.signal.find_peaks``); the profile is
    mirrored at the field's ends so a disc in the first or last slices counts by its rise on
    the one side in view."""
    pad = min(3, len(profile) - 1)
    padded = np.pad(profile, pad, mode="reflect")
    distance = max(2, round(15.0 / geometry.spacing_mm[2]))
    peaks, _ = signal.find_peaks(-padded, distance=distance, prominence=DISC_PROMINENCE_HU)
    peaks = peaks - pad
    return np.unique(peaks[(peaks >= 0) & (peaks < len(profile))])


def _wide_disc_slices(image: np.ndarray, column: np.ndarray,
                      geometry: ImageGeometry) -> np.ndarray:
    """Slice indices of the discs by the whole body column's mean HU along S (minima >= 30 HU
    deep, >= 20 mm apart): finds the thin thoracic discs the body's centre misses on thick
    slices, but an osteophyte-bridged front can move it off the disc, so it only cuts islands
    taller than ``MAX_BODY_MM``."""
    sums = (np.where(column, image, 0).astype(np.float64)).sum(axis=(1, 2))
    mean = sums / np.maximum(column.sum(axis=(1, 2)), 1)
    mean = ndimage.gaussian_filter1d(mean, 0.7)
    distance = max(2, round(20.0 / geometry.spacing_mm[2]))
    peaks, _ = signal.find_peaks(-mean, distance=distance, prominence=30.0)
    return peaks


def _disc_slabs(profile: np.ndarray, discs: np.ndarray) -> np.ndarray:
    """(nz,) bool: the slices of each disc, the run around its minimum darker than halfway
    to the lower of the brightest body slices within 12 slices on either side."""
    out = np.zeros(len(profile), bool)
    for p in discs:
        flanks = [side.max() for side in (profile[max(0, p - 12):p], profile[p + 1:p + 13])
                  if side.size]
        level = 0.5 * (profile[p] + min(flanks))
        run = profile < level
        k = p
        while k >= 0 and run[k]:
            out[k], k = True, k - 1
        k = p + 1
        while k < len(profile) and run[k]:
            out[k], k = True, k + 1
    return out


def _markers(image: np.ndarray, column: np.ndarray, discs: np.ndarray, wide_discs: np.ndarray,
             geometry: ImageGeometry) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Label image of body markers (1..n bottom to top) and each one's slice range.

    The markers are the islands of the body column's bone (opened in-plane, >= 1.5 ml): the
    discs part them even when tilted; an island holding a disc minimum of the body's centre
    (``discs``: bodies bridged by osteophytes, a degenerate disc or partial volume) is cut
    there, and one taller than ``MAX_BODY_MM`` also at the whole column's minima
    (``wide_discs``), keeping the pieces that can be a body (``_is_body``); the watershed
    later moves the cut onto the disc's tilt.
    """
    core = ndimage.binary_opening(column & (image >= BONE_HU), structure=np.ones((1, 3, 3)))
    labels, n = ndimage.label(core)
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * geometry.voxel_volume_mm3 / 1000.0
    parts: list[np.ndarray] = []
    for value in np.flatnonzero(sizes[1:] >= 1.5) + 1:
        part = labels == value
        ks = np.flatnonzero(part.any(axis=(1, 2)))
        tall = (ks[-1] - ks[0] + 1) * geometry.spacing_mm[2] > MAX_BODY_MM
        found = np.union1d(discs, wide_discs) if tall else discs
        cuts = [int(d) for d in found if ks[0] < d < ks[-1]]
        if not cuts:
            parts.append(part)
            continue
        for a, b in zip([ks[0] - 1, *cuts], [*cuts, ks[-1] + 1], strict=True):
            piece = np.zeros_like(part)
            piece[a + 1:b] = part[a + 1:b]
            if _is_body(piece, geometry):
                parts.append(piece)
    parts.sort(key=lambda m: float(np.flatnonzero(m.any(axis=(1, 2))).mean()))
    markers = np.zeros(image.shape, np.int32)
    ranges: list[tuple[int, int]] = []
    for number, part in enumerate(parts, start=1):
        markers[part] = number
        ks = np.flatnonzero(part.any(axis=(1, 2)))
        ranges.append((int(ks[0]), int(ks[-1])))
    return markers, ranges


def _is_body(piece: np.ndarray, geometry: ImageGeometry) -> bool:
    """A piece of the body column's bone is a body marker when it holds >= 1.5 ml and spans
    at least ``MIN_BODY_MM`` along S, or is cut by the field's first or last slice."""
    ks = np.flatnonzero(piece.any(axis=(1, 2)))
    if ks.size == 0 or piece.sum() * geometry.voxel_volume_mm3 < 1500.0:
        return False
    at_edge = ks[0] == 0 or ks[-1] == piece.shape[0] - 1
    return at_edge or (ks[-1] - ks[0] + 1) * geometry.spacing_mm[2] >= MIN_BODY_MM


def _marrow_holes(image: np.ndarray, bone: np.ndarray, canal: np.ndarray) -> np.ndarray:
    """The holes of ``bone`` in each axial slice whose mean is at least ``MARROW_HU`` (marrow,
    not the soft tissue or fat that bone arches enclose), never the canal."""
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = True
    holes = fill_holes(bone, per_slice_axis=0) & ~bone & ~canal
    labels, n = ndimage.label(holes, structure=in_plane)
    if n == 0:
        return holes
    mean = ndimage.mean(image, labels, np.arange(1, n + 1))
    keep = np.concatenate([[False], mean >= MARROW_HU])
    return keep[labels]


def _spine_bone(image: np.ndarray, body: np.ndarray, canal: np.ndarray, column: np.ndarray,
                line: np.ndarray, geometry: ImageGeometry, discs: np.ndarray) -> np.ndarray:
    """Bone in the box: in front of the pedicles only what the cortex (>= ``CORTEX_HU``)
    encloses per slice (so contrast vessels against the body stay out) or >= ``BODY_HU``
    (cancellous bone) within 17 mm of the body column's axis, behind them >= ``BONE_HU``;
    then the marrow: its holes per slice, and in front of the pedicles also the holes of
    that bone closed in-plane by ``MARROW_CLOSE_MM`` (the body's fatty marrow behind a thin
    posterior wall open at the basivertebral foramen; not behind, where closing would fill
    the lateral recesses and move the pedicles' walls); the islands touching the column.
    In the slices of a disc (``discs``, from ``_disc_slabs``) only bone >= ``BONE_HU``
    counts: the ring apophysis there encloses the disc, not marrow."""
    jj = np.arange(image.shape[1])[None, :, None]
    posterior = jj >= (line[:, 0] - PEDICLE_FRONT_MM / geometry.spacing_mm[1])[:, None, None]
    ring = (image >= CORTEX_HU) & body
    cortex = ring | _marrow_holes(image, ring, canal)
    core = _body_column(image.shape, line, geometry, radius_mm=17.0)
    bone = (cortex | ((image >= BONE_HU) & body & posterior)
            | ((image >= BODY_HU) & body & core))
    closed = _closed_in_plane(bone, MARROW_CLOSE_MM, geometry)
    body_marrow = _marrow_holes(image, closed, canal) & (image >= MARROW_HU) & ~posterior
    filled = (bone | _marrow_holes(image, bone, canal) | body_marrow) & ~canal
    filled[discs] = (bone & (image >= BONE_HU) & ~canal)[discs]
    labels, n = ndimage.label(filled)
    if n == 0:
        return filled
    touching = np.unique(labels[column & filled])
    return np.isin(labels, touching[touching > 0])


def _row_width_mm(bone_slab: np.ndarray, j: int, i: int, sx: float) -> float:
    """Width (mm) of the contiguous bone run through column ``i`` of row ``j`` (max over the
    slab's slices)."""
    best = 0
    for row in bone_slab[:, j, :]:
        labels, _ = ndimage.label(row)
        if 0 <= i < len(row) and labels[i]:
            best = max(best, int((labels == labels[i]).sum()))
    return best * sx


def _level_names(image: np.ndarray, body: np.ndarray, ranges: list[tuple[int, int]],
                 line: np.ndarray, geometry: ImageGeometry, wide_bone: np.ndarray,
                 wide_line: np.ndarray) -> tuple[list[str], str, int]:
    """Level names bottom to top, how they were set, and the number of sacral segments
    (``image``, ``body``, ``line``: the spine's box; ``wide_bone``, ``wide_line``: the whole
    grid's bone and centre line, where the ribs reach beyond the box)."""
    sx = geometry.spacing_mm[0]
    full_bone = (image >= BONE_HU) & body
    sacral = 0
    for a, b in ranges:
        k = (a + b) // 2
        j = round(line[k, 0] - 20.0 / geometry.spacing_mm[1])
        slab = fill_holes(full_bone[a:b + 1], per_slice_axis=0)
        if _row_width_mm(slab, j, round(line[k, 1]), sx) >= SACRUM_WIDTH_MM:
            sacral += 1
        else:
            break
    n = len(ranges)
    if sacral:
        names = ["S"] * sacral + [LEVELS[len(LEVELS) - 1 - t] if t < len(LEVELS) else f"V{t}"
                                  for t in range(n - sacral)]
        return names, "sacrum", sacral
    ribbed = [_has_ribs(wide_bone, a, b, wide_line, geometry) for a, b in ranges]
    if any(ribbed):
        last = int(np.flatnonzero(ribbed)[0])  # lowest rib-bearing segment is T12
        t12 = LEVELS.index("T12")
        names = [LEVELS[t12 + (last - s)] if 0 <= t12 + (last - s) < len(LEVELS) else f"V{s + 1}"
                 for s in range(n)]
        return names, "last rib", 0
    return [f"vertebra {s + 1}" for s in range(n)], "none", 0


def _has_ribs(bone: np.ndarray, a: int, b: int, line: np.ndarray, geometry: ImageGeometry
              ) -> bool:
    """Bone ``RIB_REACH_MM`` to ``RIB_OUTER_MM`` left and right of the canal, from 30 mm in
    front of it to ``RIB_BACK_MM`` behind it (the ribs' necks and angles), in the segment's
    middle slices."""
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    hits = 0
    for k in range(a + 1, b):
        j0 = int(max(0, line[k, 0] - 30 / sy))
        j1 = int(min(bone.shape[1], line[k, 0] + RIB_BACK_MM / sy))
        i = line[k, 1]
        lo = int(max(0, i - RIB_OUTER_MM / sx))
        hi = int(min(bone.shape[2], i + RIB_OUTER_MM / sx))
        left = bone[k, j0:j1, int(i + RIB_REACH_MM / sx):hi].any()
        right = bone[k, j0:j1, lo:int(i - RIB_REACH_MM / sx)].any()
        hits += int(left and right)
    return hits >= 1


def _ring_markers(markers: np.ndarray, ranges: list[tuple[int, int]], bone: np.ndarray,
                  line: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Grow each body marker by its ring around the canal: the spine bone in the middle half
    of its body's slices, in front of the canal centre plus ``RING_BACK_MM`` and within
    ``RING_HALF_WIDTH_MM`` of it left-right (body, pedicles, the laminae's roots), the
    connected part touching the body marker. Seeds the arch from its own pedicles, so the
    flooding no longer hands a whole arch to the spinous process above or the sacrum below.
    """
    sx, sy = geometry.spacing_mm[0], geometry.spacing_mm[1]
    jj = np.arange(bone.shape[1])[None, :, None]
    ii = np.arange(bone.shape[2])[None, None, :]
    near = ((jj <= (line[:, 0] + RING_BACK_MM / sy)[:, None, None])
            & (np.abs(ii - line[:, 1][:, None, None]) * sx <= RING_HALF_WIDTH_MM))
    out = markers.copy()
    for number, (a, b) in enumerate(ranges, start=1):
        q = (b - a) / 4.0
        k0, k1 = int(np.ceil(a + q)), int(np.floor(b - q))
        if k1 < k0:
            continue
        slab = np.zeros_like(bone)
        slab[k0:k1 + 1] = bone[k0:k1 + 1] & near[k0:k1 + 1] & (markers[k0:k1 + 1] == 0)
        slab |= markers == number
        labels, _ = ndimage.label(slab)
        keep = np.unique(labels[markers == number])
        grown = np.isin(labels, keep[keep > 0]) & (out == 0)
        out[grown] = number
    return out


def _landscape(image: np.ndarray, mask: np.ndarray, line: np.ndarray,
               geometry: ImageGeometry) -> np.ndarray:
    """Elevation for the watershed: in the body column (``_body_column``) the negated HU
    (Gaussian, 1 voxel) below every other level, so the bodies flood first, brightest bone
    first, and meet where the column is darkest: on the disc, along its tilt; flat (0) on the
    rest of the spine bone, so each arch goes to the marker nearest along the bone; outside
    the bone 1 (reached last)."""
    column = _body_column(image.shape, line, geometry)
    smooth = ndimage.gaussian_filter(image.astype(np.float32), 1.0)
    body_level = -np.clip(smooth, -1000.0, 3000.0) - 4000.0
    return np.where(mask, np.where(column, body_level, 0.0), 1.0).astype(np.float32)


def _watershed(markers: np.ndarray, mask: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Each ``mask`` voxel gets a marker by flooding ``elevation`` from the markers (SimpleITK
    marker watershed; on flat ground, first-in first-out: the marker nearest along the
    mask)."""
    import SimpleITK as sitk

    seeds = np.where(mask, markers, 0).astype(np.uint16)
    out = sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(elevation), sitk.GetImageFromArray(seeds),
        markWatershedLine=False, fullyConnected=False)
    return np.where(mask, sitk.GetArrayFromImage(out), 0)


def _closed_in_plane(mask: np.ndarray, close_mm: float, geometry: ImageGeometry) -> np.ndarray:
    """``mask`` with its in-plane closing by about ``close_mm`` (none below half a voxel)."""
    iterations = round(close_mm / geometry.spacing_mm[0])
    if iterations < 1:
        return mask
    return mask | ndimage.binary_closing(mask, structure=_in_plane(), iterations=iterations)


def _fill_each(labels: np.ndarray, image: np.ndarray, canal: np.ndarray,
               discs: np.ndarray) -> np.ndarray:
    """Each vertebra's marrow: the holes of its own bone per axial slice (voxels >=
    ``MARROW_HU``, never the canal, another vertebra or a disc's slices). Not closed first:
    closing the arch fills the lateral recesses beside the canal, which moves the pedicles'
    inner walls (screw suggest on the abdomen CT lost L1 right and L4 left)."""
    out = labels.copy()
    free = (labels == 0) & ~canal & (image >= MARROW_HU)
    free[discs] = False
    for value in range(1, int(labels.max()) + 1):
        box = bounding_box(labels == value)
        if box is None:
            continue
        box = pad_box(box, (0, 1, 1), labels.shape)
        add = fill_holes(labels[box] == value, per_slice_axis=0) & free[box] & (out[box] == 0)
        out[box][add] = value
    return out


def segment_spine(image: np.ndarray, geometry: ImageGeometry, body: np.ndarray) -> SpineResult:
    """Canal and per-vertebra masks on a CT in HU (see the module docstring)."""
    _axial_check(geometry)
    points = _canal_points(image, geometry, body)
    if np.isfinite(points[:, 0]).sum() < 3:
        points = _canal_points(image, geometry, body, close_mm=3.0)
    line = _centre_line(points)
    rows, cols = _box(line, geometry, image.shape)
    sub = np.ascontiguousarray(image[:, rows, cols])
    sub_body = body[:, rows, cols]
    sub_line = line - np.array([rows.start, cols.start])
    raw_bone = (sub >= BONE_HU) & sub_body
    canal = canal_mask(sub, geometry, sub_line, raw_bone)
    column = _body_column(sub.shape, sub_line, geometry)
    profile = disc_profile(sub, sub_line, geometry, sub_body)
    discs = _disc_slices(profile, geometry)
    slabs = _disc_slabs(profile, discs)
    bone = _spine_bone(sub, sub_body, canal, column, sub_line, geometry, slabs)
    wide = _wide_disc_slices(sub, column & sub_body, geometry)
    markers, ranges = _markers(np.where(sub_body, sub, -1000), column, discs, wide, geometry)
    if not ranges:
        raise BadInputError("no vertebra found between the discs",
                            action="check that the CT shows the spine")
    labels = _watershed(_ring_markers(markers, ranges, bone, sub_line, geometry), bone,
                        _landscape(sub, bone, sub_line, geometry))
    labels = _fill_each(labels, sub, canal, slabs)
    names, source, _sacral = _level_names(sub, sub_body, ranges, sub_line, geometry,
                                          (image >= BONE_HU) & body, line)

    quality = "automatic, unreviewed" + ("" if source != "none" else "; levels unknown")
    canal_full = np.zeros(image.shape, bool)
    canal_full[:, rows, cols] = canal
    runs = ndimage.find_objects(ndimage.label(slabs)[0])
    return SpineResult(canal_full, labels, (rows, cols), names, source, quality,
                       [(r[0].start, r[0].stop - 1) for r in runs])


def relabel_levels(names_bottom_to_top: list[str], index: int, level: str) -> list[str]:
    """New names for a column of vertebrae when the one at ``index`` (0 = lowest) is ``level``:
    every other vertebra shifts with it (the one-click level correction)."""
    if level not in LEVELS:
        raise BadInputError(f"unknown vertebral level {level!r}",
                            action="use a level such as L3 or T12")
    base = LEVELS.index(level) + index
    out = []
    for s in range(len(names_bottom_to_top)):
        t = base - s
        out.append(LEVELS[t] if 0 <= t < len(LEVELS) else f"vertebra {s + 1}")
    return out


def correct_levels(twin: Twin, name: str, level: str, *,
                   editor: SegmentEditor | None = None) -> dict[str, str]:
    """One-click level correction: vertebra ``name`` is ``level``; every bone structure named
    by a level is renamed with it, counted along S (returns old -> new names; with ``editor``
    one undoable step)."""
    column = [s.name for s in twin.segmentation if s.role == Role.BONE and s.name in LEVELS]
    if name not in column:
        raise BadInputError(f"{name!r} is not a vertebra named by level",
                            action="pick a vertebra such as L3")
    sign = float(np.sign(twin.image.geometry.direction[2, 2])) or 1.0
    height = {n: sign * float(np.argwhere(np.asarray(twin.segmentation.mask(n)))[:, 0].mean())
              for n in column}
    column.sort(key=height.__getitem__)  # bottom to top
    new = relabel_levels(column, column.index(name), level)
    renames = {old: fresh for old, fresh in zip(column, new, strict=True) if old != fresh}
    rename = editor.rename_structure if editor is not None else twin.rename_structure

    def apply() -> None:
        for old in renames:  # two passes: the new names may be taken by the old ones
            rename(old, f"{old} (renaming)")
        for old, fresh in renames.items():
            rename(f"{old} (renaming)", _free(fresh, twin))

    if editor is not None:
        with editor.stroke(f"levels: {name} is {level}"):
            apply()
    else:
        apply()
    return renames


def _free(name: str, twin: Twin) -> str:
    n, candidate = 2, name
    while candidate in twin.segmentation.names():
        candidate, n = f"{name} {n}", n + 1
    return candidate
