"""Independent implant scoring on the spine phantom: the metrics' stated definitions evaluated
on the analytic shapes of ``truth.json`` and on the label map / image with numpy, scipy and
trimesh, never through the implant plug-in's code.

Definitions (plugins/implant scoring.py docstring): signed distance + outside; scored part =
the shank (implant-frame z > 0); a scored point more than ``TOL_MM`` outside bone breaches;
its direction: anterior of the vertebra's centroid (label voxels) the vertebral body
(anterior, or superior / inferior where the nearest wall faces up / down), behind it the
dominant patient-axis component of the screw's surface normal (medial = towards x of the
centroid), or of the wall's normal when the screw's normal points along A-P; points with
implant z <= entry depth + offset + their distance from the axis are the entry (posterior).
Modified Gertzbein-Robbins grade from the largest non-posterior breach.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

TOL_MM = 0.3
DIRS = ("medial", "lateral", "superior", "inferior", "anterior", "posterior")
BONES = ("L3", "L4", "L5")
CRITICALS = ("nerve roots", "cauda equina", "aorta")


@dataclass
class Screw:
    """A screw in its own frame (mm) and a 4x4 pose to LPS."""

    vertices: np.ndarray
    faces: np.ndarray
    pose: np.ndarray

    @classmethod
    def from_input(cls, inputs) -> Screw:
        return cls(np.asarray(inputs.vertices_mm, float), np.asarray(inputs.faces, int),
                   np.asarray(inputs.pose, float))

    @property
    def length(self) -> float:
        return float(self.vertices[:, 2].max())


def surface_samples(screw: Screw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, outward normals, is-shank) in the implant frame: vertices and face centres."""
    mesh = trimesh.Trimesh(screw.vertices, screw.faces, process=False)
    points = np.vstack([mesh.vertices, mesh.triangles_center])
    normals = np.vstack([mesh.vertex_normals, mesh.face_normals])
    shank_v = mesh.vertices[:, 2] > 1e-6
    shank = np.concatenate([shank_v, shank_v[mesh.faces].all(axis=1)])
    return points, normals, shank


