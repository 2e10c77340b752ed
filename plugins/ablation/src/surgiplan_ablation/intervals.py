"""95 % intervals of the ablation metrics, with every stated error source.

* A quantity of the placed probe (margin, coverage, volumes, clearances) gets a **prediction**
  interval: the 2.5th-97.5th percentiles of its values over the compound draws (montecarlo.py:
  placement, zone size, boundary and discretisation errors, with the SDs' own uncertainty).
* A probability (e.g. P(margin >= 5 mm)) is a number computed *from* the error model, so its
  interval is a **confidence** interval for that number. It is uncertain because (a) it is
  estimated from a finite number of draws, (b) the SDs it is computed with are themselves
  estimates (log-normal SD factors, evidence.py) and (c) the margin is measured on a voxel grid
  (a discretisation offset uniform within half a voxel). We draw ``worlds`` plausible error
  models (SD factors and a discretisation offset), re-weight the same draws to each world
  (importance weights, exact for Gaussian errors whose SD is scaled), and take the 2.5th and
  97.5th percentiles of a Jeffreys Beta posterior per world (its effective sample size carries
  the Monte Carlo noise). The point value is the predictive probability (over all draws).

Draws whose inputs leave the image are failed: they count in ``failed_draw_share``; a metric
with more than :data:`MAX_FAILED_SHARE` of failed draws is not assessable.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

from surgiplan_ablation.montecarlo import HyperModel, ZoneDraws

WORLDS = 400
MAX_FAILED_SHARE = 0.01
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def prediction95(values: np.ndarray, value: float, *, floor: float | None = None,
                 ceiling: float | None = None) -> tuple[float, float]:
    """2.5th-97.5th percentiles of the finite ``values``, widened to hold ``value``.

    A quantity bounded by ``floor`` / ``ceiling`` (a volume >= 0, a coverage <= 100 %) often
    sits exactly on the bound; when at least 2.5 % of the draws do, the interval is one-sided
    (the bound and the 5th / 95th percentile), so that it still holds 95 % and not 97.5 %.
    """
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    low, high = np.percentile(finite, [2.5, 97.5])
    if ceiling is not None and np.mean(finite >= ceiling) >= 0.025:
        low, high = np.percentile(finite, 5.0), ceiling
    elif floor is not None and np.mean(finite <= floor) >= 0.025:
        low, high = floor, np.percentile(finite, 95.0)
    return (float(min(low, value)), float(max(high, value)))


def _log_density(r2: np.ndarray, d: int, lam: np.ndarray) -> np.ndarray:
    """log of ``lam^-d exp(-r2 / (2 lam^2))`` for draws (n,) and SD factors (m,) -> (n, m)."""
    lam = np.asarray(lam, float)[None, :]
    return -d * np.log(lam) - r2[:, None] / (2 * lam * lam)


def _log_weights(draws: ZoneDraws, hyper: HyperModel, lam: np.ndarray, ok: np.ndarray
                 ) -> np.ndarray:
    """log importance weights (n_ok, worlds) of each draw under each world's SD factors."""
    out = np.zeros((int(ok.sum()), lam.shape[1]))
    for g, (x, s) in enumerate(zip(draws.std, hyper.log_sds(), strict=True)):
        if s <= 0 or not draws.active[g]:
            continue
        r2 = np.einsum("ij,ij->i", x[ok], x[ok])
        d = x.shape[1]
        mix = _log_density(r2, d, np.exp(s * _NODES))
        log_mix = np.log(np.exp(mix - mix.max(1, keepdims=True)) @ _WEIGHTS) \
            + mix.max(1)
        out += _log_density(r2, d, lam[g]) - log_mix[:, None]
    return out


def probability95(raw: np.ndarray, threshold: float, draws: ZoneDraws, hyper: HyperModel, *,
                  seed: int, worlds: int = WORLDS) -> tuple[float, tuple[float, float]]:
    """P(value >= threshold) and its 95 % confidence interval (see the module docstring).

    ``raw`` (n,) the metric per draw *without* its discretisation offset (NaN: failed draw).
    """
    raw = np.asarray(raw, float)
    ok = np.isfinite(raw)
    m = raw[ok]
    p = float(np.mean(m + draws.disc_mm[ok] >= threshold))
    rng = np.random.default_rng(seed + 7919)
    lam = np.exp(rng.normal(size=(3, worlds)) * hyper.log_sds()[:, None])
    shift = rng.uniform(-hyper.half_voxel_mm, hyper.half_voxel_mm, worlds)
    logw = _log_weights(draws, hyper, lam, ok)
    w = np.exp(logw - logw.max(0, keepdims=True))
    hits = (m[:, None] + shift[None, :]) >= threshold
    total = w.sum(0)
    p_world = (w * hits).sum(0) / total
    n_eff = total ** 2 / (w * w).sum(0)
    samples = beta.rvs(p_world * n_eff + 0.5, (1 - p_world) * n_eff + 0.5, random_state=rng)
    low, high = np.percentile(samples, [2.5, 97.5])
    low = 0.0 if p == 0.0 else float(low)
    high = 1.0 if p == 1.0 else float(high)
    return p, (min(low, p), max(high, p))
