"""Monte Carlo draws for ablation: probe placement, zone size, segmentation boundary and
discretisation, with the uncertainty of the error model's own SDs (see evidence.py).

Per draw, each error group ``g`` (placement, zone size, tumour boundary) first draws its SD
factor ``lambda_g = exp(N(0, log_sd_g))`` (the SDs are estimates, known only so well), then:

* the tip moves by ``lambda_p target_sd x`` and the shaft point by ``lambda_p entry_sd x``
  (``x`` isotropic standard normal, per probe);
* the zone's long and short diameters are multiplied by ``1 + lambda_z sd x`` (floored at 0.2,
  the tip offset scales with the long axis);
* the tumour boundary moves by ``lambda_b boundary_sd x`` (one offset per draw) and each
  critical structure's by its own offset, **truncated** (redrawn) to ``|lambda_b x| <=``
  :data:`BOUNDARY_TRUNCATION_SD` nominal SDs and, for the tumour, to an inward move of at
  most :data:`MAX_SHRINK_SHARE` of its depth (the largest distance from an inside voxel to
  its surface). Why: the boundary error is the ambiguity of where a *visible* surface lies
  (the partial-volume layer, about one voxel -- one slice on thick-slice CT); it cannot move a
  whole surface by four slices, nor erase a lesion that is seen on the image. The untruncated
  compound law (a Gaussian whose SD is itself log-normal) has heavy tails: with a 3 mm slice
  one draw in 50 moved a 7.1 ml lesion's boundary by -11.7 mm and erased it. Truncation at
  2.5 SD keeps 98.8 % of the Gaussian's mass (the 95 % intervals are unchanged at the
  nominal SD); the importance weights (intervals.py) ignore the truncation's normalisation,
  an approximation within that mass;
* every surface also moves by a discretisation offset, uniform within half a voxel, for its
  distances (margins, clearances); a volume takes none (its voxel count averages the
  discretisation out over the surface, evidence.py).

The draws are therefore from the predictive (compound) distribution. ``std`` keeps each group's
standardised values (error / nominal SD) so that a probability can be re-weighted to any other
SD factor (importance weights, intervals.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surgiplan.simulation import UncertaintyModel
from surgiplan_ablation.evidence import BOUNDARY_TRUNCATION_SD, MAX_SHRINK_SHARE
from surgiplan_ablation.zone import ZoneBatch

MIN_SIZE_FACTOR = 0.2
GROUPS = ("placement", "zone_size", "tumour_boundary")


@dataclass(frozen=True)
class HyperModel:
    """Log-SDs of the SD factors (0: the SD is taken as exact) and the discretisation half-band.
    """

    placement_log_sd: float
    zone_log_sd: float
    boundary_log_sd: float
    half_voxel_mm: float

    def log_sds(self) -> np.ndarray:
        return np.array([self.placement_log_sd, self.zone_log_sd, self.boundary_log_sd])


@dataclass(frozen=True)
class ZoneDraws:
    """Perturbed zones and surface offsets (mm) of ``n`` draws.

    ``tumour_offset_mm`` (n,) boundary error of the tumour (grows it when > 0);
    ``disc_mm`` (n,) its discretisation offset; ``critical_offset_mm`` (n, c) boundary plus
    discretisation offsets of the critical structures; ``std`` the standardised values per
    group (list of (n, d) arrays, GROUPS order); ``active`` whether a group has any SD.
    """

    batch: ZoneBatch
    tumour_offset_mm: np.ndarray
    disc_mm: np.ndarray
    critical_offset_mm: np.ndarray
    std: tuple[np.ndarray, np.ndarray, np.ndarray]
    active: tuple[bool, bool, bool]

    def __len__(self) -> int:
        return len(self.batch)


def _factors(rng: np.random.Generator, n: int, log_sd: float) -> np.ndarray:
    return np.exp(rng.normal(0.0, log_sd, n)) if log_sd > 0 else np.ones(n)


def _bounded_normal(rng: np.random.Generator, lam: np.ndarray, low: np.ndarray,
                    high: np.ndarray) -> np.ndarray:
    """(n, m) values ``lam x`` (x standard normal) redrawn until within ``[low, high]`` (m,)
    (inverse-CDF sampling of the truncated normal, exact)."""
    from scipy.stats import norm

    scale = lam[:, None]
    a, b = norm.cdf(low[None, :] / scale), norm.cdf(high[None, :] / scale)
    u = rng.uniform(size=(len(lam), len(low)))
    return scale * norm.ppf(a + u * (b - a))


def draw_zones(model: UncertaintyModel, tips: np.ndarray, shafts: np.ndarray,
               sizes: np.ndarray, *, sd_long: float, sd_short: float, boundary_sd_mm: float,
               n_critical: int, hyper: HyperModel,
               tumour_depth_mm: float = np.inf) -> ZoneDraws:
    """``model.samples`` perturbed composite zones and surface offsets.

    ``tips``/``shafts`` (k, 3) LPS mm; ``sizes`` (k, 3): long, short, tip offset (mm);
    ``sd_long``/``sd_short`` relative SDs (fractions); ``boundary_sd_mm`` the boundary SD;
    ``tumour_depth_mm`` the tumour's depth (largest inside distance to its surface), which
    bounds its inward move (see the module docstring).
    """
    rng = np.random.default_rng(model.seed)
    n, k = int(model.samples), len(tips)
    lam = [_factors(rng, n, s) for s in hyper.log_sds()]
    x_place = rng.normal(size=(n, k, 6)) * lam[0][:, None, None]
    x_size = rng.normal(size=(n, k, 2)) * lam[1][:, None, None]
    high = np.full(1 + n_critical, BOUNDARY_TRUNCATION_SD)
    low = -high
    if boundary_sd_mm > 0:
        low[0] = max(low[0], -MAX_SHRINK_SHARE * tumour_depth_mm / boundary_sd_mm)
    x_bound = _bounded_normal(rng, lam[2], low, high)
    tip = tips[None] + model.target_sd * x_place[..., :3]
    shaft = shafts[None] + model.entry_sd * x_place[..., 3:]
    f_long = np.maximum(1.0 + sd_long * x_size[..., 0], MIN_SIZE_FACTOR)
    f_short = np.maximum(1.0 + sd_short * x_size[..., 1], MIN_SIZE_FACTOR)
    batch = ZoneBatch.from_probes(tip, shaft, sizes[None, :, 0] * f_long,
                                  sizes[None, :, 1] * f_short, sizes[None, :, 2] * f_long)
    h = hyper.half_voxel_mm
    disc = rng.uniform(-h, h, (n, 1 + n_critical))
    offsets = boundary_sd_mm * x_bound
    active = (model.target_sd > 0 or model.entry_sd > 0, max(sd_long, sd_short) > 0,
              boundary_sd_mm > 0)
    return ZoneDraws(batch, offsets[:, 0], disc[:, 0], offsets[:, 1:] + disc[:, 1:],
                     (x_place.reshape(n, -1), x_size.reshape(n, -1), x_bound[:, :1]), active)
