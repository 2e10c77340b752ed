"""Scoring a placed implant against the twin: bone breach per direction, Gertzbein-Robbins
grade, clearance to critical structures, HU-band shares.

* **Live** (:class:`LiveScorer`): trilinear samples of signed-distance grids (the union of the
  ``bone`` structures, each critical structure) and of the CT at the implant's probe points
  (its vertices; a few thousand for a screw): well under 5 ms per pose. Vectorised over many
  poses for Monte Carlo.
* **Exact** (:func:`exact_score`, on release): point-to-triangle signed distances to the
  structures' surface meshes (``vtkImplicitPolyDataDistance``), at the vertices and face
  centres that the grid puts within 2 mm of the bone surface (or of a critical structure's
  nearest point); the grid's error is below a voxel, so no deciding point is missed.

Definitions (LPS mm; signed distance positive outside):

* ``breach_mm``: the largest distance outside bone of any scored point (0 when none is more
  than ``tolerance_mm`` outside; the tolerance absorbs the grid's sub-voxel error).
* The direction of an outside point is the bone wall it has passed: the outward normal of the
  nearest bone surface (the bone distance's gradient at the point), classified in the
  vertebra's frame (centre: the vertebra's centroid; patient axes) by its dominant component:
  medial / lateral (towards / away from the mid-sagittal plane, where the canal is),
  superior / inferior, anterior / posterior. A point anterior of the vertebra's centre is out
  of the vertebral body: anterior (unless through an endplate: superior / inferior), so a tip
  through the anterior cortex is an anterior breach, not a pedicle-wall one. Points proximal
  to where the implant's axis enters the bone (z <= entry depth + the point's distance from
  the axis, in the implant frame) are the entry: posterior.
* ``gertzbein_grade``: the modified Gertzbein-Robbins scale in 2 mm steps (A 0 mm, B < 2 mm,
  C < 4 mm, D < 6 mm, E >= 6 mm; after Gertzbein & Robbins, Spine 1990;15(1):11-14, as used
  by e.g. Ringel et al., Spine 2012;37(8):E496-E501) from the largest medial, lateral,
  superior, inferior or anterior breach. A posterior breach is the shank standing proud of
  the bone at its entry, not a pedicle-wall breach: it counts in ``breach_mm`` and is
  reported apart.
* ``bone_share_pct``: % of the shank's axis inside bone (0: the implant is not in a bone).
* Points off the image grid have no anatomy: their distances are NaN and the pose is not
  assessable (never a number).
* ``min_distance_mm`` to a critical structure: min over all the implant's points of the signed
  distance (negative = inside the structure).
* HU shares: area-weighted fractions of the scored surface in cortical (>= 250 HU), cancellous
  (130-250 HU) and soft-tissue (< 130 HU) bands, as PedicleScrewSimulator reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates

from surgiplan.model.geometry import ImageGeometry
from surgiplan.model.structures import Role
from surgiplan.simulation import SimulationContext

DIRECTIONS = ("medial", "lateral", "superior", "inferior", "anterior", "posterior")
GRADED = DIRECTIONS[:5]
GRADES = ("A", "B", "C", "D", "E")
ANTERIOR, POSTERIOR = DIRECTIONS.index("anterior"), DIRECTIONS.index("posterior")
HU_BANDS = {"cortical": (250.0, np.inf), "cancellous": (130.0, 250.0),
            "soft_tissue": (-np.inf, 130.0)}
NEAR_MM = 2.0  # the exact check re-measures points the grid puts within this of the nearest
GERTZBEIN_1990 = ("modified Gertzbein-Robbins classification, 2 mm steps (A 0, B < 2, C < 4, "
                  "D < 6, E >= 6 mm), after Gertzbein SD, Robbins SE. Accuracy of pedicular "
                  "screw placement in vivo. Spine 1990;15(1):11-14; as used in Ringel F et al. "
                  "Spine 2012;37(8):E496-E501")


def gertzbein_grade(graded_breach_mm: float) -> str:
    """A (no breach), B (< 2 mm), C (< 4 mm), D (< 6 mm), E (>= 6 mm); "" when not a number
    (not assessable)."""
    if not np.isfinite(graded_breach_mm):
        return ""
    if graded_breach_mm <= 0:
        return "A"
    return GRADES[min(4, 1 + int(graded_breach_mm // 2.0))]


class GridSampler:
    """Trilinear sampling of one (nz, ny, nx) array at LPS points; ``fill`` off the grid."""

    def __init__(self, array: np.ndarray, geometry: ImageGeometry, fill: float) -> None:
        self.array = array
        self.fill = fill
        m = geometry.lps_to_index_matrix
        self._rot = m[:3, :3][::-1]  # rows give z, y, x indices
        self._shift = m[:3, 3][::-1]
        self._upper = np.asarray(array.shape, float) - 0.5

    def __call__(self, points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, float)
        zyx = pts.reshape(-1, 3) @ self._rot.T + self._shift
        out = map_coordinates(self.array, zyx.T, order=1, mode="nearest", output=np.float64)
        off = np.any((zyx < -0.5) | (zyx > self._upper), axis=1)
        out[off] = self.fill
        return out.reshape(pts.shape[:-1])

    def gradient(self, points_lps: np.ndarray, step_mm: float) -> np.ndarray:
        """Central-difference gradient (per mm) at points (n, 3)."""
        steps = np.vstack([np.eye(3), -np.eye(3)]) * step_mm
        values = self(points_lps[:, None, :] + steps[None])
        return (values[:, :3] - values[:, 3:]) / (2.0 * step_mm)


@dataclass(frozen=True)
class VertebraFrame:
    """A vertebra's centre (LPS mm) and axes (columns: left, posterior, superior; unit LPS)."""

    centre_lps: np.ndarray
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass
class ImplantScore:
    """One pose's scores (nominal or one Monte Carlo draw); distances in mm."""

    breach_mm: float
    breach_by_direction_mm: dict[str, float]
    grade: str
    min_distance_mm: dict[str, float]
    closest_lps: dict[str, tuple[float, float, float]]
    hu_share_pct: dict[str, float]
    worst_breach_lps: tuple[float, float, float] | None = None
    method: str = "grid"
    bone_share_pct: float = float("nan")

    @property
    def graded_breach_mm(self) -> float:
        return max(self.breach_by_direction_mm[d] for d in GRADED)


