"""Resection scoring on a prepared organ: volumes, margin, vessels crossing the cut, intervals.

:class:`PreparedResection` gathers once (per organ and target) the organ's voxels (and a band
around them for the boundary uncertainty) with their LPS centres and signed distances; then
:meth:`PreparedResection.score` re-scores any cut in milliseconds (live dragging) and
:meth:`PreparedResection.intervals` adds the Monte Carlo 95 % intervals.

Definitions (LPS mm, millilitres):

* **specimen rule**: ``cut_side`` = organ voxels on the cut's removed side; ``target_margin`` =
  organ voxels within ``margin_mm`` of the target; ``target_margin_on_cut_side`` = both. The
  target's distance is the sub-voxel one of :mod:`.distance` (not the twin's map, which reads
  about 0.4 mm short outside and made a 10 mm margin specimen 8 % too large). Each candidate
  voxel has a boundary value ``g`` (mm, positive inside the specimen region): the cut's side,
  ``margin_mm - d_target``, or the smaller of the two. Volumes count voxel centres with
  ``g > 0`` (voxel volume x count, the same count as the organ's label map).
* ``remnant_pct`` = 100 x remnant / organ volume (the future liver remnant for a liver; the
  organ structure's own voxels: tumours and vessels with labels of their own are not counted).
* ``margin_mm`` is measured on the specimen's boundary, whatever the rule: for every pair of
  6-neighbour voxels with one side removed (specimen organ or removed target voxel) and the
  other in the remnant, the boundary crosses their segment where ``g`` (linear between the two
  centres) is zero; the margin is the least sub-voxel target distance at those crossings, and
  if target voxels stay in the remnant, minus the depth of the deepest one.
* **resection surface** = the cut clipped to the organ region: cut vertices inside the organ or
  inside a structure section that the organ rings on the cut (at least
  :data:`SURROUND_FRACTION` of the section's outline in the organ), of a structure that lies in
  the organ: at least :data:`CONTACT_FRACTION` of its surface borders the organ (a vessel
  running through the liver; not a kidney or the aorta lying against it: 22 % and 23 % on the
  liver phantom, portal veins 88 %, hepatic veins 65 %, IVC 65 %).
* **vessel crossing**: a connected patch of resection-surface vertices inside a critical
  structure. Its diameter is that of the largest disc inscribed in the section: the section's
  outline comes from the structure's sub-voxel distance (zero crossings along the surface's
  edges) and the disc's centre is optimised in the section's plane, so an oblique cut's
  elliptic section still gives the vessel's diameter (its minor axis).
* **uncertainty** (see :meth:`PreparedResection.intervals`).
* **field of view**: a region touching the image's edge may continue beyond it; the metrics
  that depend on it are reported not assessable.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError, cKDTree

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.model.surface import SurfaceMesh
from surgiplan.simulation import SimulationContext
from surgiplan.simulation.uncertainty import interval95, probability95
from surgiplan_resection.cuts import Cut
from surgiplan_resection.distance import (
    MAX_FINE_VOXELS,
    SmoothDistance,
    surface_measure,
    target_distance,
)

RULES = ("auto", "cut_side", "target_margin", "target_margin_on_cut_side")
SURROUND_FRACTION = 0.5  # a section at least half ringed by organ counts as inside the organ
CONTACT_FRACTION = 0.5  # a structure with less of its surface on the organ lies beside it
HOLE_BAND_MM = 15.0  # cut vertices farther than this from the organ are never in it
BAND_SDS = 4.0  # candidate voxels reach this many boundary SDs outside the organ
MAX_MARGIN_MM = 25.0  # the sub-voxel target distance covers this much around the target
SECTION_PAD_MM = 3.0  # a vessel section's sub-voxel distance box reaches this far around it
ELLIPSE_ALLOWANCE_MM = 1.0  # see _inscribed_disc
NOISE_BAND_MM = 0.5  # margin crossings this close to the least are averaged locally
LOCAL_MEAN_MM = 1.5  # over this radius
CACHE_ENTRIES = 4  # sub-voxel distances and surface measures kept between runs

_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


def _fingerprint(mask: np.ndarray, geometry) -> tuple:
    """A key for a mask's content on its grid (a digest of its packed bits and the grid)."""
    digest = hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
    return (digest, mask.shape, tuple(geometry.origin_lps), tuple(geometry.spacing_mm),
            tuple(np.asarray(geometry.direction, float).ravel()))


def clear_cache() -> None:
    """Forget the kept sub-voxel distances and surface measures (e.g. for a cold timing)."""
    with _cache_lock:
        _cache.clear()


def _cached(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, kept for the next run with the same ``key`` (the :data:`CACHE_ENTRIES`
    most recent ones): a run after an adjustment reuses the target's sub-voxel distance and
    the organ's surface measure (seconds each on an abdominal CT) while their masks are the
    same."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = make()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return value


@dataclass(frozen=True)
class VesselCrossing:
    """A critical structure cut through on the resection surface (``in_field`` False: its
    section reaches the image's edge, the diameter is not assessable)."""

    structure: str
    diameter_mm: float
    point_lps: tuple[float, float, float]
    n_vertices: int
    in_field: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"structure": self.structure, "diameter_mm": self.diameter_mm,
                "point_lps": list(self.point_lps), "n_vertices": self.n_vertices,
                "in_field": self.in_field}


