"""Why the spine cohort places few screws: each twin's L4 suggestion against the analytic truth.

    .venv/bin/python bench/diag_spine_suggest.py [--twins 50] [--spacing 1.6]

For every generated spine twin (the cohort tests' grid: a 130 x 120 x 110 mm field) the
implant plug-in's auto-suggest runs on L4 left; when its canal check refuses the screw, the
sample points it found in the canal are classified with the phantom's exact signed distance
to L4 (> 0: outside the true bone, a real encroachment; <= 0: inside the true bone, a
false alarm of the voxel grid), and counted under three canal tests: the nearest voxel (the
plug-in's test until it took the next one), the canal's trilinear signed distance < 0 (the
plug-in's test now: ``vertebra.canal_distance_mm``), and < -h/2 (h: the largest spacing).
Prints one line per twin and the totals.
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

import numpy as np
import surgiplan_implant.vertebra as vertebra

from surgiplan.cohort.cohort import generated_refs, load_twin
from surgiplan.errors import BadInputError
from surgiplan.phantoms.variants import Variation, variant_spec
from surgiplan.processing.distance import signed_distance_roi
from surgiplan.simulation import SimulationContext, load_simulator

SEEN: dict[str, Any] = {}
_CHECK = vertebra.check_out_of_canal


def _screw_points(entry: np.ndarray, tip: np.ndarray, diameter_mm: float) -> np.ndarray:
    """The plug-in's canal-check sample points (3 radii x 12 angles every 0.5 mm), LPS mm."""
    axis = tip - entry
    length = float(np.linalg.norm(axis))
    d = axis / length
    e1, e2 = vertebra._perpendiculars(d)
    r = np.linspace(0.0, 0.5 * diameter_mm, 3)
    a = np.radians(np.arange(0.0, 360.0, 30.0))
    ring = (r[:, None, None] * (np.cos(a)[None, :, None] * e1
                                + np.sin(a)[None, :, None] * e2)).reshape(-1, 3)
    t = np.arange(0.0, length + 0.25, 0.5)
    return ((entry + t[:, None] * d)[:, None, :] + ring[None]).reshape(-1, 3)


def _spy(mask, geometry, entry, tip, diameter_mm, name):
    """Record the three canal tests and the truth, then run the plug-in's own check."""
    canal = vertebra.canal_mask(mask, geometry)
    points = _screw_points(entry, tip, diameter_mm)
    near = np.rint(geometry.lps_to_index(points)).astype(int)
    values, sub = signed_distance_roi(canal, geometry, margin_mm=4.0)
    inside = vertebra.GridSampler(values, sub, np.inf)(points)  # < 0 in the canal
    truth = SEEN["shape"].signed_distance(points)
    h = max(geometry.spacing_mm)
    for rule, hit in (("nearest voxel", canal[near[:, 2], near[:, 1], near[:, 0]]),
                      ("trilinear < 0", inside < 0), ("trilinear < -h/2", inside < -h / 2)):
        SEEN[rule] = (int(hit.sum()), float(truth[hit].max()) if hit.any() else None)
    return _CHECK(mask, geometry, entry, tip, diameter_mm, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--twins", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=1.6)
    args = parser.parse_args()
    vertebra.check_out_of_canal = _spy
    simulator = load_simulator("implant")
    totals: collections.Counter[str] = collections.Counter()
    for ref in generated_refs("spine", phantom="spine", count=args.twins,
                              spacing_mm=args.spacing, field_mm=[130.0, 120.0, 110.0]):
        v = dict(ref.variation or {})
        v["shift_lps"], v["field_mm"] = tuple(v["shift_lps"]), tuple(v["field_mm"])
        SEEN.clear()
        SEEN["shape"] = next(s.shape for s in variant_spec(Variation(**v)).structures
                             if s.name == "L4")
        try:
            s = simulator.suggest(SimulationContext(load_twin(ref)), "L4", "left")
            outcome = f"placed {s.screw_id.split(':')[-1]}"
            totals["placed"] += 1
        except BadInputError as exc:
            outcome = f"refused: {str(exc)[:48]}"
            totals["refused: " + str(exc)[:48]] += 1
            for rule in ("nearest voxel", "trilinear < 0", "trilinear < -h/2"):
                n, worst = SEEN.get(rule, (0, None))
                kind = "passes" if n == 0 else ("real" if worst is not None and worst > 0
                                                else "false alarm")
                totals[f"{rule}: {kind}"] += 1
        canal = {k: v for k, v in SEEN.items() if k != "shape"}
        print(ref.twin_id, f"scale {v['scale']:.3f}", outcome, canal, flush=True)
    for key, n in sorted(totals.items()):
        print(f"{n:3d}  {key}")


if __name__ == "__main__":
    main()