@dataclass
class ProbePoints:
    """An implant's probe points in its own frame and which of them are scored against bone."""

    points_mm: np.ndarray
    scored: np.ndarray  # bool
    area_mm2: np.ndarray  # per point, for area-weighted shares
    normals_mm: np.ndarray  # outward unit normals, implant frame

    @classmethod
    def from_mesh(cls, vertices_mm: np.ndarray, faces: np.ndarray, *,
                  scored_part: str) -> ProbePoints:
        """Vertices with their share of the adjacent triangles' area; ``scored_part`` "shank"
        keeps z > 0 (the pedicle screw convention: the head and its underside are at z <= 0),
        "whole" keeps every vertex."""
        v = np.asarray(vertices_mm, float)
        f = np.asarray(faces, np.int64)
        tri = v[f]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                                    axis=1)
        per_vertex = np.zeros(len(v))
        np.add.at(per_vertex, f.reshape(-1), np.repeat(area / 3.0, 3))
        scored = v[:, 2] > 1e-6 if scored_part == "shank" else np.ones(len(v), bool)
        return cls(v, scored, per_vertex, _vertex_normals(v, f))


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for an outward-oriented mesh)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


class SceneMaps:
    """Distance grids and the CT of a context, prepared once (the slow part) for scoring."""

    def __init__(self, context: SimulationContext) -> None:
        from surgiplan.processing.distance import signed_distance_map

        geometry = context.geometry
        self.geometry = geometry
        self.bone_names = [s.name for s in context.by_role(Role.BONE)]
        self.critical = list(context.by_role(Role.CRITICAL))
        if len(self.bone_names) == 1:
            bone = context.distance_map(self.bone_names[0])
        elif self.bone_names:
            union = np.zeros(geometry.shape_zyx, bool)
            for name in self.bone_names:
                union |= context.mask(name)
            bone = signed_distance_map(union, geometry)
        else:
            bone = np.full(geometry.shape_zyx, np.inf, np.float32)
        # off the grid the anatomy is unknown: NaN, never a number
        self.bone = GridSampler(bone, geometry, np.nan)
        self.criticals = {s.name: GridSampler(context.distance_map(s.name), geometry, np.nan)
                          for s in self.critical}
        image = context.images[0]
        self.hu = GridSampler(image.array, geometry, np.nan)
        self.is_ct = image.modality == "CT" or image.units == "HU"
        self.step_mm = 0.5 * min(geometry.spacing_mm)
        self._context = context
        self._frames: dict[Any, VertebraFrame] = {}
        self._mesh_functions: dict[str, Any] = {}

    def mesh_function(self, name: str) -> Any:
        """A cached exact signed-distance function of a structure's surface (None if empty)."""
        if name not in self._mesh_functions:
            from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

            from surgiplan.processing.mesh_convert import surface_to_polydata

            mesh = self._context.surface(name)
            function = None
            if not mesh.is_empty():
                function = vtkImplicitPolyDataDistance()
                function.SetInput(surface_to_polydata(mesh))
            self._mesh_functions[name] = function
        return self._mesh_functions[name]

    def bone_at(self, points_lps: np.ndarray) -> str | None:
        """The bone structure holding most of the given points (None if none does)."""
        names = [n for row in self._context.structures_at(points_lps) for n in row
                 if n in self.bone_names]
        return max(set(names), key=names.count) if names else None

    def frame_for(self, points_lps: np.ndarray) -> VertebraFrame:
        """The vertebra frame around scored points (cached per bone structure and 5 mm cell)."""
        name = self.bone_at(points_lps)
        centre = points_lps.mean(axis=0)
        key = name if name is not None and len(self.bone_names) > 1 else \
            (name, tuple(np.round(centre / 5.0).astype(int)))
        if key not in self._frames:
            self._frames[key] = local_vertebra_frame(self._context, name, centre)
        return self._frames[key]


