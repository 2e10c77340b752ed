"""Implant live re-score on the spine phantom (a 6.5 x 45 mm pedicle screw, L4 left).

Figures (same run):

* ``live_rescore_ms``: one live drag re-score (grid breach per direction, grade, 3 critical
  clearances, HU shares) at a new pose; goal < 5 ms (the issue's budget).
* ``live_vs_bare_sampling``: that time over the bare library call doing the unavoidable part
  of the same work — ``scipy.ndimage.map_coordinates(order=1)`` sampling the bone, the three
  critical grids and the CT at the same vertices; goal <= 3 x.
* ``exact_check_ms``: the exact mesh check on release (point-to-triangle distances); goal
  < 1000 ms.
* ``monte_carlo_1000_s``: the full run's 1000 Monte Carlo draws on the grids; goal < 5 s.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from bench.timing import best_time
from surgiplan.phantoms import make_phantom
from surgiplan.simulation import SimulationContext, UncertaintyModel, load_simulator
from surgiplan.twin import Twin

AXIS = np.array([np.sin(np.radians(10.0)), np.cos(np.radians(10.0)), 0.0])
HEAD = np.array([15.0, 23.0, 0.0]) + 12.0 * AXIS





def _best(fn, repeats: int = 20) -> float:
    return best_time(fn, repeats)

def run() -> list[dict]:
    from surgiplan_implant.pose import apply_pose
    from surgiplan_implant.scoring import exact_score
    from surgiplan_implant.simulator import _monte_carlo

    image, seg, _ = make_phantom("spine")
    context = SimulationContext(Twin(image, seg))
    simulator = load_simulator("implant")
    inputs = simulator.screw_input("6.5x45", HEAD, HEAD - 45.0 * AXIS)
    live = simulator.live_scorer(context, inputs)
    pose = np.asarray(inputs.pose)
    moved = pose.copy()
    moved[:3, 3] += (0.3, -0.2, 0.1)
    live.score(pose)
    t_live = _best(lambda: live.score(moved))

    maps = live.maps
    grids = [maps.bone.array, *(s.array for s in maps.criticals.values()), maps.hu.array]
    zyx = context.geometry.lps_to_index(apply_pose(moved, live.probes.points_mm))[:, ::-1].T

    def bare() -> None:
        for grid in grids:
            map_coordinates(grid, zyx, order=1, mode="nearest")

    t_bare = _best(bare)
    faces = np.asarray(inputs.faces)
    exact_score(context, live, pose, faces)
    t_exact = _best(lambda: exact_score(context, live, moved, faces), repeats=3)
    model = UncertaintyModel(samples=1000)
    t_mc = _best(lambda: _monte_carlo(live, pose, model, None, None), repeats=2)
    n = len(live.probes.points_mm)
    return [
        {"name": "implant.live_rescore_ms", "value": t_live * 1e3, "unit": "ms", "goal": 5.0,
         "detail": f"{n} vertices, 1 bone + {len(maps.criticals)} critical grids + CT"},
        {"name": "implant.live_vs_bare_sampling", "value": t_live / t_bare, "unit": "x",
         "goal": 3.0, "detail": f"bare map_coordinates x{len(grids)}: {t_bare * 1e3:.2f} ms"},
        {"name": "implant.exact_check_ms", "value": t_exact * 1e3, "unit": "ms",
         "goal": 1000.0, "detail": "mesh distances where the grid is near a surface"},
        {"name": "implant.monte_carlo_1000_s", "value": t_mc, "unit": "s", "goal": 5.0,
         "detail": "1000 draws, every k-th vertex (<= 800 per draw)"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