def vertex_areas(screw: Screw) -> np.ndarray:
    """Each vertex's third of its triangles' areas (mm^2)."""
    tri = screw.vertices[screw.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    out = np.zeros(len(screw.vertices))
    for k in range(3):
        np.add.at(out, screw.faces[:, k], area / 3.0)
    return out


def posed(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


class SpineTruth:
    """The spine phantom's analytic truth with its label map and image."""

    def __init__(self, truth, labels_zyx: np.ndarray, image_zyx: np.ndarray, geometry) -> None:
        self.truth = truth
        self.labels = labels_zyx
        self.image = image_zyx
        self.geometry = geometry
        self.bone_labels = {truth.structure(n).label: n for n in BONES}
        self._centroids: dict[str, np.ndarray] = {}

    def bone_sd(self, points: np.ndarray, near: str | None = None) -> np.ndarray:
        """Signed distance to the union of the vertebrae (min over them; ``near`` first, the
        others only where their bounding box is nearer than the running minimum)."""
        pts = np.asarray(points, float).reshape(-1, 3)
        names = [near] + [n for n in BONES if n != near] if near else list(BONES)
        out = np.full(len(pts), np.inf)
        for name in names:
            shape = self.truth.structure(name).shape
            lo, hi = shape.bounds_lps()
            gap = np.linalg.norm(np.maximum(lo - pts, 0) + np.maximum(pts - hi, 0), axis=1)
            sel = np.flatnonzero(gap < out)
            if sel.size:
                out[sel] = np.minimum(out[sel], shape.signed_distance(pts[sel]))
        return out.reshape(np.shape(points)[:-1])

    def bone_gradient(self, points: np.ndarray, near: str | None, h: float = 0.05,
                      at: np.ndarray | None = None) -> np.ndarray:
        """Central differences, or forward ones from the values ``at`` the points."""
        steps = np.eye(3) * h if at is not None else np.vstack([np.eye(3), -np.eye(3)]) * h
        values = self.bone_sd((points[:, None, :] + steps[None]).reshape(-1, 3), near)
        values = values.reshape(len(points), len(steps))
        if at is not None:
            return (values - at[:, None]) / h
        return (values[:, :3] - values[:, 3:]) / (2 * h)

    def critical_min(self, name: str, points: np.ndarray, nominal: np.ndarray,
                     reach_mm: float = 15.0) -> np.ndarray:
        """(n,) smallest signed distance of each row of ``points`` (n, p, 3: one pose per row)
        to a critical structure. Only points whose distance at the ``nominal`` (p, 3) pose is
        within ``reach_mm`` of its minimum are evaluated: the distance is 1-Lipschitz and no
        draw moves a point by half that (the placement SDs are 1.5 mm)."""
        shape = self.truth.structure(name).shape
        d0 = shape.signed_distance(nominal)
        keep = np.flatnonzero(d0 <= d0.min() + reach_mm)
        sub = points[:, keep].reshape(-1, 3)
        return shape.signed_distance(sub).reshape(len(points), -1).min(axis=1)

    def critical_sd(self, name: str, points: np.ndarray) -> np.ndarray:
        return self.truth.structure(name).shape.signed_distance(np.asarray(points, float))

    def _index(self, points: np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) voxel indices of LPS points (axis-aligned grid)."""
        g = self.geometry
        direction = np.asarray(g.direction, float).reshape(3, 3)
        return (np.asarray(points, float) - np.asarray(g.origin_lps)) @ direction / np.asarray(
            g.spacing_mm)

    def vertebra_of(self, points: np.ndarray) -> str | None:
        """The vertebra label holding most of the points (nearest voxel), from the label map."""
        ijk = np.rint(self._index(points)).astype(int)
        ok = np.all((ijk >= 0) & (ijk < np.asarray(self.labels.shape[::-1])), axis=1)
        values = self.labels[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
        values = [v for v in values if v in self.bone_labels]
        if not values:
            return None
        return self.bone_labels[int(np.bincount(values).argmax())]

    def centroid(self, name: str) -> np.ndarray:
        if name not in self._centroids:
            label = self.truth.structure(name).label
            zyx = np.argwhere(self.labels == label).mean(axis=0)
            g = self.geometry
            direction = np.asarray(g.direction, float).reshape(3, 3)
            self._centroids[name] = np.asarray(g.origin_lps) + direction @ (
                zyx[::-1] * np.asarray(g.spacing_mm))
        return self._centroids[name]

    def hu(self, points: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_image_f"):
            self._image_f = self.image.astype(float)
        ijk = self._index(points)
        return map_coordinates(self._image_f, ijk[:, ::-1].T, order=1, mode="nearest")


def _dominant(vectors: np.ndarray, side: np.ndarray) -> np.ndarray:
    """0..5 (DIRS) of each vector's dominant patient-axis component."""
    k = np.argmax(np.abs(vectors), axis=1)
    v = vectors[np.arange(len(vectors)), k]
    out = np.where(k == 0, np.where(v * side < 0, 0, 1),
                   np.where(k == 1, np.where(v > 0, 5, 4), np.where(v > 0, 2, 3)))
    return out.astype(int)


@dataclass
class PoseSamples:
    """What the metrics need of one pose: distances and wall classes of the shank samples,
    the entry depth, the axis samples' distances, the critical distances and HU shares."""

    d: np.ndarray  # (p,) bone signed distance of the shank samples
    classes: np.ndarray  # (p,) 0..5 ignoring the entry rule
    z: np.ndarray
    radial: np.ndarray
    z_entry: float
    axis_d: np.ndarray
    critical: dict[str, float]
    hu_shares: dict[str, float]


def sample_pose(spine: SpineTruth, screw: Screw, pose: np.ndarray, *, stride: int = 1,
                reach_mm: float = 5.0, with_hu: bool = True) -> PoseSamples:
    """Independent samples of one pose (see :class:`PoseSamples`)."""
    points, normals, shank = surface_samples(screw)
    local = points[shank][::stride]
    pts = posed(pose, local)
    nrm = normals[shank][::stride] @ pose[:3, :3].T
    near_name = spine.vertebra_of(pts)
    d = spine.bone_sd(pts, near_name)
    centre = spine.centroid(near_name) if near_name else pts.mean(axis=0)
    classes = np.full(len(pts), 5)
    sel = np.flatnonzero(d > TOL_MM - reach_mm)
    if sel.size:
        rel = pts[sel] - centre
        side = np.where(rel[:, 0] >= 0, 1.0, -1.0)
        wall = _dominant(spine.bone_gradient(pts[sel], near_name), side)
        cls = _dominant(nrm[sel], side)
        ap = (cls == 4) | (cls == 5)
        cls[ap] = wall[ap]
        body = rel[:, 1] < 0
        cls[body] = np.where((wall[body] == 2) | (wall[body] == 3), wall[body], 4)
        classes[sel] = cls
    zs = np.arange(0.0, screw.length + 1e-9, 0.1)
    axis_pts = posed(pose, np.stack([np.zeros_like(zs), np.zeros_like(zs), zs], axis=1))
    axis_d = spine.bone_sd(axis_pts, near_name)
    inside = np.flatnonzero(axis_d < 0)
    z_entry = float(zs[inside[0]]) if inside.size else 0.0
    everything = posed(pose, points[::stride])
    critical = {n: float(spine.critical_sd(n, everything).min()) for n in CRITICALS}
    shares = {}
    if with_hu:
        keep = screw.vertices[:, 2] > 1e-6
        hu = spine.hu(posed(pose, screw.vertices[keep]))
        w = vertex_areas(screw)[keep]
        for band, (lo, hi) in {"cortical": (250, np.inf), "cancellous": (130, 250),
                               "soft_tissue": (-np.inf, 130)}.items():
            shares[band] = float(100 * w[(hu >= lo) & (hu < hi)].sum() / w.sum())
    return PoseSamples(d, classes, local[:, 2], np.hypot(local[:, 0], local[:, 1]), z_entry,
                       axis_d, critical, shares)


def bone_scores(s: PoseSamples, offset_mm: float = 0.0) -> dict[str, float]:
    """Breach (max and per direction), graded breach, grade index and % of the shank axis in
    bone with the bone surface moved by ``offset_mm`` (+ = bone shrinks)."""
    d = s.d + offset_mm
    z_in = max(0.0, s.z_entry + offset_mm)
    classes = np.where(s.z <= z_in + s.radial, 5, s.classes)
    outside = d > TOL_MM
    out = {"breach_mm": float(d[outside].max()) if outside.any() else 0.0}
    for k, name in enumerate(DIRS):
        sel = outside & (classes == k)
        out[f"breach_{name}_mm"] = float(d[sel].max()) if sel.any() else 0.0
    graded = max(out[f"breach_{n}_mm"] for n in DIRS[:5])
    out["graded_mm"] = graded
    out["gertzbein_grade"] = 0.0 if graded <= 0 else float(min(4, 1 + int(graded // 2.0)))
    shank = s.axis_d[1:] + offset_mm
    out["bone_share_pct"] = float(100.0 * (shank < 0).mean())
    return out


def placement_draws(pose: np.ndarray, length: float, entry_sd: float, tip_sd: float, n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n, 4, 4) poses: head and tip moved by isotropic Gaussian errors (independent code)."""
    head = pose[:3, 3]
    tip = head + length * pose[:3, 2]
    heads = head + rng.normal(0, entry_sd, (n, 3))
    tips = tip + rng.normal(0, tip_sd, (n, 3))
    out = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        axis = (tips[i] - heads[i]) / np.linalg.norm(tips[i] - heads[i])
        rot, _ = Rotation.align_vectors([axis], [pose[:3, 2]])
        out[i, :3, :3] = rot.as_matrix() @ pose[:3, :3]
        out[i, :3, 3] = heads[i]
    return out


@functools.lru_cache(maxsize=1)
def spine_case():
    """(SimulationContext, SpineTruth) of the spine phantom; the truth read back from its
    ``truth.json`` form, the label map composed from the segmentation's masks. Built once per
    session: the implant agreement and coverage modules only read it."""
    import json
    import tempfile
    from pathlib import Path

    from surgiplan.phantoms.truth import load_truth
    from surgiplan.simulation import SimulationContext
    from surgiplan.twin import Twin
    from tests.conftest import shared_phantom

    image, seg, truth = shared_phantom("spine")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "truth.json"
        path.write_text(json.dumps(truth.to_json()), encoding="utf-8")
        truth = load_truth(path)
    labels = np.zeros(image.array.shape, np.int16)
    for s in truth.structures:
        labels[np.asarray(seg.mask(s.name))] = s.label
    return SimulationContext(Twin(image, seg)), SpineTruth(truth, labels, image.array,
                                                          image.geometry)


def pedicles(truth) -> list[tuple[str, float, np.ndarray, np.ndarray]]:
    """(vertebra, side +1 left / -1 right, centre LPS, unit axis pointing posterior) of every
    pedicle shape in the truth (the rotated elliptic cylinders)."""
    out = []
    for name in BONES:
        for child in truth.structure(name).shape.children:
            if child.kind == "elliptic_cylinder" and abs(child.centre_lps[0]) > 5:
                axis = child.axes[:, 2] * np.sign(child.axes[1, 2])
                out.append((name, float(np.sign(child.centre_lps[0])), child.centre_lps, axis))
    return out


def sample_poses(spine: SpineTruth, screw: Screw, poses: np.ndarray, *, stride: int = 1,
                 reach_mm: float = 4.0, axis_step_mm: float = 0.25,
                 critical_stride: int = 4) -> list[PoseSamples]:
    """:func:`sample_pose` of many poses at once (one vectorised evaluation; the vertebra and
    its centroid from the first pose)."""
    points, normals, shank = surface_samples(screw)
    local = points[shank][::stride]
    n, p = len(poses), len(local)
    rot, shift = poses[:, :3, :3], poses[:, None, :3, 3]
    pts = np.einsum("pj,nij->npi", local, rot) + shift
    nrm = np.einsum("pj,nij->npi", normals[shank][::stride], rot)
    near_name = spine.vertebra_of(pts[0])
    centre = spine.centroid(near_name) if near_name else pts[0].mean(axis=0)
    flat, flat_n = pts.reshape(-1, 3), nrm.reshape(-1, 3)
    d = spine.bone_sd(flat, near_name)
    classes = np.full(len(flat), 5)
    sel = np.flatnonzero(d > TOL_MM - reach_mm)
    if sel.size:
        rel = flat[sel] - centre
        side = np.where(rel[:, 0] >= 0, 1.0, -1.0)
        wall = _dominant(spine.bone_gradient(flat[sel], near_name, at=d[sel]), side)
        cls = _dominant(flat_n[sel], side)
        ap = (cls == 4) | (cls == 5)
        cls[ap] = wall[ap]
        body = rel[:, 1] < 0
        cls[body] = np.where((wall[body] == 2) | (wall[body] == 3), wall[body], 4)
        classes[sel] = cls
    d, classes = d.reshape(n, p), classes.reshape(n, p)
    zs = np.arange(0.0, screw.length + 1e-9, axis_step_mm)
    axis_local = np.stack([np.zeros_like(zs), np.zeros_like(zs), zs], axis=1)
    axis_d = spine.bone_sd((np.einsum("pj,nij->npi", axis_local, rot) + shift).reshape(-1, 3),
                           near_name).reshape(n, -1)
    everything = np.einsum("pj,nij->npi", points[::critical_stride], rot) + shift
    centre_pose = posed(np.mean(poses, axis=0), points[::critical_stride])  # ~ the nominal
    critical = {c: spine.critical_min(c, everything, centre_pose) for c in CRITICALS}
    keep = screw.vertices[:, 2] > 1e-6
    hu = spine.hu((np.einsum("pj,nij->npi", screw.vertices[keep], rot) + shift).reshape(-1, 3))
    hu = hu.reshape(n, -1)
    w = vertex_areas(screw)[keep]
    bands = {"cortical": (250, np.inf), "cancellous": (130, 250), "soft_tissue": (-np.inf, 130)}
    out = []
    for i in range(n):
        inside = np.flatnonzero(axis_d[i] < 0)
        shares = {b: float(100 * w[(hu[i] >= lo) & (hu[i] < hi)].sum() / w.sum())
                  for b, (lo, hi) in bands.items()}
        out.append(PoseSamples(d[i], classes[i], local[:, 2], np.hypot(local[:, 0], local[:, 1]),
                               float(zs[inside[0]]) if inside.size else 0.0, axis_d[i],
                               {c: float(critical[c][i]) for c in CRITICALS}, shares))
    return out


def grade_indices(samples: list[PoseSamples], offset_mm: float) -> np.ndarray:
    """(n,) modified Gertzbein-Robbins grade index (0..4) of each pose at a bone offset; the
    same definition as :func:`bone_scores`, vectorised over poses."""
    d = np.stack([s.d for s in samples]) + offset_mm
    classes = np.stack([s.classes for s in samples])
    z_in = np.maximum(0.0, np.array([s.z_entry for s in samples]) + offset_mm)
    entry = samples[0].z[None, :] <= z_in[:, None] + samples[0].radial[None, :]
    graded_points = (d > TOL_MM) & ~entry & (classes != 5)
    graded = np.where(graded_points, d, 0.0).max(axis=1)
    return np.where(graded <= 0, 0, np.minimum(4, 1 + np.floor(graded / 2.0)))