def local_vertebra_frame(context: SimulationContext, bone: str | None,
                         centre_lps: np.ndarray) -> VertebraFrame:
    """Centre of the bone near ``centre_lps`` (a 140 x 140 x 30 mm box, L x P x S), patient axes.

    With one structure per vertebra the whole structure is used; the axes are the patient's
    (supine scan; a vertebra's tilt rarely changes a breach's dominant direction).
    """
    if bone is None:
        return VertebraFrame(np.asarray(centre_lps, float))
    if sum(s.role == Role.BONE for s in context.structures) != 1:  # one vertebra a structure
        centre = context.centroid_lps(bone)
        return VertebraFrame(np.asarray(centre_lps if centre is None else centre, float))
    geometry = context.geometry
    mask = context.mask(bone)
    lo = geometry.lps_to_index(centre_lps - np.array([70.0, 70.0, 15.0]))
    hi = geometry.lps_to_index(centre_lps + np.array([70.0, 70.0, 15.0]))
    a, b = np.minimum(lo, hi), np.maximum(lo, hi)
    box = tuple(slice(max(0, int(np.floor(a[k]))), max(0, int(np.ceil(b[k])) + 1))
                for k in (2, 1, 0))
    zyx = np.argwhere(mask[box]) + np.array([s.start for s in box])
    if len(zyx) == 0:
        return VertebraFrame(np.asarray(centre_lps, float))
    return VertebraFrame(geometry.index_to_lps(zyx.mean(axis=0)[::-1]))


