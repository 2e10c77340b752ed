"""The implant's error model and Monte Carlo: placement draws, systematic boundary error,
95 % intervals that carry both.

Error sources (zero-mean Gaussian, independent; mm):

* **placement**: head (entry) and tip each move by an isotropic 3D error, per-axis SDs
  ``entry_sd_mm`` / ``target_sd_mm`` (default :data:`PEDICLE_SCREW_PROFILE`); one draw per
  Monte Carlo sample.
* **systematic boundary error** of the twin: the bone and each critical structure's surface
  sits off by one unknown offset along its normal (segmentation error, SD ``boundary_sd_mm``,
  default one voxel) plus the grid's discretisation (voxelisation, uniform over +-half a
  voxel: SD ``h / sqrt(12)``); together ``s = sqrt(boundary_sd^2 + (h / sqrt 12)^2)``. It is
  the same for every placement of this screw in this twin: it is not averaged away.

Intervals (``IntervalKind``):

* values (breach, distances, grade, shares): **prediction** intervals, the 2.5-97.5th
  percentiles over draws that each carry a placement error *and* a boundary offset ~ N(0, s):
  where the placed screw's true value will lie.
* probabilities (P(grade >= C), P(breach)): **confidence** intervals for the true probability
  over placement error given the twin's unknown systematic offset e ~ N(0, s): the probability
  is evaluated at 40 equal-mass quantiles of e (common random placement draws), and the
  interval is the shortest range of those values holding 95 % of e's mass, each end widened for
  Monte Carlo noise (its Wilson 95 % half-width added in quadrature to the systematic
  half-width). The point value is the **predictive** probability ``k / n``: the share of the
  draws that carry both a placement error and their own systematic offset -- the very draws
  the value intervals come from, so a grade interval reaching C or worse implies P(>= C) > 0.
  (It was the probability at e = 0, which reads 0 while the grade interval reaches D whenever
  the boundary error, not placement, drives the breach -- e.g. 3 mm CT slices.) The interval
  also holds that estimate's Clopper-Pearson 95 % interval (``scipy.stats.binomtest``), failed
  draws counted as misses for its lower and as hits for its upper end. A wide interval (up to
  [0, 1]) says the twin's boundary is too uncertain to tell: at e = -1.96 s every screw near a
  wall breaches, at +1.96 s none does.
* draws off the image grid cannot be scored: their share is reported; above
  :data:`MAX_FAILED_SHARE` the metric is not assessable, below it the interval is widened as
  if every failed draw fell on the far side of each bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, norm

from surgiplan.progress import CancelToken, ProgressCallback, check, report
from surgiplan.simulation import UncertaintyModel
from surgiplan.simulation.uncertainty import ErrorProfile, draw_placements, probability95
from surgiplan_implant.pose import apply_pose, poses_from_axes
from surgiplan_implant.scoring import BatchScores, LiveScorer, RawDraws

MC_PROBE_POINTS = 800  # probe points per Monte Carlo draw (every k-th vertex)
MC_CHUNK = 100
MAX_FAILED_SHARE = 0.025  # more failed draws than an interval's tail: not assessable
N_QUANTILES = 40  # equal-mass quantiles of the systematic offset (2.5 % each)
# the quantiles, in units of the systematic SD
OFFSET_QUANTILES = norm.ppf((np.arange(N_QUANTILES) + 0.5) / N_QUANTILES)

ROBOTIC_726_SCREWS = (
    "A quantitative accuracy assessment of the use of a rigid robotic arm in navigated "
    "placement of 726 pedicle screws. BMC Surgery 2022;22. doi:10.1186/s12893-022-01838-y "
    "(127 patients, lumbosacral, CT-planned robot-guided navigated placement)")


def _rms_sd(mean_mm: float, sd_mm: float) -> float:
    """Per-axis SD of an isotropic 3D Gaussian with the published mean +- SD of the
    Euclidean error: E|x|^2 = mean^2 + sd^2 = 3 sigma^2."""
    return round(math.sqrt((mean_mm ** 2 + sd_mm ** 2) / 3.0), 2)


PEDICLE_SCREW_PROFILE = ErrorProfile(
    name="navigated robot-guided pedicle screws (726 screws, BMC Surg 2022)",
    entry_sd_mm=_rms_sd(2.2, 1.4),  # 1.51 mm: tail (screw head) offset 2.2 +- 1.4 mm
    target_sd_mm=_rms_sd(1.9, 1.5),  # 1.40 mm: tip offset 1.9 +- 1.5 mm
    source=ROBOTIC_726_SCREWS,
    derivation=(
        "published offset from the preoperative plan to the final screw (postoperative CT), "
        "Euclidean, mean +- SD: tail (head, our entry) 2.2 +- 1.4 mm, tip 1.9 +- 1.5 mm. "
        "For an isotropic 3D Gaussian E|x|^2 = 3 sigma^2, so sigma = sqrt((mean^2 + SD^2) / "
        "3): entry 1.51 mm, tip 1.40 mm per axis. The second moment is used because the "
        "published SD/mean (0.64-0.79) exceeds a Maxwell law's 0.42 (heavier tails than a "
        "Gaussian); sigma = mean / 1.596 would give 1.38 / 1.19 mm. Robot-guided navigated "
        "placement: freehand or fluoroscopy-guided screws are less accurate, give their SDs "
        "with --entry-sd-mm / --target-sd-mm."),
)


def discretisation_sd_mm(spacing_mm: tuple[float, float, float]) -> float:
    """SD (mm) of the voxelisation error of a label-map boundary: uniform over +-h/2."""
    return float(max(spacing_mm)) / math.sqrt(12.0)


def systematic_sd_mm(model: UncertaintyModel, spacing_mm: tuple[float, float, float]) -> float:
    """SD (mm) of the twin's systematic boundary offset: segmentation and discretisation."""
    return math.hypot(model.boundary_sd_for(spacing_mm), discretisation_sd_mm(spacing_mm))