@dataclass
class ResectionScore:
    """One nominal scoring of a resection (no intervals)."""

    rule: str
    organ: str
    target: str | None
    voxel_ml: float
    organ_voxels: int
    resected_voxels: int
    margin_mm: float
    margin_point_lps: tuple[float, float, float] | None
    target_resected_pct: float | None
    crossings: list[VesselCrossing]
    cut_distance_mm: dict[str, float]  # critical structure -> min signed distance on the cut
    surface: SurfaceMesh  # the resection surface (cut clipped to the organ region)
    surface_margin_mm: np.ndarray  # per vertex of ``surface``: target signed distance (mm)
    region: np.ndarray = field(repr=False)  # planned specimen region over the candidates
    critical_margin_mm: dict[str, float] = field(default_factory=dict)  # safety margins
    boundary: np.ndarray = field(default=None, repr=False)  # g per candidate (mm)
    cut: Any = field(default=None, repr=False)
    margin_rule: float = 0.0  # the margin of a target-margin rule (mm)
    not_assessable: dict[str, str] = field(default_factory=dict)  # group -> reason

    @property
    def organ_volume_ml(self) -> float:
        return self.organ_voxels * self.voxel_ml

    @property
    def resected_volume_ml(self) -> float:
        return self.resected_voxels * self.voxel_ml

    @property
    def remnant_volume_ml(self) -> float:
        return (self.organ_voxels - self.resected_voxels) * self.voxel_ml

    @property
    def remnant_pct(self) -> float:
        return 100.0 * (self.organ_voxels - self.resected_voxels) / self.organ_voxels


@dataclass(frozen=True)
class Intervals:
    """Monte Carlo draws of the main metrics (arrays of length ``samples``) and the model."""

    resected_ml: np.ndarray
    remnant_ml: np.ndarray
    organ_ml: np.ndarray
    remnant_pct: np.ndarray
    margin_mm: np.ndarray | None
    diameters_mm: dict[str, np.ndarray]
    model: dict[str, Any] = field(default_factory=dict)

    def ci(self, name: str) -> tuple[float, float]:
        return interval95(getattr(self, name))

    def probability_below(self, name: str, threshold: float) -> tuple[float, tuple[float, float]]:
        return probability95(getattr(self, name) < threshold)


def resolve_rule(rule: str, *, has_cut: bool, has_target: bool) -> str:
    """The specimen rule to apply (``auto``: the cut side if there is a cut, else the margin)."""
    if rule not in RULES:
        raise BadInputError(f"unknown specimen rule {rule!r}", action=f"use one of {RULES}")
    if rule == "auto":
        rule = "cut_side" if has_cut else "target_margin"
    if "cut" in rule and not has_cut:
        raise BadInputError(f"the specimen rule {rule} needs a cutting surface",
                            action="give a plane or cutting surface, or use target_margin")
    if "target" in rule and not has_target:
        raise BadInputError(f"the specimen rule {rule} needs a target structure",
                            action="give --target, or use the cut_side rule")
    return rule


def role_problem(context: SimulationContext, organ: str | None,
                 target: str | None) -> str | None:
    """Why the named organ/target cannot be resected as such (wrong role), or None."""
    for name, role, what in ((organ, Role.ORGAN, "organ"), (target, Role.TARGET, "target")):
        if name is None or name not in {s.name for s in context.structures}:
            continue
        actual = context.structure(name).role
        if Role(actual) is not role:
            have = [s.name for s in context.by_role(role)] or ["none"]
            return (f"{name!r} has the role {Role(actual)}, not {role}: it cannot be resected "
                    f"as the {what} (structures with the role {role}: {', '.join(have)}); "
                    f"name one of those, or give {name!r} the role {role} in the twin")
    return None


def choose_organ(context: SimulationContext, organ: str | None, target: str | None) -> str:
    """The organ to resect from: the named one, the only organ-role one, or the one nearest the
    target (smallest signed distance at the target's voxels). The organ must have the role
    organ and the target the role target (``BadInputError`` otherwise)."""
    names = [s.name for s in context.structures]
    for name, what in ((organ, "organ"), (target, "target")):
        if name is not None and name not in names:
            raise BadInputError(f"the case has no structure named {name!r} (the {what}); it has "
                                f"{', '.join(names)}", action="use one of the structure names")
    problem = role_problem(context, organ, target)
    if problem is not None:
        raise BadInputError(problem)
    if organ is not None:
        return organ
    organs = [s.name for s in context.by_role(Role.ORGAN)]
    if not organs:
        raise BadInputError("no structure has the role organ",
                            action="name the organ with --organ STRUCTURE")
    if len(organs) == 1 or target is None:
        return organs[0]
    idx = np.flatnonzero(context.mask(target).reshape(-1))[::50]
    return min(organs, key=lambda o: float(np.median(context.distance_map(o).reshape(-1)[idx])))