def _per_direction(values: np.ndarray, classes: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """(n, 6) max of ``values`` (n, p) over the ``outside`` points of each direction class
    (0 where none)."""
    out = np.zeros((len(values), len(DIRECTIONS)))
    for k in range(len(DIRECTIONS)):
        sel = outside & (classes == k)
        out[:, k] = np.where(sel, values, 0.0).max(axis=1, initial=0.0)
    return out


@dataclass
class RawDraws:
    """Per-pose samples from which scores follow for any bone-boundary offset (mm).

    ``bone`` (n, p) signed distance of the scored points, ``classes`` (n, p) their wall
    direction (valid where they may lie outside), ``axis`` (n, a) the bone distance along the
    shank's axis at ``axis_z`` (a,), ``points_z`` / ``points_radial`` (p,) implant-frame
    position of the scored points, ``critical`` (n, k) smallest distance to each critical
    structure, ``hu`` (n, 3) HU-band shares (%). NaN = off the image grid.
    """

    bone: np.ndarray
    classes: np.ndarray
    axis: np.ndarray
    axis_z: np.ndarray
    points_z: np.ndarray
    points_radial: np.ndarray
    critical: np.ndarray
    hu: np.ndarray

    @property
    def failed(self) -> np.ndarray:
        """(n,) True where part of the implant or its axis is off the image grid."""
        return ~(np.isfinite(self.bone).all(axis=1) & np.isfinite(self.axis).all(axis=1)
                 & np.isfinite(self.critical).all(axis=1) & np.isfinite(self.hu).all(axis=1))

    def scores(self, bone_offset_mm: Any = 0.0, tolerance_mm: float = 0.3) -> BatchScores:
        """Breach per direction with the bone surface moved outward by ``-offset`` (offset
        (n,) or scalar mm added to the distances; + = the bone shrinks)."""
        e = np.broadcast_to(np.asarray(bone_offset_mm, float), (len(self.bone),))[:, None]
        d = self.bone + e
        entered = self.axis < 0  # the entry depth on the twin's boundary, moved by the offset
        z_in = np.where(entered.any(axis=1), self.axis_z[np.argmax(entered, axis=1)], 0.0)
        z_in = np.maximum(0.0, z_in + e[:, 0])
        inside = self.axis + e < 0
        classes = self.classes.copy()
        classes[self.points_z[None, :] <= z_in[:, None] + self.points_radial[None, :]] = \
            POSTERIOR
        with np.errstate(invalid="ignore"):
            outside = d > tolerance_mm
        breach = np.where(outside, d, 0.0).max(axis=1, initial=0.0)
        by_direction = _per_direction(d, classes, outside)
        shank = self.axis_z > 0
        share = 100.0 * inside[:, shank].mean(axis=1) if shank.any() else np.zeros(len(d))
        failed = self.failed
        breach[failed] = np.nan
        by_direction[failed] = np.nan
        share[failed] = np.nan
        return BatchScores(breach, by_direction, self.critical.copy(), share, self.hu.copy())


def _dominant(vectors: np.ndarray, side: np.ndarray, frame: VertebraFrame) -> np.ndarray:
    """Direction index of each vector's dominant vertebra-frame component (medial = towards
    the mid-sagittal plane on the point's ``side``)."""
    local = np.nan_to_num(vectors @ frame.axes)  # left, posterior, superior components
    dominant = np.argmax(np.abs(local), axis=1)
    out = np.empty(len(vectors), dtype=np.intp)
    ml = dominant == 0
    out[ml] = np.where(local[ml, 0] * side[ml] < 0, 0, 1)
    ap = dominant == 1
    out[ap] = np.where(local[ap, 1] > 0, POSTERIOR, ANTERIOR)
    si = dominant == 2
    out[si] = np.where(local[si, 2] > 0, 2, 3)
    return out


def classify_walls(points_lps: np.ndarray, normals_lps: np.ndarray, gradients: np.ndarray,
                   frame: VertebraFrame) -> np.ndarray:
    """Index into :data:`DIRECTIONS` of the wall each outside point has passed.

    Anterior of the vertebra's centre (the vertebral body): anterior, unless the nearest bone
    wall (the bone distance's ``gradients``) faces up or down (an endplate: superior /
    inferior). Behind it (the pedicle): the dominant vertebra-frame component of the implant's
    outward surface normal there (the side of the screw that sticks out: medial / lateral /
    superior / inferior), or of the bone wall's normal where the implant's normal points
    along the vertebra's A-P axis (its tip or head).
    """
    rel = (points_lps - frame.centre_lps) @ frame.axes
    side = np.sign(rel[:, 0])
    side[side == 0] = 1.0
    wall = _dominant(gradients, side, frame)
    out = _dominant(normals_lps, side, frame)
    along_ap = (out == ANTERIOR) | (out == POSTERIOR)
    out[along_ap] = wall[along_ap]
    body = rel[:, 1] < 0
    endplate = (wall == 2) | (wall == 3)
    out[body] = np.where(endplate[body], wall[body], ANTERIOR)
    return out


@dataclass
class BatchScores:
    """Scores of n poses (NaN = not assessable: off the grid): ``breach`` (n,),
    ``by_direction`` (n, 6), ``min_distance`` (n, k), ``bone_share`` (n,) % of the shank axis
    in bone, ``hu`` (n, 3) HU-band shares %."""

    breach: np.ndarray
    by_direction: np.ndarray
    min_distance: np.ndarray
    bone_share: np.ndarray | None = None
    hu: np.ndarray | None = None

    @property
    def graded(self) -> np.ndarray:
        return self.by_direction[:, :5].max(axis=1)

    @property
    def grade_index(self) -> np.ndarray:
        """0..4 for A..E per pose (float; NaN where not assessable)."""
        g = self.graded
        with np.errstate(invalid="ignore"):
            return np.where(g <= 0, 0.0, np.minimum(4.0, 1.0 + np.floor(g / 2.0)))


class LiveScorer:
    """Fast grid scoring of one implant at any pose (the drag loop; Monte Carlo draws)."""

    def __init__(self, maps: SceneMaps, probes: ProbePoints, *, tolerance_mm: float) -> None:
        self.maps = maps
        self.probes = probes
        self.tolerance_mm = float(tolerance_mm)
        self._scored = probes.points_mm[probes.scored]
        self._weights = probes.area_mm2[probes.scored]
        self._normals = probes.normals_mm[probes.scored]
        self._radial = np.hypot(self._scored[:, 0], self._scored[:, 1])
        z_max = max(1.0, float(probes.points_mm[:, 2].max()))
        n_axis = 2 * int(z_max) + 1
        self._axis = np.stack([np.zeros(n_axis), np.zeros(n_axis),
                               np.linspace(0.0, z_max, n_axis)], axis=1)
        self.frame: VertebraFrame | None = None
        self._frame_at = np.zeros(3)

    def _frame(self, pose: np.ndarray) -> VertebraFrame:
        """The vertebra frame, looked up again only when the implant moved over 5 mm."""
        centre = pose[:3, 3]
        if self.frame is not None and np.linalg.norm(centre - self._frame_at) < 5.0:
            return self.frame
        pts = self._scored[:: max(1, len(self._scored) // 200)] @ pose[:3, :3].T + centre
        self.frame, self._frame_at = self.maps.frame_for(pts), centre.copy()
        return self.frame

    def vertebra(self, pose: np.ndarray) -> str | None:
        """The bone structure holding most of the scored surface at ``pose`` (None: none)."""
        pts = self._scored[:: max(1, len(self._scored) // 200)] @ pose[:3, :3].T + pose[:3, 3]
        return self.maps.bone_at(pts)

    def raw(self, poses: np.ndarray, *, stride: int = 1, frame: VertebraFrame | None = None,
            reach_mm: float = 6.0, bone: Any = None) -> RawDraws:
        """Samples of (n, 4, 4) poses (see :class:`RawDraws`); wall directions are found for
        points less than ``reach_mm`` inside the bone (the largest boundary offset used)."""
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        frame = frame or self._frame(poses[0])
        rot, shift = poses[:, :3, :3], poses[:, None, :3, 3]
        scored = np.einsum("pj,nij->npi", self._scored[::stride], rot) + shift
        d = self.maps.bone(scored)
        axis = np.einsum("pj,nij->npi", self._axis, rot) + shift
        axis_d = (bone or self.maps.bone)(axis)
        classes = np.full(d.shape, POSTERIOR, np.intp)
        with np.errstate(invalid="ignore"):
            near = np.nonzero(d > self.tolerance_mm - reach_mm)
        if len(near[0]):
            pts = scored[near]
            grad = self.maps.bone.gradient(pts, self.maps.step_mm)
            normals = np.einsum("nij,nj->ni", rot[near[0]], self._normals[::stride][near[1]])
            classes[near] = classify_walls(pts, normals, grad, frame)
        # every probe point for the clearances and HU shares (a strided minimum is biased)
        everything = np.einsum("pj,nij->npi", self.probes.points_mm, rot) + shift
        critical = np.zeros((len(poses), len(self.maps.criticals)))
        for k, sampler in enumerate(self.maps.criticals.values()):
            critical[:, k] = sampler(everything).min(axis=1)
        hu = self._hu_many(everything[:, self.probes.scored], 1)
        return RawDraws(d, classes, axis_d, self._axis[:, 2], self._scored[::stride, 2],
                        self._radial[::stride], critical, hu)

    def _hu_many(self, scored: np.ndarray, stride: int) -> np.ndarray:
        """(n, 3) area-weighted % of the scored surface per HU band (NaN when not CT)."""
        if not self.maps.is_ct:
            return np.full((len(scored), len(HU_BANDS)), np.nan)
        hu = self.maps.hu(scored)
        w = self._weights[::stride]
        total = w.sum()
        out = np.stack([((hu >= lo) & (hu < hi)) @ w for lo, hi in HU_BANDS.values()], axis=1)
        out = 100.0 * out / total
        out[~np.isfinite(hu).all(axis=1)] = np.nan
        return out

    def score_many(self, poses: np.ndarray, *, bone_offsets: np.ndarray | None = None,
                   critical_offsets: np.ndarray | None = None, stride: int = 1,
                   frame: VertebraFrame | None = None) -> BatchScores:
        """Scores of (n, 4, 4) poses; offsets (n,) / (n, k) mm are added to the distances
        (boundary uncertainty); ``stride`` subsamples the probe points (Monte Carlo)."""
        raw = self.raw(poses, stride=stride, frame=frame)
        batch = raw.scores(0.0 if bone_offsets is None else bone_offsets, self.tolerance_mm)
        if critical_offsets is not None:
            batch.min_distance = batch.min_distance + np.asarray(critical_offsets, float)
        return batch

    def score(self, pose: np.ndarray) -> ImplantScore:
        """The nominal score of one pose (the live drag call)."""
        pose = np.asarray(pose, float)
        raw = self.raw(pose[None])
        everything = apply_pose_points(pose, self.probes.points_mm)
        min_distance, closest = {}, {}
        for name, sampler in self.maps.criticals.items():
            values = sampler(everything)
            i = int(np.nanargmin(values)) if np.isfinite(values).any() else 0
            min_distance[name] = float(values.min())
            closest[name] = tuple(everything[i])
        scored = everything[self.probes.scored]
        return _score_from(raw, self.tolerance_mm, scored, min_distance, closest, "grid")

    def hu_shares(self, scored_lps: np.ndarray) -> dict[str, float]:
        """Area-weighted % of the scored surface per HU band (NaN when not CT or off grid)."""
        row = self._hu_many(np.asarray(scored_lps)[None], 1)[0]
        return {k: float(v) for k, v in zip(HU_BANDS, row, strict=True)}


def _score_from(raw: RawDraws, tolerance_mm: float, scored_lps: np.ndarray,
                min_distance: dict[str, float], closest: dict[str, Any],
                method: str) -> ImplantScore:
    """One pose's :class:`ImplantScore` from its single-row ``raw`` samples."""
    batch = raw.scores(0.0, tolerance_mm)
    by_dir = {k: float(v) for k, v in zip(DIRECTIONS, batch.by_direction[0], strict=True)}
    d = raw.bone[0]
    worst = None
    with np.errstate(invalid="ignore"):
        if np.isfinite(d).all() and (d > tolerance_mm).any():
            worst = tuple(scored_lps[int(np.argmax(d))])
    graded = max(by_dir[k] for k in GRADED)
    return ImplantScore(
        breach_mm=float(batch.breach[0]), breach_by_direction_mm=by_dir,
        grade=gertzbein_grade(graded), min_distance_mm=min_distance, closest_lps=closest,
        hu_share_pct={k: float(v) for k, v in zip(HU_BANDS, raw.hu[0], strict=True)},
        worst_breach_lps=worst, method=method, bone_share_pct=float(batch.bone_share[0]))


def apply_pose_points(pose: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    return points_mm @ pose[:3, :3].T + pose[:3, 3]


# ---------------------------------------------------------------------- exact mesh check
def _evaluate(function: Any, points: np.ndarray) -> np.ndarray:
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkDoubleArray

    values = vtkDoubleArray()
    function.FunctionValue(numpy_to_vtk(np.ascontiguousarray(points), deep=True), values)
    return vtk_to_numpy(values).astype(float)


class _MinDistance:
    """The smallest of several exact mesh distance functions (a union of structures); NaN
    where ``grid`` (the distance grid, NaN off the image) is NaN."""

    def __init__(self, functions: list[Any], grid: GridSampler) -> None:
        self.functions = functions
        self.grid = grid

    def __call__(self, points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, float)
        flat = pts.reshape(-1, 3)
        out = np.full(len(flat), np.inf)
        for fn in self.functions:
            out = np.minimum(out, _evaluate(fn, flat))
        out[~np.isfinite(self.grid(flat))] = np.nan
        return out.reshape(pts.shape[:-1])


def exact_score(context: SimulationContext, live: LiveScorer, pose: np.ndarray,
                faces: np.ndarray) -> ImplantScore:
    """Point-to-mesh signed distances at the vertices and face centres (the release check)."""
    probes = live.probes
    pose = np.asarray(pose, float)
    centres_mm = probes.points_mm[faces].mean(axis=1)
    points_mm = np.vstack([probes.points_mm, centres_mm])
    scored = np.concatenate([probes.scored, probes.scored[faces].all(axis=1)])
    tri = probes.points_mm[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals_mm = np.vstack([probes.normals_mm, face_n / np.maximum(
        np.linalg.norm(face_n, axis=1, keepdims=True), 1e-12)])
    points = apply_pose_points(pose, points_mm)
    functions = [live.maps.mesh_function(n) for n in live.maps.bone_names]
    bone = _MinDistance([f for f in functions if f is not None], live.maps.bone)
    dense = LiveScorer(live.maps, ProbePoints(points_mm, scored, np.ones(len(points_mm)),
                                              normals_mm),
                       tolerance_mm=live.tolerance_mm)
    raw = dense.raw(pose[None], frame=live._frame(pose), bone=bone)
    sp = points[scored]
    sd = raw.bone[0]
    with np.errstate(invalid="ignore"):
        near = sd > -NEAR_MM  # exact where it matters: near or outside the bone surface
    sd[near] = bone(sp[near])
    raw.hu = live._hu_many(points[: len(probes.points_mm)][probes.scored][None], 1)
    min_distance, closest = {}, {}
    for s in live.maps.critical:
        fn = live.maps.mesh_function(s.name)
        d = live.maps.criticals[s.name](points)
        if fn is not None and np.isfinite(d).all():
            near = d < d.min() + NEAR_MM
            d[near] = _evaluate(fn, points[near])
        i = int(np.nanargmin(d)) if np.isfinite(d).any() else 0
        min_distance[s.name], closest[s.name] = float(d.min()), tuple(points[i])
    return _score_from(raw, live.tolerance_mm, sp, min_distance, closest, "mesh")
