"""Cohort scaling benchmark: the same twins by a bare loop, and on Dask with 1 and 2 workers.

    .venv/bin/python bench/bench_cohort.py [--twins N] [--phantom liver|spine|head]
                                            [--repeats R] [--dask-default]

*overhead* = Dask with 1 worker / bare loop over the same function
(:func:`surgiplan.cohort.rows.run_twin`) in the same run (goal <= 1.1). The bare loop runs
in a plain spawned process (timed inside it), the Dask side is timed from the client (task
scheduling, result transfer and the Parquet parts included). Both sides run alternately
``R`` times (the machine is shared: the median ratio and the best of each side are printed);
the processes are started and warmed (plug-ins imported, one twin run) before the clock
starts. The CPU time (user + sys) and minor page faults of the bare loop's process and of the
worker processes are printed too, with their ratio (robust to the load of other processes):
they show where a gap comes from (e.g.
Dask's default ``MALLOC_TRIM_THRESHOLD_``, which ``--dask-default`` puts back for a third
side; :func:`surgiplan.cohort.runner.local_cluster` leaves it out). *speed-up* = 1 worker /
2 workers, bounded on a shared 2-core machine by what the other processes leave free. The
bare loop runs with the thread limits Dask gives its workers (OMP/MKL/OpenBLAS 1 thread).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as dask.distributed sets them in its workers

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from surgiplan.cohort.cohort import generated_refs  # noqa: E402
from surgiplan.cohort.rows import run_twin  # noqa: E402
from surgiplan.cohort.runner import local_cluster, read_rows, run_cohort  # noqa: E402
from surgiplan.cohort.templates import template_from_json  # noqa: E402

TEMPLATES = {
    "liver": ({"kind": "ablation", "samples": 4}, {"spacing_mm": 4.0}),
    "spine": ({"kind": "pedicle-screws", "levels": ["L4"], "sides": ["left"], "samples": 4,
               "exact_check": False}, {"spacing_mm": 1.6, "field_mm": [130, 120, 110]}),
    "head": ({"kind": "trajectory", "samples": 4}, {"spacing_mm": 4.0}),
}


def _usage() -> tuple[float, int]:
    """(user + sys CPU s, minor page faults) of the calling process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def _warm(template_json: dict, ref_json: dict) -> int:
    return len(run_twin(template_json, ref_json))


