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
* The direction of an outside point is the side of the implant that sticks out: the implant's
  own outward surface normal there, classified in the vertebra's frame by its dominant
  component: medial / lateral (towards / away from the vertebra's mid-sagittal plane, where
  the canal is), superior / inferior, anterior / posterior. Points proximal to where the
  implant's axis enters the bone (z <= entry depth + the point's distance from the axis, in
  the implant frame) are the entry: posterior.
* ``gertzbein_grade`` (Gertzbein & Robbins, Spine 1990;15(1):11-14) from the largest medial,
  lateral, superior, inferior or anterior breach: A 0 mm, B < 2 mm, C < 4 mm, D < 6 mm,
  E >= 6 mm. A posterior breach is the shank standing proud of the bone at its entry, not a
  pedicle-wall breach: it counts in ``breach_mm`` and is reported apart.
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
HU_BANDS = {"cortical": (250.0, np.inf), "cancellous": (130.0, 250.0),
            "soft_tissue": (-np.inf, 130.0)}
NEAR_MM = 2.0  # the exact check re-measures points the grid puts within this of the nearest
GERTZBEIN_1990 = ("Gertzbein SD, Robbins SE. Accuracy of pedicular screw placement in vivo. "
                  "Spine 1990;15(1):11-14")


def gertzbein_grade(graded_breach_mm: float) -> str:
    """A (no breach), B (< 2 mm), C (< 4 mm), D (< 6 mm), E (>= 6 mm)."""
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
        out = map_coordinates(self.array, zyx.T, order=1, mode="nearest")
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


def classify_directions(points_lps: np.ndarray, normals: np.ndarray,
                        frame: VertebraFrame) -> np.ndarray:
    """Index into :data:`DIRECTIONS` of each outward normal's dominant vertebra-frame axis."""
    local = normals @ frame.axes  # left, posterior, superior components
    side = np.sign((points_lps - frame.centre_lps) @ frame.axes[:, 0])
    side[side == 0] = 1.0
    dominant = np.argmax(np.abs(local), axis=1)
    out = np.empty(len(points_lps), dtype=np.intp)
    ml = dominant == 0
    out[ml] = np.where(local[ml, 0] * side[ml] < 0, 0, 1)  # towards the midline = medial
    ap = dominant == 1
    out[ap] = np.where(local[ap, 1] > 0, 5, 4)
    si = dominant == 2
    out[si] = np.where(local[si, 2] > 0, 2, 3)
    return out


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
        self.bone = GridSampler(bone, geometry, np.inf)
        self.criticals = {s.name: GridSampler(context.distance_map(s.name), geometry, np.inf)
                          for s in self.critical}
        image = context.images[0]
        self.hu = GridSampler(image.array, geometry, -1000.0)
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
    geometry = context.geometry
    mask = context.mask(bone)
    if sum(s.role == Role.BONE for s in context.structures) == 1:
        lo = geometry.lps_to_index(centre_lps - np.array([70.0, 70.0, 15.0]))
        hi = geometry.lps_to_index(centre_lps + np.array([70.0, 70.0, 15.0]))
        a, b = np.minimum(lo, hi), np.maximum(lo, hi)
        box = tuple(slice(max(0, int(np.floor(a[k]))), max(0, int(np.ceil(b[k])) + 1))
                    for k in (2, 1, 0))
        zyx = np.argwhere(mask[box]) + np.array([s.start for s in box])
    else:
        zyx = np.argwhere(mask)
    if len(zyx) == 0:
        return VertebraFrame(np.asarray(centre_lps, float))
    return VertebraFrame(geometry.index_to_lps(zyx.mean(axis=0)[::-1]))


def _per_direction(values: np.ndarray, classes: np.ndarray, rows: np.ndarray,
                   n_rows: int) -> np.ndarray:
    """(n_rows, 6) max of ``values`` per row and direction class (0 where none)."""
    out = np.zeros((n_rows, len(DIRECTIONS)))
    np.maximum.at(out, (rows, classes), values)
    return out