def _edge_touch(ijk_zyx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True for voxels on the image's first or last index along any axis."""
    return np.any((ijk_zyx == 0) | (ijk_zyx == np.asarray(shape) - 1), axis=1)


class PreparedResection:
    """An organ (and optional target) ready for fast re-scoring of cuts.

    ``band_mm``: how far outside the organ voxels are kept for the boundary uncertainty.
    """

    def __init__(self, context: SimulationContext, organ: str, target: str | None = None, *,
                 band_mm: float = 6.0) -> None:
        self.context, self.organ, self.target = context, organ, target
        self.geometry = context.geometry
        self.voxel_ml = self.geometry.voxel_volume_mm3 / 1000.0
        spacing = np.asarray(self.geometry.spacing_mm, float)
        self.h_max, self.h_min = float(spacing.max()), float(spacing.min())
        mask = context.mask(organ)
        if not mask.any():
            raise BadInputError(f"the organ {organ!r} has no voxels",
                                action="segment the organ first")
        # the organ's region-of-interest map holds every voxel nearer than its margin (>= the
        # band), so no full-grid map is needed
        roi = context.distance_roi(organ)
        if roi.margin_mm < band_mm:
            raise ValueError(f"band_mm {band_mm} exceeds the distance ROI margin {roi.margin_mm}")
        wanted = mask.copy()
        wanted[roi.region] |= roi.values < band_mm
        target_mask = None
        if target is not None:
            target_mask = context.mask(target)
            if not target_mask.any():
                raise BadInputError(f"the target {target!r} has no voxels",
                                    action="segment the target first")
            wanted = wanted | target_mask
        self.index = np.flatnonzero(wanted.reshape(-1))
        self.ijk_zyx = np.stack(np.unravel_index(self.index, mask.shape), 1)
        self.points = self.geometry.index_to_lps(self.ijk_zyx[:, ::-1])
        self.at_edge = _edge_touch(self.ijk_zyx, mask.shape)
        local = (self.ijk_zyx - [r.start for r in roi.region]).T
        self.sdf_organ = roi.values[local[0], local[1], local[2]].astype(np.float32)
        self.nominal = mask.reshape(-1)[self.index]
        self.organ_voxels = int(np.count_nonzero(self.nominal))
        self.organ_at_edge = bool(np.any(self.nominal & self.at_edge))
        inside = self.points[self.nominal]
        self.bounds_lps = np.stack([inside.min(0), inside.max(0)]).astype(float)
        self.target_distance = None
        self.sdf_target = np.full(len(self.index), np.inf)
        self.is_target = np.zeros(len(self.index), dtype=bool)
        self.target_at_edge = False
        if target is not None:
            far_mm = MAX_MARGIN_MM + band_mm
            self.target_distance = _cached(
                ("target", far_mm, *_fingerprint(target_mask, self.geometry)),
                lambda: target_distance(target_mask, self.geometry, far_mm=far_mm))
            fine = self.target_distance(self.points)
            coarse = self._map_at_candidates(target)
            self.sdf_target = np.where(np.isfinite(fine), fine, coarse)
            self.is_target = target_mask.reshape(-1)[self.index]
            self.target_at_edge = bool(np.any(self.is_target & self.at_edge))
        self.critical = [s.name for s in context.by_role(Role.CRITICAL)
                         if s.name not in (organ, target)]
        self._near_box_lps = self._organ_box_lps(HOLE_BAND_MM + self.h_max / 2.0)
        self._near_maps: dict[str, Any] = {}
        self._organ_band: tuple[np.ndarray, np.ndarray] | None = None
        self._contact: dict[str, float] = {}

    def _map_at_candidates(self, name: str) -> np.ndarray:
        """The twin's signed distance map of ``name`` (mm) at the candidate voxels, read from
        its region-of-interest map over the candidates' box (the full map's values there,
        without a full-grid map)."""
        lo, hi = self.ijk_zyx.min(0), self.ijk_zyx.max(0) + 1
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        values = self.context.distance_in_box(name, box)
        local = (self.ijk_zyx - lo).T
        return values[local[0], local[1], local[2]].astype(float)

    def _organ_box_lps(self, pad_mm: float) -> np.ndarray:
        """The 8 LPS corners of the organ voxels' box padded by ``pad_mm`` and two voxels
        (the trilinear stencil), clipped to the grid."""
        zyx = self.ijk_zyx[self.nominal]
        pad = np.ceil(pad_mm / np.asarray(self.geometry.spacing_mm[::-1], float)) + 2
        lo = np.maximum(zyx.min(0) - pad, 0)
        hi = np.minimum(zyx.max(0) + pad, np.asarray(self.geometry.shape_zyx) - 1)
        corners = np.array([[(lo, hi)[c][a] for a, c in enumerate(bits)]
                            for bits in np.ndindex(2, 2, 2)], float)
        return self.geometry.index_to_lps(corners[:, ::-1])

    def _near_distance(self, name: str, points_lps: np.ndarray) -> np.ndarray:
        """Signed distance (mm, + outside) of LPS points to ``name``: the twin's map's values
        wherever the organ's map reads below :data:`HOLE_BAND_MM` (its region-of-interest map
        grown to the organ's box padded by that band; no full-grid map), a lower bound
        beyond (see ``RoiDistanceMap.sample``)."""
        roi = self._near_maps.get(name)
        if roi is None:  # kept here: the twin's cache may drop maps this size between calls
            roi = self._near_maps[name] = self.context.distance_roi(
                name, covering_lps=self._near_box_lps)
        return roi.sample(points_lps)

    # ------------------------------------------------------------------ nominal scoring
    def boundary_value(self, cut: Cut | None, rule: str, margin_mm: float) -> np.ndarray:
        """``g`` (mm) over the candidate voxels: positive inside the planned specimen region."""
        g = np.full(len(self.index), np.inf)
        if "cut" in rule:
            g = np.minimum(g, cut.side_mm(self.points))
        if "target" in rule:
            g = np.minimum(g, margin_mm - self.sdf_target)
        return g

    def region(self, cut: Cut | None, rule: str, margin_mm: float) -> np.ndarray:
        """The planned specimen region over the candidate voxels (bool)."""
        return self.boundary_value(cut, rule, margin_mm) > 0

    def score(self, cut: Cut | None, *, rule: str = "auto", margin_mm: float = 0.0,
              surface_spacing_mm: float = 1.0, min_diameter_mm: float = 1.0,
              quick: bool = False) -> ResectionScore:
        """Score one resection (nominal values; tens of milliseconds for a plane on a liver).
        ``quick``: a cut vessel's diameter is its section's equal-area circle on the surface
        grid (for drag frames) instead of the sub-voxel inscribed disc (~0.1-1 s a vessel)."""
        rule = resolve_rule(rule, has_cut=cut is not None, has_target=self.target is not None)
        g = self.boundary_value(cut, rule, margin_mm)
        region = g > 0
        resected = int(np.count_nonzero(region & self.nominal))
        surface = _empty_mesh()
        values = np.zeros(0)
        crossings: list[VesselCrossing] = []
        distances: dict[str, float] = {}
        if cut is not None:
            mesh = cut.surface_mesh(self.bounds_lps, spacing_mm=surface_spacing_mm)
            surface, values, crossings, distances = self._surface(
                mesh, min_diameter_mm, quick_spacing_mm=surface_spacing_mm if quick else None)
        margin, point, resected_pct = self._margin(g, region)
        margins = {s.name: s.margin_mm for s in self.context.structures
                   if s.name in distances}
        score = ResectionScore(rule, self.organ, self.target, self.voxel_ml, self.organ_voxels,
                               resected, margin, point, resected_pct, crossings, distances,
                               surface, values, region, margins, g, cut,
                               float(margin_mm) if "target" in rule else 0.0)
        score.not_assessable = self._field_of_view(score)
        return score

    def _field_of_view(self, score: ResectionScore) -> dict[str, str]:
        """Metric groups whose regions reach the image's edge, with the reason."""
        out = {}
        edge = "reaches the edge of the image and may continue beyond it (thin field of view)"
        if self.organ_at_edge:
            out["organ"] = f"{self.organ} {edge}: its total and remnant volumes are unknown"
        if np.any(score.region & self.nominal & self.at_edge):
            out["specimen"] = f"the specimen of {self.organ} {edge}"
        reach = max(score.margin_rule, 0.0) + self.h_max
        if self.target is not None and self.target_at_edge:
            out["margin"] = f"the target {self.target} {edge}"
        elif self.target is not None and np.any(self.at_edge & (self.sdf_target <= reach)):
            out["margin"] = (f"the tissue within {reach:g} mm of {self.target} {edge}: the "
                             "specimen's boundary may come closer beyond it")
        elif self.target is not None and not math.isfinite(score.margin_mm):
            out["margin"] = ("the specimen shares no boundary with the remnant (nothing or all "
                             f"of {self.organ} removed)")
        return out

    def _margin(self, g: np.ndarray, region: np.ndarray):
        """(margin mm, its point, % of the target's voxels in the specimen), see the module
        docstring; (NaN, None, None) without a target."""
        if self.target is None:
            return math.nan, None, None
        removed = region & (self.nominal | self.is_target)
        remnant = ~region & self.nominal
        near = np.flatnonzero(removed & (g < 2.0 * self.h_max + 1.0))
        a, b = self._neighbour_pairs(near, remnant)
        margin, point = math.inf, None
        if a.size:
            t = (g[a] / (g[a] - g[b]))[:, None]
            crossings = self.points[a] + t * (self.points[b] - self.points[a])
            values = self.target_distance(crossings)
            far = ~np.isfinite(values)
            if far.any():
                values[far] = self.context.signed_distance_mm(self.target, crossings[far])
            values = _local_mean_near_min(crossings, values)
            k = int(np.argmin(values))
            margin, point = float(values[k]), tuple(float(x) for x in crossings[k])
        left = self.is_target & ~region
        if left.any():
            k = int(np.argmin(np.where(left, self.sdf_target, np.inf)))
            if self.sdf_target[k] < margin:
                margin = float(self.sdf_target[k])
                point = tuple(float(x) for x in self.points[k])
        return margin, point, 100.0 * (1.0 - left.sum() / self.is_target.sum())

    def _neighbour_pairs(self, near: np.ndarray, remnant: np.ndarray):
        """Candidate positions (a in ``near``, b in ``remnant``) of 6-neighbour voxel pairs."""
        shape = np.asarray(self.geometry.shape_zyx)
        strides = (shape[1] * shape[2], shape[2], 1)
        a_out, b_out = [], []
        for axis in range(3):
            for step in (-1, 1):
                coord = self.ijk_zyx[near, axis] + step
                ok = (coord >= 0) & (coord < shape[axis])
                flat = self.index[near[ok]] + step * strides[axis]
                pos = np.minimum(np.searchsorted(self.index, flat), len(self.index) - 1)
                hit = (self.index[pos] == flat) & remnant[pos]
                a_out.append(near[ok][hit])
                b_out.append(pos[hit])
        return np.concatenate(a_out), np.concatenate(b_out)

    def _surface(self, mesh: SurfaceMesh, min_diameter_mm: float, *,
                 quick_spacing_mm: float | None = None):
        """Clip the cut to the organ region; margin values, crossings, clearances on it
        (``quick_spacing_mm``: the grid spacing for quick crossing diameters, see score)."""
        verts = mesh.vertices_lps
        # region-of-interest maps over the organ's box padded by the band: the values of the
        # full-grid maps at every vertex used (the organ's lower bound beyond is > the band)
        d_all = self._near_distance(self.organ, verts)
        near = np.flatnonzero(d_all < HOLE_BAND_MM)
        d_organ = d_all[near]
        inner = self.critical + ([self.target] if self.target else [])
        d_inner = {n: self._near_distance(n, verts[near]) for n in inner}
        adjacency = _adjacency(mesh.faces, near, len(verts))
        in_organ = d_organ <= 0
        in_region = in_organ.copy()
        patches: dict[str, list[np.ndarray]] = {}
        for name, d in d_inner.items():
            lies_in = name == self.target or self.contact_fraction(name) >= CONTACT_FRACTION
            patches[name] = _surrounded_patches(adjacency, d < 0, in_organ) if lies_in else []
            for patch in patches[name]:
                in_region[patch] = True
        crossings, distances = [], {}
        local_verts = verts[near]
        for name in self.critical:
            d = d_inner[name]
            distances[name] = float(d[in_region].min()) if in_region.any() else math.inf
            for patch in patches[name]:
                crossing = (self._crossing(name, adjacency, local_verts, patch)
                            if quick_spacing_mm is None else
                            self._quick_crossing(name, local_verts, patch, d, quick_spacing_mm))
                if crossing.diameter_mm >= min_diameter_mm or not crossing.in_field:
                    crossings.append(crossing)
        surface = _clip(mesh, near[in_region])
        values = (self.target_distance(surface.vertices_lps) if self.target
                  else np.full(len(surface.vertices_lps), np.nan))
        values = np.where(np.isfinite(values), values, np.nan)
        crossings.sort(key=lambda c: -c.diameter_mm)
        return surface, values, crossings, distances

    def contact_fraction(self, name: str) -> float:
        """Share of a structure's outer voxel layer within two voxels of the organ (cached)."""
        if name not in self._contact:
            # region-of-interest maps: the shell is within the structure's region; the organ's
            # map beyond its region is > its margin (> 2 voxels), read as its lower bound there
            roi = self.context.distance_roi(name)
            shell = (roi.values > -self.h_max) & self.context.mask_in_box(name, roi.region)
            zyx = np.argwhere(shell) + [r.start for r in roi.region]
            points = self.geometry.index_to_lps(zyx[:, ::-1].astype(float))
            near = self.context.distance_roi(self.organ).sample(points) <= 2.0 * self.h_max
            self._contact[name] = float(near.mean()) if near.size else 0.0
        return self._contact[name]

    def _quick_crossing(self, name: str, verts: np.ndarray, patch: np.ndarray,
                        d: np.ndarray, spacing_mm: float) -> VesselCrossing:
        """A vessel section's equal-area circle: each grid vertex of the patch stands for
        ``spacing_mm**2`` of the surface (coarse; the drag frames' live score only)."""
        area = len(patch) * spacing_mm ** 2
        ijk = self.geometry.lps_to_index(verts[patch])
        in_field = bool(np.all(ijk >= 0.5) and
                        np.all(ijk <= np.asarray(self.geometry.size) - 1.5))
        start = verts[patch[int(np.argmin(d[patch]))]]
        return VesselCrossing(name, 2.0 * math.sqrt(area / math.pi),
                              tuple(float(x) for x in start), len(patch), in_field)

    def _crossing(self, name: str, adjacency, verts: np.ndarray,
                  patch: np.ndarray) -> VesselCrossing:
        """The vessel section of one patch: its inscribed-disc diameter (sub-voxel outline)."""
        ring = _grow(adjacency, patch, 3)
        ijk = self.geometry.lps_to_index(verts[ring])[:, ::-1]
        pad = np.ceil(SECTION_PAD_MM / np.asarray(self.geometry.spacing_mm[::-1])) + 1
        lo = np.floor(ijk.min(0) - pad).astype(int)
        hi = np.ceil(ijk.max(0) + pad).astype(int) + 1
        shape = np.asarray(self.geometry.shape_zyx)
        in_field = bool(np.all(lo >= 0) and np.all(hi <= shape))
        distance = SmoothDistance(self.context.mask(name), self.geometry, pad_mm=0.0,
                                  step_mm=min(0.25, self.h_min / 2), box_zyx=(lo, hi))
        d = np.full(len(verts), np.inf)
        d[ring] = distance(verts[ring])
        sub = adjacency[ring][:, ring]
        outline = _zero_crossings(sub, verts[ring], d[ring])
        inside = patch[np.isfinite(d[patch]) & (d[patch] < 0)]
        start = verts[inside[int(np.argmin(d[inside]))]] if inside.size else verts[patch[0]]
        if len(outline) < 3:
            return VesselCrossing(name, 0.0, tuple(float(x) for x in start), len(patch),
                                  in_field)
        radius, centre = _inscribed_disc(outline, start, distance)
        return VesselCrossing(name, 2.0 * radius, tuple(float(x) for x in centre), len(patch),
                              in_field)

    # ------------------------------------------------------------------ uncertainty
    def organ_band(self) -> tuple[np.ndarray, np.ndarray]:
        """The organ's surface as weighted points (LPS mm, mm2; cached), see
        :func:`~.distance.surface_measure` (a triangle mesh of the staircase reads 7 % large
        on the liver phantom)."""
        if self._organ_band is None:
            mask = self.context.mask(self.organ)
            step = _step_for(mask, self.geometry, self.h_min)
            self._organ_band = _cached(
                ("band", step, *_fingerprint(mask, self.geometry)),
                lambda: surface_measure(mask, self.geometry, step_mm=step))
        return self._organ_band

    def boundary_areas(self, score: ResectionScore) -> tuple[float, float, float]:
        """(organ surface, organ surface inside the specimen region, specimen boundary inside
        the organ), mm2. The last one from the count of organ voxels with ``|g| < h`` (h the
        largest spacing): that slab holds 2 h x area."""
        points, weights = self.organ_band()
        g = np.full(len(points), np.inf)
        if score.cut is not None and "cut" in score.rule:
            g = np.minimum(g, score.cut.side_mm(points))
        if "target" in score.rule:
            g = np.minimum(g, score.margin_rule - self.target_distance(points))
        slab = np.count_nonzero(self.nominal & (np.abs(score.boundary) < self.h_max))
        return (float(weights.sum()), float(weights[g > 0].sum()),
                slab * self.geometry.voxel_volume_mm3 / (2.0 * self.h_max))

    def intervals(self, score: ResectionScore, *, sd_mm: float, samples: int, seed: int,
                  cut_sd_mm: float = 0.0) -> Intervals:
        """Monte Carlo draws of every metric under the stated error model (first order in the
        offsets: a boundary moved by ``e`` along its normal changes a volume by area x e).

        Sources, independent per draw: the organ's boundary (all of it, one offset ``e_o``, SD
        ``sd_mm``: fully correlated, the widest case for volumes), the target's boundary
        (``e_t``, SD ``sd_mm``), each crossed vessel's boundary (``e_v``, SD ``sd_mm``), the
        transection's placement along its normal (``e_c``, SD ``cut_sd_mm``, positive removes
        more), and discretisation: the specimen boundary's position within a voxel
        (uniform over the voxel's thickness across the boundary) and the label boundary's
        (uniform over half the smallest spacing either way, for margin and diameters).
        organ = V_o + A_o e_o; resected = V_r + A_s e_o + S (e_c + u); margin = m + e_c - e_t +
        u_m; diameter = D + 2 e_v + u_d.
        """
        rng = np.random.default_rng(seed)
        n = int(samples)
        e_o, e_t = rng.normal(0.0, sd_mm, n), rng.normal(0.0, sd_mm, n)
        e_c = rng.normal(0.0, cut_sd_mm, n)
        thickness = self._slab_thickness(score)
        u = rng.uniform(-0.5, 0.5, n) * thickness
        u_m = rng.uniform(-0.5, 0.5, n) * self.h_min
        area_o, area_s, section = self.boundary_areas(score)
        organ = score.organ_volume_ml + area_o * e_o / 1000.0
        resected = score.resected_volume_ml + (area_s * e_o + section * (e_c + u)) / 1000.0
        resected = np.clip(resected, 0.0, organ)
        margin = None
        if self.target is not None and math.isfinite(score.margin_mm):
            margin = score.margin_mm + e_c - e_t + u_m
        diameters = {}
        for name in sorted({c.structure for c in score.crossings if c.in_field}):
            widest = max(c.diameter_mm for c in score.crossings if c.structure == name)
            diameters[name] = np.maximum(widest + 2.0 * rng.normal(0.0, sd_mm, n)
                                         + rng.uniform(-0.5, 0.5, n) * self.h_min, 0.0)
        model = {"boundary_sd_mm": sd_mm, "cut_sd_mm": cut_sd_mm, "samples": n, "seed": seed,
                 "organ_surface_mm2": area_o, "specimen_organ_surface_mm2": area_s,
                 "specimen_boundary_mm2": section, "boundary_voxel_thickness_mm": thickness}
        return Intervals(resected, organ - resected, organ,
                         100.0 * (organ - resected) / organ, margin, diameters, model)

    def _slab_thickness(self, score: ResectionScore) -> float:
        """A voxel's thickness (mm) across the specimen boundary: voxel volume / its
        projected area along a plane cut's normal; the cube root of the voxel volume else."""
        cut = score.cut
        spacing = np.asarray(self.geometry.spacing_mm, float)
        if score.rule == "cut_side" and hasattr(cut, "normal_lps"):
            n = np.abs(self.geometry.direction.T @ np.asarray(cut.normal_lps, float))
            projected = n @ (np.prod(spacing) / spacing)
            return float(np.prod(spacing) / projected)
        return float(np.prod(spacing) ** (1.0 / 3.0))

    # ------------------------------------------------------------------ masks
    def masks(self, score: ResectionScore) -> tuple[np.ndarray, np.ndarray]:
        """Full-grid boolean (specimen, remnant) masks of the organ for this score."""
        shape = self.geometry.shape_zyx
        specimen = np.zeros(int(np.prod(shape)), dtype=bool)
        specimen[self.index[score.region & self.nominal]] = True
        remnant = np.zeros_like(specimen)
        remnant[self.index[~score.region & self.nominal]] = True
        return specimen.reshape(shape), remnant.reshape(shape)


def _local_mean_near_min(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with those within :data:`NOISE_BAND_MM` of the least replaced by their mean
    over the crossings within :data:`LOCAL_MEAN_MM` (the least of noisy sub-voxel distances
    reads low: by 0.1-0.2 mm on the liver phantom; the distance's curvature over that radius
    adds a few hundredths)."""
    low = np.flatnonzero(values <= values.min() + NOISE_BAND_MM)
    if low.size < 2:
        return values
    tree = cKDTree(points)
    out = values.copy()
    for k, near in zip(low, tree.query_ball_point(points[low], LOCAL_MEAN_MM), strict=True):
        out[k] = float(np.mean(values[near]))
    return out


def _step_for(mask: np.ndarray, geometry, wanted_mm: float) -> float:
    """``wanted_mm`` or the step keeping the mask's box within the fine-grid budget."""
    found = np.argwhere(mask)
    extent = (found.max(0) - found.min(0) + 1) * np.asarray(geometry.spacing_mm[::-1]) + 8
    return max(wanted_mm, float(np.prod(extent) / MAX_FINE_VOXELS) ** (1 / 3))


def _inscribed_disc(outline: np.ndarray, start: np.ndarray, distance) -> tuple[float, np.ndarray]:
    """(radius, centre) of the largest disc in the section's plane (best fit to ``outline``)
    centred inside the structure and the outline's hull (a section the outline does not
    close, a vessel grazed along its length, cannot grow a disc beyond it) and clear of every
    outline point, searched from ``start``.

    The outline's points scatter around the true outline (label staircase), so the disc
    touching the innermost ones reads low (0.37 mm on the diameter on average, measured on the
    liver phantom's vessels). When a least-squares ellipse fits the outline with a minor
    semi-axis between that radius and :data:`ELLIPSE_ALLOWANCE_MM` more (an elliptic section, as
    an oblique cut through a tube gives), the minor semi-axis is the radius; an irregular
    section (a branching) keeps the disc."""
    centre0 = outline.mean(axis=0)
    axes = np.linalg.svd(outline - centre0, full_matrices=False)[2][:2]
    tree = cKDTree(outline)
    try:
        hull = Delaunay((outline - centre0) @ axes.T)
    except QhullError:
        return 0.0, centre0

    def at(xy: np.ndarray) -> np.ndarray:
        return centre0 + xy[0] * axes[0] + xy[1] * axes[1]

    def cost(xy: np.ndarray) -> float:
        point = at(xy)
        clear = float(tree.query(point)[0])
        inside = float(distance(point[None])[0]) < 0 and hull.find_simplex(xy) >= 0
        return -clear if inside else clear

    x0 = axes @ (start - centre0)
    best = minimize(cost, x0, method="Nelder-Mead", options={"xatol": 0.005, "fatol": 0.001})
    xy = best.x if best.fun < cost(x0) else x0
    radius = max(0.0, -cost(xy))
    fit = _ellipse_semi_axes((outline - centre0) @ axes.T)
    if fit is not None and radius <= fit[1] <= radius + ELLIPSE_ALLOWANCE_MM:
        radius = fit[1]
    return radius, at(xy)


def _ellipse_semi_axes(xy: np.ndarray) -> tuple[float, float] | None:
    """(a, b) semi-axes (a >= b) of the least-squares ellipse through 2-D points (Halir & Flusser's
    stable form of Fitzgibbon's direct fit), or None if the points fit no ellipse."""
    centre = xy.mean(0)
    scale = float(np.sqrt(((xy - centre) ** 2).sum(1).mean())) or 1.0
    x, y = ((xy - centre) / scale).T
    d1 = np.stack([x * x, x * y, y * y], 1)
    d2 = np.stack([x, y, np.ones_like(x)], 1)
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    try:
        t = -np.linalg.solve(s3, s2.T)
    except np.linalg.LinAlgError:
        return None
    m = s1 + s2 @ t
    m = np.stack([m[2] / 2, -m[1], m[0] / 2])
    vectors = np.linalg.eig(m)[1]
    vectors = np.real(vectors)
    ok = 4 * vectors[0] * vectors[2] - vectors[1] ** 2 > 0
    if not ok.any():
        return None
    a1 = vectors[:, np.flatnonzero(ok)[0]]
    ca, cb, cc = a1
    cd, ce, cf = t @ a1
    den = cb * cb - 4 * ca * cc
    num = 2 * (ca * ce * ce + cc * cd * cd - cb * cd * ce + den * cf)
    root = np.sqrt((ca - cc) ** 2 + cb * cb)
    axes = [-np.sqrt(num * (ca + cc + s * root) + 0j) / den for s in (1, -1)]
    if any(abs(np.imag(v)) > 1e-9 or not np.isfinite(np.real(v)) for v in axes):
        return None
    a, b = sorted((abs(float(np.real(v))) * scale for v in axes), reverse=True)
    return a, b


def _grow(adjacency, seeds: np.ndarray, rings: int) -> np.ndarray:
    """``seeds`` and every vertex within ``rings`` edges of them (sorted indices)."""
    mark = np.zeros(adjacency.shape[0], dtype=bool)
    mark[seeds] = True
    for _ in range(rings):
        mark |= (adjacency @ mark.astype(np.int8)) > 0
    return np.flatnonzero(mark)


def _empty_mesh() -> SurfaceMesh:
    return SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))


