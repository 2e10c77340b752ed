"""Resection scoring on a prepared organ: volumes, margin, vessels crossing the cut, intervals.

:class:`PreparedResection` gathers once (per organ and target) the organ's voxels (and a band
around them for the boundary uncertainty) with their LPS centres and signed distances; then
:meth:`PreparedResection.score` re-scores any cut in milliseconds (live dragging) and
:meth:`PreparedResection.intervals` adds the Monte Carlo 95 % intervals.

Definitions (LPS mm, millilitres):

* **specimen rule**: ``cut_side`` = organ voxels on the cut's removed side; ``target_margin`` =
  organ voxels within ``margin_mm`` of the target (signed distance of the target <= margin);
  ``target_margin_on_cut_side`` = both at once. Volumes count voxel centres (voxel volume x
  count), the same count as the organ's label map.
* ``remnant_pct`` = 100 x remnant / organ volume (the future liver remnant for a liver; the
  organ structure's own voxels: tumours and vessels with labels of their own are not counted).
* **resection surface** = the part of the cut inside the organ region: cut vertices inside the
  organ (signed distance <= 0) or inside a structure the organ surrounds there (a vessel or
  tumour whose cross-section on the cut is at least half ringed by organ).
* ``margin_mm`` = distance from the target to the resection surface (min of the target's
  trilinear signed distance over its vertices; negative when the cut passes through the
  target), also bounded by ``margin_mm`` under a target-margin rule; if part of the target lies
  in the remnant, the depth of its deepest remnant voxel, negative.
* **vessel crossing**: a connected patch of resection-surface vertices inside a critical
  structure; its diameter is that of the largest disc its section on the cut holds: twice the
  largest distance from a patch vertex to the section's outline (the zero crossings of the
  structure's signed distance along the mesh edges). An oblique cut gives an elliptic section
  whose inscribed disc is still the vessel's diameter; the estimate is low by at most the
  vertex spacing / sqrt(2).
* **uncertainty** (segmentation): the organ, target and each critical structure's boundary
  move along their normals by independent Gaussian offsets (SD ``sd_mm``, one voxel by
  default): organ' = {d_organ < e}, so volumes are re-counted with the planned specimen region
  fixed; margin' = margin - e_target; diameter' = diameter + 2 e_vessel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from surgiplan.errors import BadInputError
from surgiplan.model.structures import Role
from surgiplan.model.surface import SurfaceMesh
from surgiplan.simulation import SimulationContext
from surgiplan.simulation.uncertainty import interval95, probability95
from surgiplan_resection.cuts import Cut

RULES = ("auto", "cut_side", "target_margin", "target_margin_on_cut_side")
SURROUND_FRACTION = 0.5  # a section at least half ringed by organ counts as inside the organ
HOLE_BAND_MM = 15.0  # cut vertices farther than this from the organ are never in it
BAND_SDS = 4.0  # candidate voxels reach this many boundary SDs outside the organ


@dataclass(frozen=True)
class VesselCrossing:
    """A critical structure cut through on the resection surface."""

    structure: str
    diameter_mm: float
    point_lps: tuple[float, float, float]
    n_vertices: int

    def to_json(self) -> dict[str, Any]:
        return {"structure": self.structure, "diameter_mm": self.diameter_mm,
                "point_lps": list(self.point_lps), "n_vertices": self.n_vertices}


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
    """Monte Carlo draws of the main metrics (arrays of length ``samples``)."""

    resected_ml: np.ndarray
    remnant_ml: np.ndarray
    organ_ml: np.ndarray
    remnant_pct: np.ndarray
    margin_mm: np.ndarray | None
    diameters_mm: dict[str, np.ndarray]

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


def choose_organ(context: SimulationContext, organ: str | None, target: str | None) -> str:
    """The organ to resect from: the named one, the only organ-role one, or the one nearest the
    target (smallest signed distance at the target's voxels)."""
    names = [s.name for s in context.structures]
    for name, what in ((organ, "organ"), (target, "target")):
        if name is not None and name not in names:
            raise BadInputError(f"the case has no structure named {name!r} (the {what}); it has "
                                f"{', '.join(names)}", action="use one of the structure names")
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


class PreparedResection:
    """An organ (and optional target) ready for fast re-scoring of cuts.

    ``band_mm``: how far outside the organ voxels are kept for the boundary uncertainty.
    """

    def __init__(self, context: SimulationContext, organ: str, target: str | None = None, *,
                 band_mm: float = 6.0) -> None:
        self.context, self.organ, self.target = context, organ, target
        self.geometry = context.geometry
        self.voxel_ml = self.geometry.voxel_volume_mm3 / 1000.0
        sdf_organ = context.distance_map(organ)
        mask = context.mask(organ)
        if not mask.any():
            raise BadInputError(f"the organ {organ!r} has no voxels",
                                action="segment the organ first")
        self.index = np.flatnonzero((sdf_organ < band_mm).reshape(-1) | mask.reshape(-1))
        self.points = self._points(self.index)
        self.sdf_organ = sdf_organ.reshape(-1)[self.index].astype(np.float32)
        self.nominal = mask.reshape(-1)[self.index]
        self.organ_voxels = int(np.count_nonzero(self.nominal))
        inside = self.points[self.nominal]
        self.bounds_lps = np.stack([inside.min(0), inside.max(0)]).astype(float)
        self.sdf_target = self.target_index = self.target_points = None
        if target is not None:
            self.sdf_target = context.distance_map(target).reshape(-1)[self.index]
            self.target_index = np.flatnonzero(context.mask(target).reshape(-1))
            if self.target_index.size == 0:
                raise BadInputError(f"the target {target!r} has no voxels",
                                    action="segment the target first")
            self.target_points = self._points(self.target_index)
            self.target_sdf_inside = context.distance_map(target).reshape(-1)[self.target_index]
        self.critical = [s.name for s in context.by_role(Role.CRITICAL)
                         if s.name not in (organ, target)]
        self._sorted_all = np.sort(self.sdf_organ)

    def _points(self, flat_index: np.ndarray) -> np.ndarray:
        _nz, ny, nx = self.geometry.shape_zyx
        k, rest = np.divmod(flat_index, ny * nx)
        j, i = np.divmod(rest, nx)
        return self.geometry.index_to_lps(np.stack([i, j, k], 1))

    # ------------------------------------------------------------------ nominal scoring
    def region(self, cut: Cut | None, rule: str, margin_mm: float) -> np.ndarray:
        """The planned specimen region over the candidate voxels (bool)."""
        keep = np.ones(len(self.index), dtype=bool)
        if "cut" in rule:
            keep &= cut.side_mm(self.points) > 0
        if "target" in rule:
            keep &= self.sdf_target <= margin_mm
        return keep

    def score(self, cut: Cut | None, *, rule: str = "auto", margin_mm: float = 0.0,
              surface_spacing_mm: float = 1.0, min_diameter_mm: float = 1.0) -> ResectionScore:
        """Score one resection (nominal values; milliseconds for a plane on a liver)."""
        rule = resolve_rule(rule, has_cut=cut is not None, has_target=self.target is not None)
        region = self.region(cut, rule, margin_mm)
        resected = int(np.count_nonzero(region & self.nominal))
        surface = _empty_mesh()
        values = np.zeros(0)
        crossings: list[VesselCrossing] = []
        distances: dict[str, float] = {}
        if cut is not None:
            mesh = cut.surface_mesh(self.bounds_lps, spacing_mm=surface_spacing_mm)
            surface, values, crossings, distances = self._surface(mesh, min_diameter_mm)
        margin, point, resected_pct = self._margin(cut, rule, margin_mm, surface, values)
        margins = {s.name: s.margin_mm for s in self.context.structures
                   if s.name in distances}
        return ResectionScore(rule, self.organ, self.target, self.voxel_ml, self.organ_voxels,
                              resected, margin, point, resected_pct, crossings, distances,
                              surface, values, region, margins)

    def _surface(self, mesh: SurfaceMesh, min_diameter_mm: float):
        """Clip the cut to the organ region; margin values, crossings, clearances on it."""
        verts = mesh.vertices_lps
        d_all = self.context.signed_distance_mm(self.organ, verts)
        near = np.flatnonzero(d_all < HOLE_BAND_MM)
        d_organ = d_all[near]
        inner = self.critical + ([self.target] if self.target else [])
        d_inner = {n: self.context.signed_distance_mm(n, verts[near]) for n in inner}
        adjacency = _adjacency(mesh.faces, near, len(verts))
        in_organ = d_organ <= 0
        in_region = in_organ.copy()
        patches: dict[str, list[np.ndarray]] = {}
        for name, d in d_inner.items():
            patches[name] = _surrounded_patches(adjacency, d < 0, in_organ)
            for patch in patches[name]:
                in_region[patch] = True
        crossings, distances = [], {}
        local_verts = verts[near]
        for name in self.critical:
            d = d_inner[name]
            distances[name] = float(d[in_region].min()) if in_region.any() else math.inf
            if not patches[name]:
                continue
            boundary = cKDTree(_zero_crossings(adjacency, local_verts, d))
            for patch in patches[name]:
                radius, _ = boundary.query(local_verts[patch])
                centre = patch[int(np.argmax(radius))]
                diameter = 2.0 * float(radius.max())
                if diameter >= min_diameter_mm:
                    crossings.append(VesselCrossing(name, diameter, tuple(
                        float(x) for x in local_verts[centre]), len(patch)))
        surface = _clip(mesh, near[in_region])
        values = (d_inner[self.target][in_region] if self.target
                  else np.full(len(surface.vertices_lps), np.nan))
        crossings.sort(key=lambda c: -c.diameter_mm)
        return surface, values, crossings, distances

    def _margin(self, cut, rule, margin_mm, surface, values):
        """(margin mm, closest surface point, % of the target's voxels in the specimen)."""
        if self.target is None:
            return math.nan, None, None
        margin, point = math.inf, None
        if "target" in rule:
            margin = float(margin_mm)
        if "cut" in rule and len(values):
            k = int(np.argmin(values))
            if values[k] < margin:
                margin, point = float(values[k]), tuple(float(x) for x in
                                                        surface.vertices_lps[k])
        left = np.zeros(len(self.target_index), dtype=bool)
        if "cut" in rule:
            left = cut.side_mm(self.target_points) <= 0
        if left.any():
            k = int(np.argmin(np.where(left, self.target_sdf_inside, np.inf)))
            if self.target_sdf_inside[k] < margin:
                margin = float(self.target_sdf_inside[k])
                point = tuple(float(x) for x in self.target_points[k])
        return margin, point, 100.0 * (1.0 - left.mean())

    # ------------------------------------------------------------------ uncertainty
    def intervals(self, score: ResectionScore, *, sd_mm: float, samples: int,
                  seed: int) -> Intervals:
        """Monte Carlo over the organ, target and critical boundaries (see module docstring)."""
        rng = np.random.default_rng(seed)
        e_organ = rng.normal(0.0, sd_mm, samples)
        e_target = rng.normal(0.0, sd_mm, samples)
        sorted_specimen = np.sort(self.sdf_organ[score.region])
        organ = np.searchsorted(self._sorted_all, e_organ).astype(float)
        resected = np.searchsorted(sorted_specimen, e_organ).astype(float)
        margin = None if self.target is None else score.margin_mm - e_target
        diameters = {}
        for name in sorted({c.structure for c in score.crossings}):
            widest = max(c.diameter_mm for c in score.crossings if c.structure == name)
            diameters[name] = np.maximum(widest + 2.0 * rng.normal(0.0, sd_mm, samples), 0.0)
        return Intervals(resected * self.voxel_ml, (organ - resected) * self.voxel_ml,
                         organ * self.voxel_ml, 100.0 * (organ - resected) / organ,
                         margin, diameters)

    # ------------------------------------------------------------------ masks
    def masks(self, score: ResectionScore) -> tuple[np.ndarray, np.ndarray]:
        """Full-grid boolean (specimen, remnant) masks of the organ for this score."""
        shape = self.geometry.shape_zyx
        specimen = np.zeros(int(np.prod(shape)), dtype=bool)
        specimen[self.index[score.region & self.nominal]] = True
        remnant = np.zeros_like(specimen)
        remnant[self.index[~score.region & self.nominal]] = True
        return specimen.reshape(shape), remnant.reshape(shape)


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
    cross = (d[rows] < 0) & (d[cols] >= 0)
    rows, cols = rows[cross], cols[cross]
    t = (d[rows] / (d[rows] - d[cols]))[:, None]
    return verts[rows] + t * (verts[cols] - verts[rows])


def _clip(mesh: SurfaceMesh, keep: np.ndarray) -> SurfaceMesh:
    """The faces of ``mesh`` whose 3 vertices are all in ``keep``, re-indexed (keep's order)."""
    local = np.full(len(mesh.vertices_lps), -1, dtype=np.int64)
    local[keep] = np.arange(len(keep))
    f = local[mesh.faces]
    return SurfaceMesh(mesh.vertices_lps[keep], f[np.all(f >= 0, axis=1)])