@dataclass
class BatchScores:
    """Scores of n poses: ``breach`` (n,), ``by_direction`` (n, 6), ``min_distance`` (n, k)."""

    breach: np.ndarray
    by_direction: np.ndarray
    min_distance: np.ndarray

    @property
    def graded(self) -> np.ndarray:
        return self.by_direction[:, :5].max(axis=1)

    @property
    def grade_index(self) -> np.ndarray:
        """0..4 for A..E per pose."""
        g = self.graded
        return np.where(g <= 0, 0, np.minimum(4, 1 + np.floor(g / 2.0))).astype(int)


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
        self._axis = np.stack([np.zeros(2 * int(z_max) + 1), np.zeros(2 * int(z_max) + 1),
                               np.linspace(0.0, z_max, 2 * int(z_max) + 1)], axis=1)
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

    def entry_depth_mm(self, poses: np.ndarray, bone=None) -> np.ndarray:
        """(n,) implant-frame z (mm) where each pose's axis first enters bone (0 if never)."""
        bone = bone or self.maps.bone
        d = bone(np.einsum("pj,nij->npi", self._axis, poses[:, :3, :3]) + poses[:, None, :3, 3])
        inside = d < 0
        first = np.argmax(inside, axis=1)
        return np.where(inside.any(axis=1), self._axis[first, 2], 0.0)

    def classify(self, poses: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 points_lps: np.ndarray, z_in: np.ndarray, frame: VertebraFrame, *,
                 normals_mm: np.ndarray | None = None, points_mm: np.ndarray | None = None,
                 ) -> np.ndarray:
        """Direction class of outside points ``cols`` of poses ``rows`` (see module doc)."""
        normals_mm = self._normals if normals_mm is None else normals_mm
        points_mm = self._scored if points_mm is None else points_mm
        normals = np.einsum("nij,nj->ni", poses[rows, :3, :3], normals_mm[cols])
        classes = classify_directions(points_lps, normals, frame)
        radial = np.hypot(points_mm[cols, 0], points_mm[cols, 1])
        classes[points_mm[cols, 2] <= z_in[rows] + radial] = DIRECTIONS.index("posterior")
        return classes

    def score_many(self, poses: np.ndarray, *, bone_offsets: np.ndarray | None = None,
                   critical_offsets: np.ndarray | None = None, stride: int = 1,
                   frame: VertebraFrame | None = None) -> BatchScores:
        """Scores of (n, 4, 4) poses; offsets (n,) / (n, k) mm are added to the distances
        (boundary uncertainty); ``stride`` subsamples the probe points (Monte Carlo)."""
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        n = len(poses)
        frame = frame or self._frame(poses[0])
        rot, shift = poses[:, :3, :3], poses[:, None, :3, 3]
        scored = np.einsum("pj,nij->npi", self._scored[::stride], rot) + shift
        z_in = self.entry_depth_mm(poses)
        d = self.maps.bone(scored)
        if bone_offsets is not None:
            d = d + np.asarray(bone_offsets, float)[:, None]
        outside = d > self.tolerance_mm
        breach = np.where(outside.any(axis=1), np.where(outside, d, 0.0).max(axis=1), 0.0)
        rows, cols = np.nonzero(outside)
        by_direction = np.zeros((n, len(DIRECTIONS)))
        if len(rows):
            classes = self.classify(poses, rows, cols * stride, scored[rows, cols], z_in, frame)
            by_direction = _per_direction(d[rows, cols], classes, rows, n)
        everything = np.einsum("pj,nij->npi", self.probes.points_mm[::stride], rot) + shift
        min_distance = np.zeros((n, len(self.maps.criticals)))
        for k, sampler in enumerate(self.maps.criticals.values()):
            min_distance[:, k] = sampler(everything).min(axis=1)
        if critical_offsets is not None:
            min_distance = min_distance + np.asarray(critical_offsets, float)
        return BatchScores(breach, by_direction, min_distance)

    def score(self, pose: np.ndarray) -> ImplantScore:
        """The nominal score of one pose (the live drag call)."""
        pose = np.asarray(pose, float)
        frame = self._frame(pose)
        everything = apply_pose_points(pose, self.probes.points_mm)
        scored = everything[self.probes.scored]
        d = self.maps.bone(scored)
        outside = np.flatnonzero(d > self.tolerance_mm)
        by_dir = dict.fromkeys(DIRECTIONS, 0.0)
        worst = None
        if len(outside):
            pts = scored[outside]
            rows = np.zeros(len(outside), np.intp)
            classes = self.classify(pose[None], rows, outside, pts,
                                    self.entry_depth_mm(pose[None]), frame)
            per = _per_direction(d[outside], classes, np.zeros(len(outside), np.intp), 1)[0]
            by_dir = {k: float(v) for k, v in zip(DIRECTIONS, per, strict=True)}
            worst = tuple(pts[int(np.argmax(d[outside]))])
        min_distance, closest = {}, {}
        for name, sampler in self.maps.criticals.items():
            values = sampler(everything)
            i = int(np.argmin(values))
            min_distance[name], closest[name] = float(values[i]), tuple(everything[i])
        return ImplantScore(
            breach_mm=float(d[outside].max()) if len(outside) else 0.0,
            breach_by_direction_mm=by_dir,
            grade=gertzbein_grade(max(by_dir[k] for k in GRADED)),
            min_distance_mm=min_distance, closest_lps=closest,
            hu_share_pct=self.hu_shares(scored), worst_breach_lps=worst)

    def hu_shares(self, scored_lps: np.ndarray) -> dict[str, float]:
        """Area-weighted % of the scored surface per HU band (NaN when the image is not CT)."""
        if not self.maps.is_ct:
            return {k: float("nan") for k in HU_BANDS}
        hu = self.maps.hu(scored_lps)
        total = self._weights.sum()
        return {k: float(100.0 * self._weights[(hu >= lo) & (hu < hi)].sum() / total)
                for k, (lo, hi) in HU_BANDS.items()}


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
    """The smallest of several exact mesh distance functions (a union of structures)."""

    def __init__(self, functions: list[Any]) -> None:
        self.functions = functions

    def __call__(self, points_lps: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_lps, float)
        flat = pts.reshape(-1, 3)
        out = np.full(len(flat), np.inf)
        for fn in self.functions:
            out = np.minimum(out, _evaluate(fn, flat))
        return out.reshape(pts.shape[:-1])


