"""Independent reference values for the resection simulator, from the liver phantom's analytic
truth (``truth.json`` shapes) and its label map, with numpy/scipy only (no plug-in code).

* volumes: voxel centres of the liver's label on the removed side (the simulator's own count
  definition, recomputed) and the analytic volume by quasi-Monte Carlo over the truth shapes
  (the liver's label region = its shape minus every higher-priority shape);
* margin: the least analytic target distance where the specimen's boundary (the plane, or the
  analytic margin surface) crosses the segments between removed and remnant 6-neighbour voxel
  centres, or minus the depth of the deepest target voxel left in the remnant;
* vessel diameter: the largest disc inside the analytic section of the vessel by the cut
  plane (2-D Euclidean distance transform on a 0.1 mm grid of the plane).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import qmc

from surgiplan.simulation import SimulationContext
from surgiplan.twin import Twin
from tests.conftest import shared_phantom

OFFSET_MAX_MM = 8.0  # QMC points reach this far outside the liver (boundary offsets)


@dataclass(frozen=True)
class LiverCase:
    twin: Twin
    context: SimulationContext
    truth: object
    liver: np.ndarray  # label mask (nz, ny, nx)
    centres: np.ndarray  # LPS centres of the liver's label voxels
    voxel_ml: float


@functools.lru_cache(maxsize=1)
def liver_case() -> LiverCase:
    volume, segmentation, truth = shared_phantom("liver")
    twin = Twin(volume, segmentation)
    context = SimulationContext(twin)
    liver = segmentation.mask("liver")
    centres = context.geometry.index_to_lps(np.argwhere(liver)[:, ::-1])
    return LiverCase(twin, context, truth, liver, centres,
                     context.geometry.voxel_volume_mm3 / 1000.0)


def label_region_distance(truth, name: str, points: np.ndarray) -> np.ndarray:
    """max(d_name, -d_B) over every higher-priority shape B (exact sign; a distance where the
    offsets are small): the label region of ``name`` grown by ``e`` is ``{d < e}``."""
    d = truth.signed_distance_mm(name, points)
    order = truth.priority_order()
    for other in order[:order.index(name)]:
        shape = truth.structure(other).shape
        lo, hi = shape.bounds_lps()
        near = np.all((points > lo - OFFSET_MAX_MM) & (points < hi + OFFSET_MAX_MM), axis=1)
        near &= d < OFFSET_MAX_MM
        if near.any():
            d[near] = np.maximum(d[near], -shape.signed_distance(points[near]))
    return d


@dataclass(frozen=True)
class QmcLiver:
    """Sobol points near the liver with the label region's distance; ``cell_ml`` per point."""

    points: np.ndarray
    d_liver: np.ndarray
    cell_ml: float


@functools.lru_cache(maxsize=1)
def qmc_liver(log2_n: int = 18) -> QmcLiver:
    case = liver_case()
    lo = case.centres.min(0) - OFFSET_MAX_MM - 2
    hi = case.centres.max(0) + OFFSET_MAX_MM + 2
    points = qmc.scale(qmc.Sobol(3, seed=7).random_base2(log2_n), lo, hi)
    d = case.truth.signed_distance_mm("liver", points)
    keep = d < OFFSET_MAX_MM
    points, d = points[keep], label_region_distance(case.truth, "liver", points[keep])
    return QmcLiver(points, d, float(np.prod(hi - lo)) / 2 ** log2_n / 1000.0)


def plane_side(points: np.ndarray, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    return (np.asarray(points, float) - point) @ n


_BOX_POINTS: dict[tuple[int, str], tuple] = {}  # (id(case), target) -> (case, points)


def _box_points(case: LiverCase, target: str) -> tuple:
    """(target mask, liver | target mask, box low and high (z, y, x), LPS centres of the box's
    voxels): the same for every plan on ``target``, so computed once per case."""
    key = (id(case), target)
    if key not in _BOX_POINTS:
        _BOX_POINTS[key] = (case, _box_points_of(case, target))
    return _BOX_POINTS[key][1]


def _box_points_of(case: LiverCase, target: str) -> tuple:
    target_mask = case.twin.segmentation.mask(target)
    both = case.liver | target_mask
    idx = np.argwhere(both)
    lo, hi = idx.min(0) - 1, idx.max(0) + 2
    lo, hi = np.maximum(lo, 0), np.minimum(hi, both.shape)
    zyx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)],
                               indexing="ij"), -1).reshape(-1, 3)
    return target_mask, both, lo, hi, case.context.geometry.index_to_lps(zyx[:, ::-1])


def boundary_margin(case: LiverCase, target: str, g_fn, *, target_fn=None) -> float:
    """Margin on the specimen's boundary (module docstring). ``g_fn(points)`` > 0 inside the
    specimen region (the analytic rule); ``target_fn`` the target's distance (default: the
    analytic shape)."""
    target_fn = target_fn or (lambda p: case.truth.signed_distance_mm(target, p))
    target_mask, both, lo, hi, points = _box_points(case, target)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    g = g_fn(points).reshape(tuple(hi - lo))
    region = g > 0
    removed = region & both[box]
    remnant = ~region & case.liver[box]
    best = np.inf
    pts = points.reshape(tuple(hi - lo) + (3,))
    for axis in range(3):
        for a_mask, b_mask, flip in ((removed, remnant, False), (remnant, removed, True)):
            a = [slice(None)] * 3
            b = [slice(None)] * 3
            a[axis], b[axis] = slice(0, -1), slice(1, None)
            pair = a_mask[tuple(a)] & b_mask[tuple(b)]
            if not pair.any():
                continue
            pa, pb = pts[tuple(a)][pair], pts[tuple(b)][pair]
            ga, gb = g[tuple(a)][pair], g[tuple(b)][pair]
            if flip:
                pa, pb, ga, gb = pb, pa, gb, ga
            t = (ga / (ga - gb))[:, None]
            best = min(best, float(target_fn(pa + t * (pb - pa)).min()))
    left = (target_mask[box] & ~region).reshape(-1)
    if left.any():
        best = min(best, float(target_fn(points[left]).min()))
    return best


def section_diameter(truth, name: str, centre: np.ndarray, normal: np.ndarray, *,
                     half_mm: float = 20.0, step_mm: float = 0.1) -> float:
    """Diameter (mm) of the largest disc in the analytic section of ``name`` by the plane
    through ``centre`` with ``normal``, in the connected section piece nearest ``centre``."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    u = np.cross(n, np.eye(3)[int(np.argmin(np.abs(n)))])
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    ticks = np.arange(-half_mm, half_mm + step_mm / 2, step_mm)
    aa, bb = np.meshgrid(ticks, ticks, indexing="ij")
    points = centre + aa.reshape(-1, 1) * u + bb.reshape(-1, 1) * v
    inside = (label_region_distance(truth, name, points) < 0).reshape(aa.shape)
    labels, _ = ndimage.label(inside)
    if labels.max() == 0:
        return 0.0
    k = len(ticks) // 2
    pieces = np.argwhere(labels > 0)
    nearest = pieces[np.argmin(np.hypot(*(pieces - k).T))]
    piece = labels == labels[tuple(nearest)]
    return 2.0 * float(ndimage.distance_transform_edt(piece, sampling=step_mm).max())