@dataclass
class MonteCarlo:
    """The draws of one run: ``raw`` samples, ``values`` (scores with a boundary offset
    ~ N(0, s) per draw), ``nominal`` (offset 0) and ``quantiles`` (every draw at each of
    :data:`OFFSET_QUANTILES` x s, for the bone and each critical structure), ``poses``."""

    raw: RawDraws
    values: BatchScores
    nominal: BatchScores
    quantiles: list[BatchScores]
    poses: np.ndarray
    systematic_sd_mm: float

    @property
    def failed(self) -> np.ndarray:
        return self.raw.failed

    @property
    def failed_share(self) -> float:
        return float(self.failed.mean()) if len(self.failed) else 0.0


def placement_poses(live: LiveScorer, pose: np.ndarray, model: UncertaintyModel,
                    seed_offset: int = 0) -> np.ndarray:
    """(n, 4, 4) poses with the head and the shank's end moved by the placement errors."""
    axis_end = np.array([0.0, 0.0, max(1.0, float(live.probes.points_mm[:, 2].max()))])
    head, tip = pose[:3, 3], apply_pose(pose, axis_end)
    seeded = UncertaintyModel(entry_sd_mm=model.entry_sd, target_sd_mm=model.target_sd,
                              boundary_sd_mm=0.0, samples=model.samples,
                              seed=int(model.seed) + seed_offset)
    draws = draw_placements(seeded, head, tip, n_structures=0,
                            spacing_mm=live.maps.geometry.spacing_mm)
    return poses_from_axes(draws.entries, draws.targets, pose)


