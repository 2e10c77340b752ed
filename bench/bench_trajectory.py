"""Trajectory scoring kernel and full-scalp safest-path search on the head phantom.

Figures (same run, ratios to bare-library baselines):

* ``kernel_vs_bandwidth_limit``: time of the compiled kernel for all scalp paths over the time
  the memory-bandwidth limit allows. The limit: each of the 161 samples of a path touches 4
  cache lines (2 z-planes x 2 rows; the x pair is contiguous) = 161 x 4 x 64 B per path, read
  at the streaming bandwidth ``numpy.sum`` reaches on a 400 MB array in this run. Goal: the
  kernel reaches 0.4 M paths/s where the limit is 0.67 M/s -> ratio <= 1.675.
* ``kernel_vs_numpy_gather``: kernel time over plain numpy trilinear gathers
  (``sample_volume``) scoring the same paths.
* ``kernel_s_per_million_paths``: seconds per million paths (goal 2.5 = 0.4 M/s).
* ``search_full_scalp_s``: full-scalp search (every outer-skin vertex, warm caches: distance
  maps and skin surface are the twin's cached data) in seconds; goal < 1 s.
* ``live_rescore_ms``: one trajectory with 1000 Monte Carlo draws (goal < 30 ms).
"""

from __future__ import annotations

import numpy as np

from bench.timing import best_time
from surgiplan.phantoms import make_phantom
from surgiplan.processing.distance import sample_volume
from surgiplan.simulation import (
    PathSearchRequest,
    SimulationContext,
    TrajectoryInput,
    UncertaintyModel,
    load_simulator,
)
from surgiplan.twin import Twin

TARGET_LPS = (-28.0, 20.0, 42.0)
BYTES_PER_PATH = 161 * 4 * 64




def run() -> list[dict]:
    from surgiplan_trajectory.kernel import lps_to_zyx_matrix, score_paths
    from surgiplan_trajectory.search import combined_critical_map, outer_skin

    volume, segmentation, _ = make_phantom("head")
    context = SimulationContext(Twin(volume, segmentation))
    sim = load_simulator("trajectory")
    params = sim.spec.defaults()
    request = PathSearchRequest(target_lps=TARGET_LPS)
    sim.search(context, request, params)  # warm: maps, skin surface, compiled code
    ids, _ = outer_skin(context, "scalp")
    entries = context.surface("scalp").vertices_lps[ids]
    dist = combined_critical_map(context)
    m = lps_to_zyx_matrix(context.geometry)
    n = len(entries)

    big = np.ones(100_000_000, np.float32)
    bandwidth = big.nbytes / best_time(big.sum)
    del big
    limit_s = n * BYTES_PER_PATH / bandwidth
    kernel_s = best_time(lambda: score_paths(dist, m, entries, TARGET_LPS, radius_mm=0.4,
                                         band_mm=10.0))
    sub = entries[:: max(1, n // 5000)]
    t = np.linspace(0, 1, 161)[None, :, None]
    gather_s = best_time(lambda: sample_volume(
        dist, context.geometry, sub[:, None] + t * (np.asarray(TARGET_LPS) - sub)[:, None]
    ).min(axis=1), repeats=1) * n / len(sub)
    search_s = best_time(lambda: sim.search(context, request, params))
    inputs = TrajectoryInput(entry_lps=(-70.0, 20.0, 60.0), target_lps=TARGET_LPS)
    model = UncertaintyModel(samples=1000)
    live_s = best_time(lambda: sim.run(context, inputs, params, uncertainty=model), repeats=5)
    rate = n / kernel_s
    return [
        {"name": "kernel_vs_bandwidth_limit", "value": kernel_s / limit_s, "unit": "x",
         "goal": 0.67 / 0.4, "detail": f"{rate / 1e6:.2f} M paths/s vs limit "
         f"{n / limit_s / 1e6:.2f} M/s ({bandwidth / 1e9:.1f} GB/s), {n} paths x 161 samples"},
        {"name": "kernel_vs_numpy_gather", "value": kernel_s / gather_s, "unit": "x",
         "goal": 0.125, "detail": f"numpy gathers {n / gather_s / 1e3:.0f} k paths/s"},
        {"name": "kernel_s_per_million_paths", "value": 1e6 / rate, "unit": "s", "goal": 2.5},
        {"name": "search_full_scalp_s", "value": search_s, "unit": "s", "goal": 1.0,
         "detail": f"{n} candidate entries, warm twin caches"},
        {"name": "live_rescore_ms", "value": live_s * 1000, "unit": "ms", "goal": 30.0,
         "detail": "3 critical structures, 1000 Monte Carlo draws"},
    ]