def exact_score(context: SimulationContext, live: LiveScorer, pose: np.ndarray,
                faces: np.ndarray) -> ImplantScore:
    """Point-to-mesh signed distances at the vertices and face centres (the release check)."""
    probes = live.probes
    pose = np.asarray(pose, float)
    centres_mm = probes.points_mm[faces].mean(axis=1)
    points_mm = np.vstack([probes.points_mm, centres_mm])
    tri = probes.points_mm[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals_mm = np.vstack([probes.normals_mm, face_n / np.maximum(
        np.linalg.norm(face_n, axis=1, keepdims=True), 1e-12)])
    scored = np.concatenate([probes.scored, probes.scored[faces].all(axis=1)])
    points = apply_pose_points(pose, points_mm)
    frame = live._frame(pose)
    functions = [live.maps.mesh_function(n) for n in live.maps.bone_names]
    bone = _MinDistance([f for f in functions if f is not None])
    sp, smm, snorm = points[scored], points_mm[scored], normals_mm[scored]
    sd = live.maps.bone(sp)  # exact where it matters: near or outside the bone surface
    near = sd > -NEAR_MM
    sd[near] = bone(sp[near])
    outside = np.flatnonzero(sd > live.tolerance_mm)
    by_dir = dict.fromkeys(DIRECTIONS, 0.0)
    if len(outside):
        rows = np.zeros(len(outside), np.intp)
        classes = live.classify(pose[None], rows, outside, sp[outside],
                                live.entry_depth_mm(pose[None], bone), frame,
                                normals_mm=snorm, points_mm=smm)
        per = _per_direction(sd[outside], classes, rows, 1)[0]
        by_dir = {k: float(v) for k, v in zip(DIRECTIONS, per, strict=True)}
    min_distance, closest = {}, {}
    for s in live.maps.critical:
        fn = live.maps.mesh_function(s.name)
        d = live.maps.criticals[s.name](points)
        near = d < d.min() + NEAR_MM
        if fn is not None:
            d[near] = _evaluate(fn, points[near])
        i = int(np.argmin(d))
        min_distance[s.name], closest[s.name] = float(d[i]), tuple(points[i])
    worst = tuple(sp[outside][int(np.argmax(sd[outside]))]) if len(outside) else None
    return ImplantScore(
        breach_mm=float(sd[outside].max()) if len(outside) else 0.0,
        breach_by_direction_mm=by_dir,
        grade=gertzbein_grade(max(by_dir[k] for k in GRADED)), min_distance_mm=min_distance,
        closest_lps=closest, hu_share_pct=live.hu_shares(points[: len(probes.points_mm)]
                                                         [probes.scored]),
        worst_breach_lps=worst, method="mesh")
