"""Ablation zone scoring on the liver phantom (tumour 1).

Figures (same run):

* ``zones_1000_s``: the compiled kernel scoring 1,000 candidate zones (coverage, margin,
  critical volumes, heat sink) - the optimiser's inner step; goal < 1.5 s.
* ``kernel_vs_numpy``: kernel time over plain numpy doing the same per-zone work (inside tests
  of tumour and critical points, exact ellipsoid distance of the tumour-surface points with the
  phantoms' numpy ``Ellipsoid.signed_distance``), timed on 20 zones and scaled to 1,000.
* ``optimise_s``: ``optimise`` with 1,000 candidates and the Monte Carlo re-check of the top 3
  (300 draws each); goal < 5 s.
* ``live_rescore_ms``: one live nominal re-score while dragging (goal < 30 ms).
* ``run_mc1000_ms``: a full run with 1,000 Monte Carlo draws, paths not scored (goal < 1 s).
"""

from __future__ import annotations

import numpy as np

from bench.timing import best_time
from surgiplan.phantoms import make_phantom
from surgiplan.phantoms.primitives import Ellipsoid
from surgiplan.simulation import (
    AblationInput,
    SimulationContext,
    UncertaintyModel,
    load_simulator,
)
from surgiplan.twin import Twin

CENTRE = np.array([-65.0, -25.0, 20.0])




def _numpy_score(scene, batch, i: int) -> None:
    """The kernel's work for candidate ``i`` in plain numpy (one probe)."""
    c, u = batch.centres_lps[i, 0], batch.axes_lps[i, 0]
    a, b = batch.semi_long_mm[i, 0], batch.semi_short_mm[i, 0]
    for pts in (scene.tumour_lps, scene.critical_lps):
        d = pts - c
        t = d @ u
        _ = (t / a) ** 2 + (np.einsum("ij,ij->i", d, d) - t * t) / b ** 2 <= 1.0
    e1 = np.cross(u, np.eye(3)[int(np.argmin(np.abs(u)))])
    e1 /= np.linalg.norm(e1)
    zone = Ellipsoid(c, (b, b, a), np.column_stack([e1, np.cross(u, e1), u]))
    _ = -zone.signed_distance(scene.surface_lps).max()


def run() -> list[dict]:
    from surgiplan_ablation.kernel import score_zones
    from surgiplan_ablation.scene import build_scene
    from surgiplan_ablation.simulator import scene_roi
    from surgiplan_ablation.zone import ZoneBatch

    volume, segmentation, _ = make_phantom("liver")
    context = SimulationContext(Twin(volume, segmentation))
    sim = load_simulator("ablation")
    inputs = AblationInput(device_id="generic-microwave",
                           tip_lps=tuple(CENTRE + np.array([3, 4, 0])),
                           shaft_lps=tuple(CENTRE + np.array([-45, 4, 0])),
                           settings={"power_w": 100, "time_min": 10},
                           target_structure="tumour 1")
    rng = np.random.default_rng(0)
    n = 1000
    tips = CENTRE + rng.normal(0, 4, (n, 3)) + [10, 0, 0]
    dirs = rng.normal([1, 0, 0], 0.2, (n, 3))
    batch = ZoneBatch.from_probes(tips[:, None], (tips - 50 * dirs)[:, None],
                                  np.full((n, 1), 48.0), np.full((n, 1), 36.0),
                                  np.full((n, 1), 19.0))
    scene = build_scene(context, "tumour 1", scene_roi(context, "tumour 1", [batch]))
    zeros = np.zeros(n)
    score_zones(batch, zeros, scene)  # compile / warm
    kernel_s = best_time(lambda: score_zones(batch, zeros, scene))
    numpy_s = best_time(lambda: [_numpy_score(scene, batch, i) for i in range(20)], 2) * n / 20
    model = UncertaintyModel(samples=300)
    sim.optimise(context, inputs, uncertainty=model, top_k=3)  # warm
    optimise_s = best_time(lambda: sim.optimise(context, inputs, uncertainty=model, top_k=3), 2)
    scorer = sim.live_scorer(context)
    scorer.score(inputs)
    moves = [inputs.model_copy(update={"tip_lps": tuple(CENTRE + np.array([3 + 0.2 * k, 4, 0]))})
             for k in range(20)]
    live_ms = best_time(lambda: [scorer.score(m) for m in moves]) / len(moves) * 1000
    params = {"score_paths": False}
    run_ms = best_time(lambda: sim.run(context, inputs, {**sim.spec.defaults(), **params},
                                   uncertainty=UncertaintyModel(samples=1000))) * 1000
    detail = (f"{len(scene.tumour_lps)} tumour points, {len(scene.surface_lps)} surface points, "
              f"{len(scene.critical_lps)} critical voxels")
    return [
        {"name": "ablation.zones_1000_s", "value": kernel_s, "unit": "s", "goal": 1.5,
         "detail": detail},
        {"name": "ablation.kernel_vs_numpy", "value": kernel_s / numpy_s, "unit": "x",
         "goal": 0.1, "detail": f"kernel {kernel_s:.3f} s, numpy {numpy_s:.2f} s per 1000"},
        {"name": "ablation.optimise_s", "value": optimise_s, "unit": "s", "goal": 5.0,
         "detail": "1000 candidates + Monte Carlo re-check of the top 3 (300 draws)"},
        {"name": "ablation.live_rescore_ms", "value": live_ms, "unit": "ms", "goal": 30.0},
        {"name": "ablation.run_mc1000_ms", "value": run_ms, "unit": "ms", "goal": 1000.0},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
