"""Monte Carlo draws for ablation: probe placement and zone size (see simulator.py for the
sources of the defaults).

Per draw and per probe: the tip moves by an isotropic Gaussian error (per-axis SD
``target_sd_mm``), the shaft point by one of SD ``entry_sd_mm``; the zone's long and short
diameters are multiplied by independent factors ``1 + N(0, sd_long)`` and ``1 + N(0, sd_short)``
(floored at 0.2) and the centre's offset from the tip scales with the long axis. The tumour
boundary moves by one Gaussian offset per draw (SD ``boundary_sd_mm``).
"""

from __future__ import annotations

import numpy as np

from surgiplan.simulation import UncertaintyModel
from surgiplan_ablation.zone import ZoneBatch

MIN_SIZE_FACTOR = 0.2


def draw_zones(model: UncertaintyModel, tips: np.ndarray, shafts: np.ndarray,
               sizes: np.ndarray, *, sd_long: float, sd_short: float,
               spacing_mm: tuple[float, float, float]) -> tuple[ZoneBatch, np.ndarray]:
    """``model.samples`` perturbed composite zones and tumour-boundary offsets (mm).

    ``tips``/``shafts`` (k, 3) LPS mm; ``sizes`` (k, 3): long, short, tip offset (mm).
    """
    rng = np.random.default_rng(model.seed)
    n, k = int(model.samples), len(tips)
    tip = tips[None] + rng.normal(0.0, model.target_sd, (n, k, 3))
    shaft = shafts[None] + rng.normal(0.0, model.entry_sd, (n, k, 3))
    f_long = np.maximum(1.0 + rng.normal(0.0, sd_long, (n, k)), MIN_SIZE_FACTOR)
    f_short = np.maximum(1.0 + rng.normal(0.0, sd_short, (n, k)), MIN_SIZE_FACTOR)
    boundary = rng.normal(0.0, model.boundary_sd_for(spacing_mm), n)
    batch = ZoneBatch.from_probes(tip, shaft, sizes[None, :, 0] * f_long,
                                  sizes[None, :, 1] * f_short, sizes[None, :, 2] * f_long)
    return batch, boundary