def run_monte_carlo(live: LiveScorer, pose: np.ndarray, model: UncertaintyModel,
                    progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> MonteCarlo:
    """Grid samples of ``model.samples`` placements and their scores (see module doc)."""
    spacing = live.maps.geometry.spacing_mm
    s = systematic_sd_mm(model, spacing)
    poses = placement_poses(live, pose, model)
    stride = max(1, len(live.probes.points_mm) // MC_PROBE_POINTS)
    live._frame(pose)
    parts = []
    for start in range(0, len(poses), MC_CHUNK):
        check(cancel)
        report(progress, 0.4 + 0.5 * start / len(poses), "Monte Carlo")
        parts.append(live.raw(poses[start:start + MC_CHUNK], stride=stride, frame=live.frame,
                              reach_mm=max(6.0, 5.0 * s)))
    raw = RawDraws(*(np.concatenate([getattr(p, f) for p in parts]) if f not in
                     ("axis_z", "points_z", "points_radial") else getattr(parts[0], f)
                     for f in RawDraws.__dataclass_fields__))
    rng = np.random.default_rng([int(model.seed), 7])
    k = raw.critical.shape[1]
    offsets = rng.normal(0.0, s, (len(poses), 1 + k))
    tol = live.tolerance_mm
    values = raw.scores(offsets[:, 0], tol)
    values.min_distance = values.min_distance + offsets[:, 1:]
    nominal = raw.scores(0.0, tol)
    quantiles = [raw.scores(e, tol) for e in s * OFFSET_QUANTILES]
    for batch, e in zip(quantiles, s * OFFSET_QUANTILES, strict=True):
        batch.min_distance = batch.min_distance + e
    return MonteCarlo(raw, values, nominal, quantiles, poses, s)


def value_interval(values: np.ndarray) -> tuple[float, float] | None:
    """2.5-97.5th percentiles of all draws (NaN = failed: the bounds move outward as if
    every failed draw lay beyond them); ``None`` when over :data:`MAX_FAILED_SHARE` failed."""
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    failed = 1.0 - finite.size / max(1, values.size)
    if finite.size == 0 or failed > MAX_FAILED_SHARE:
        return None
    lo_q = max(0.0, (0.025 - failed) / (1.0 - failed))
    hi_q = min(1.0, 0.975 / (1.0 - failed))
    low, high = np.quantile(finite, [lo_q, hi_q])
    return float(low), float(high)


def probability_interval(predictive: np.ndarray, quantiles: list[np.ndarray],
                         failed: np.ndarray) -> tuple[float, tuple[float, float]] | None:
    """(point, 95 % confidence interval) of a probability: ``predictive`` hits (n,) of the
    draws with their own systematic offset (point ``k / n``), ``quantiles`` hits at each
    equal-mass offset quantile (see module doc); failed draws count as misses for the lower
    bound and hits for the upper."""
    if failed.mean() > MAX_FAILED_SHARE or failed.all():
        return None
    ok = ~failed
    k, n = int((predictive & ok).sum()), int(ok.sum())
    p = k / n
    cp_low = binomtest(k, n).proportion_ci(0.95, method="exact").low
    cp_high = binomtest(k + int(failed.sum()), len(failed)).proportion_ci(
        0.95, method="exact").high
    rates = np.array([(h & ok).sum() for h in quantiles])
    order = np.argsort(rates, kind="stable")
    keep = math.ceil(0.95 * len(quantiles))
    spans = rates[order[keep - 1:]] - rates[order[: len(order) - keep + 1]]
    a = int(np.argmin(spans))
    lo_hits = quantiles[order[a]] & ok
    hi_hits = quantiles[order[a + keep - 1]] | failed
    p_lo, (w_lo, _) = probability95(lo_hits)
    p_hi, (_, w_hi) = probability95(hi_hits)
    half = 0.5 * (p_hi - p_lo)  # systematic half-width; Monte Carlo noise adds in quadrature
    low = p_lo - (math.hypot(half, p_lo - w_lo) - half)
    high = p_hi + (math.hypot(half, w_hi - p_hi) - half)
    return p, (max(0.0, min(low, cp_low, p)), min(1.0, max(high, cp_high, p)))


def other_poses(other_pose: np.ndarray, other_vertices: np.ndarray, model: UncertaintyModel,
                n: int, seed_offset: int) -> np.ndarray:
    """(n, 4, 4) placement draws of another implant (same error model, its own seed)."""
    axis_end = np.array([0.0, 0.0, max(1.0, float(np.asarray(other_vertices)[:, 2].max()))])
    head, tip = other_pose[:3, 3], apply_pose(other_pose, axis_end)
    seeded = UncertaintyModel(entry_sd_mm=model.entry_sd, target_sd_mm=model.target_sd,
                              boundary_sd_mm=0.0, samples=n, seed=int(model.seed) + seed_offset)
    draws = draw_placements(seeded, head, tip, n_structures=0, spacing_mm=(1.0, 1.0, 1.0))
    return poses_from_axes(draws.entries, draws.targets, other_pose)


def clearance_draws(mine: tuple[np.ndarray, np.ndarray], my_poses: np.ndarray,
                    other: tuple[np.ndarray, np.ndarray], their_poses: np.ndarray,
                    max_points: int = 500) -> np.ndarray:
    """(n,) signed mesh-to-mesh clearance (mm, negative = overlap) of two implants (meshes in
    their own frames) at paired poses: each one's surface points against the other's mesh."""
    from surgiplan_implant.collision import _dense_points, _signed_distances

    def one_way(a: Any, b: Any, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        pts = _dense_points(a)
        pts = pts[:: max(1, len(pts) // max_points)]
        rel = np.linalg.inv(pb) @ pa  # a's frame -> b's frame, per draw
        moved = np.einsum("pj,nij->npi", pts, rel[:, :3, :3]) + rel[:, None, :3, 3]
        return _signed_distances(moved.reshape(-1, 3), b).reshape(len(pa), -1).min(axis=1)

    return np.minimum(one_way(mine, other, my_poses, their_poses),
                      one_way(other, mine, their_poses, my_poses))