def _adjacency(faces: np.ndarray, keep: np.ndarray, n_vertices: int):
    """Vertex adjacency (CSR) among the ``keep`` vertices (indices into ``keep``)."""
    local = np.full(n_vertices, -1, dtype=np.int64)
    local[keep] = np.arange(len(keep))
    f = local[faces]
    f = f[np.all(f >= 0, axis=1)]
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    a = coo_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(len(keep),) * 2).tocsr()
    return (a + a.T).tocsr()


def _surrounded_patches(adjacency, inside: np.ndarray, in_organ: np.ndarray) -> list[np.ndarray]:
    """Connected patches of ``inside`` vertices whose ring is mostly ``in_organ``."""
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return []
    n_patches, labels = connected_components(adjacency[idx][:, idx], directed=False)
    onehot = coo_matrix((np.ones(len(idx)), (np.arange(len(idx)), labels)),
                        shape=(len(idx), n_patches)).tocsr()
    touches = (adjacency[:, idx] @ onehot) > 0  # (vertices, patches)
    ring = touches[~inside]
    ring_count = np.asarray(ring.sum(axis=0)).reshape(-1)
    organ_count = np.asarray(ring[in_organ[~inside]].sum(axis=0)).reshape(-1)
    good = (ring_count > 0) & (organ_count >= SURROUND_FRACTION * np.maximum(ring_count, 1))
    return [idx[labels == p] for p in np.flatnonzero(good)]


def _zero_crossings(adjacency, verts: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Points (K, 3) where ``d`` crosses zero along the mesh edges (linear interpolation)."""
    rows, cols = adjacency.nonzero()
    cross = (d[rows] < 0) & (d[cols] >= 0) & np.isfinite(d[cols])
    rows, cols = rows[cross], cols[cross]
    t = (d[rows] / (d[rows] - d[cols]))[:, None]
    return verts[rows] + t * (verts[cols] - verts[rows])


def _clip(mesh: SurfaceMesh, keep: np.ndarray) -> SurfaceMesh:
    """The faces of ``mesh`` whose 3 vertices are all in ``keep``, re-indexed (keep's order)."""
    local = np.full(len(mesh.vertices_lps), -1, dtype=np.int64)
    local[keep] = np.arange(len(keep))
    f = local[mesh.faces]
    return SurfaceMesh(mesh.vertices_lps[keep], f[np.all(f >= 0, axis=1)])