class Side:
    """One way of running the twins; ``runs`` holds (wall s, CPU s, page faults) per repeat."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: list[tuple[float, float, int]] = []
        self.task_s: list[float] = []  # sum of the in-task times (run_time_s) per repeat

    def best(self) -> tuple[float, float, int]:
        """The least of each figure over the repeats (least disturbed by other processes)."""
        walls, cpus, faults = zip(*self.runs, strict=True)
        return min(walls), min(cpus), min(faults)


def _loop(template_json: dict, refs_json: list[dict]) -> tuple[float, float, int]:
    """The bare loop, timed inside its process: (wall s, CPU s, page faults)."""
    cpu0, faults0 = _usage()
    t0 = time.perf_counter()
    for ref in refs_json:
        run_twin(template_json, ref)
    wall = time.perf_counter() - t0
    cpu1, faults1 = _usage()
    return wall, cpu1 - cpu0, faults1 - faults0


def _bare(pool, template, refs, side: Side) -> None:
    """The bare loop in a plain spawned process (as clean as a Dask worker's: no scheduler
    or nanny threads beside it)."""
    side.runs.append(pool.submit(_loop, template.to_json(), [r.to_json() for r in refs]
                                 ).result())


def _start(template, refs, workers: int, *, dask_default: bool = False):
    """A warmed local cluster (startup s, cluster)."""
    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    if dask_default:  # Dask's own worker environment (MALLOC_TRIM_THRESHOLD_=65536)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
    else:
        cluster = local_cluster(workers)
    v = refs[0].variation
    warm = generated_refs("warm", phantom=v["phantom"], count=1, first_seed=10_000,
                          spacing_mm=v["spacing_mm"], field_mm=v["field_mm"])[0]
    with Client(cluster) as client:  # import everything once on every worker
        client.run(_warm, template.to_json(), warm.to_json())
    return time.perf_counter() - t0, cluster


def _on_dask(template, refs, cluster, side: Side, out: Path) -> None:
    from dask.distributed import Client

    with Client(cluster) as client:
        before = client.run(_usage)
        t0 = time.perf_counter()
        run_cohort(template, refs, out, scheduler=cluster.scheduler_address, progress=False)
        wall = time.perf_counter() - t0
        after = client.run(_usage)
    cpu = sum(after[w][0] - before[w][0] for w in after)
    faults = sum(after[w][1] - before[w][1] for w in after)
    side.runs.append((wall, cpu, faults))
    times = {r["twin_id"]: r["run_time_s"] for r in read_rows(out)}
    side.task_s.append(sum(times.values()))


def measure(phantom: str = "liver", twins: int = 8, repeats: int = 2,
            dask_default: bool = False) -> dict:
    """Run the comparison; returns the figures (s, ratios) and prints a table."""
    tj, grid = TEMPLATES[phantom]
    template = template_from_json(tj)
    refs = generated_refs(phantom, phantom=phantom, count=twins, **grid)
    sides = {"bare": Side("bare loop"), "dask1": Side("dask 1 worker"),
             "dask2": Side("dask 2 workers")}
    if dask_default:
        sides["default"] = Side("dask 1 worker, Dask's default env")
    startup = {}
    clusters = {}
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        pool.submit(_warm, template.to_json(), refs[0].to_json()).result()
        for key, workers in (("dask1", 1), ("dask2", 2)):
            startup[key], clusters[key] = _start(template, refs, workers)
        if dask_default:
            startup["default"], clusters["default"] = _start(template, refs, 1,
                                                             dask_default=True)
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeats):
                _bare(pool, template, refs, sides["bare"])
                for key in clusters:
                    _on_dask(template, refs, clusters[key], sides[key],
                             Path(tmp) / f"{key}-{i}.parquet")
    finally:
        pool.shutdown()
        for cluster in clusters.values():
            cluster.close()
    return _report(phantom, template, twins, repeats, sides, startup)


def _report(phantom, template, twins, repeats, sides, startup) -> dict:
    bare = sides["bare"]
    ratios = {k: [d[0] / b[0] for d, b in zip(s.runs, bare.runs, strict=True)]
              for k, s in sides.items() if k != "bare"}
    print(f"{twins} {phantom} twins, template {template.kind}, {repeats} alternating repeats")
    print(f"{'side':38s} {'best wall s':>11s} {'s/twin':>7s} {'CPU s':>7s} {'faults':>9s}"
          f" {'in-task s':>9s}")
    for key, s in sides.items():
        wall, cpu, faults = s.best()
        task = f"{min(s.task_s):9.1f}" if s.task_s else " " * 9
        print(f"{s.name:38s} {wall:11.1f} {wall / twins:7.2f} {cpu:7.1f} {faults:9d} {task}"
              + (f"  (+ {startup[key]:.1f} s start)" if key in startup else ""))
    overhead = statistics.median(ratios["dask1"])
    speedup = statistics.median(
        [a[0] / b[0] for a, b in zip(sides["dask1"].runs, sides["dask2"].runs, strict=True)])
    per_twin = (sides["dask1"].best()[0] - bare.best()[0]) / twins
    print(f"overhead 1 worker / bare loop = {overhead:.3f} median of "
          f"{[round(r, 3) for r in ratios['dask1']]} (goal <= 1.1); best/best = "
          f"{sides['dask1'].best()[0] / bare.best()[0]:.3f}; {per_twin:+.2f} s/twin")
    if "default" in ratios:
        print(f"with Dask's default worker env      = {statistics.median(ratios['default']):.3f}"
              f" median of {[round(r, 3) for r in ratios['default']]}")
    cpu = sides["dask1"].best()[1] / bare.best()[1]
    print(f"CPU time 1 worker / bare loop = {cpu:.3f} (best of each)")
    print(f"speed-up 1 -> 2 workers      = {speedup:.2f}x")
    return {"overhead": overhead, "cpu_ratio": cpu, "speedup": speedup, "per_twin_s": per_twin,
            "ratios": ratios, "bare_s": bare.best()[0]}


def run() -> list[dict]:
    """Figures for bench/run.py (8 liver twins, 2 repeats)."""
    m = measure("liver", 8, 2)
    return [{"name": "cohort overhead, Dask 1 worker / bare loop", "value": m["overhead"],
             "unit": "x", "goal": 1.1, "detail": f"{m['per_twin_s']:+.2f} s/twin"},
            {"name": "cohort speed-up 1 -> 2 workers", "value": m["speedup"], "unit": "x",
             "goal": None}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--twins", type=int, default=8)
    parser.add_argument("--phantom", choices=tuple(TEMPLATES), default="liver")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dask-default", action="store_true",
                        help="also run 1 worker with Dask's default worker environment")
    args = parser.parse_args()
    measure(args.phantom, args.twins, args.repeats, args.dask_default)


if __name__ == "__main__":
    main()
