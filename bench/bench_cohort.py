"""Cohort scaling benchmark: the same twins by a bare loop, and on Dask with 1 and 2 workers.

    .venv/bin/python bench/bench_cohort.py [--twins N] [--phantom liver|spine]

Prints wall times and two ratios: *overhead* = Dask with 1 worker / bare loop over the same
function (:func:`surgiplan.cohort.rows.run_twin`) in the same run (goal <= 1.1; the cluster is
started and its workers warmed, i.e. plug-ins imported, before the clock starts, and the
startup is printed apart), and *speed-up* = 1 worker / 2 workers. On a shared 2-core machine
the speed-up is bounded by what the other processes leave free. The bare loop runs with the
thread limits Dask gives its worker processes (OMP/MKL/OpenBLAS 1 thread), so both sides do
the same work the same way.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as dask.distributed sets them in its workers

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from surgiplan.cohort.cohort import generated_refs  # noqa: E402
from surgiplan.cohort.rows import run_twin  # noqa: E402
from surgiplan.cohort.runner import run_cohort, run_serial  # noqa: E402
from surgiplan.cohort.templates import template_from_json  # noqa: E402

TEMPLATES = {
    "liver": ({"kind": "ablation", "samples": 4}, {"spacing_mm": 4.0}),
    "spine": ({"kind": "pedicle-screws", "levels": ["L4"], "sides": ["left"], "samples": 4,
               "exact_check": False}, {"spacing_mm": 1.6, "field_mm": [130, 120, 110]}),
}


def _warm(template_json: dict, ref_json: dict) -> int:
    return len(run_twin(template_json, ref_json))


def _dask(template, refs, workers: int, out_dir: Path) -> tuple[float, float]:
    """(startup + warm-up s, run s) on a local cluster of ``workers`` processes."""
    from dask.distributed import LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=40) as cluster:
        from dask.distributed import Client

        with Client(cluster) as client:  # import everything once on every worker
            warm = generated_refs("warm", phantom=refs[0].variation["phantom"], count=1,
                                  first_seed=10_000, **_grid(refs[0]))[0]
            client.run(_warm, template.to_json(), warm.to_json())
        t1 = time.perf_counter()
        run_cohort(template, refs, out_dir / f"w{workers}.parquet",
                   scheduler=cluster.scheduler_address, progress=False)
        return t1 - t0, time.perf_counter() - t1


def _grid(ref) -> dict:
    v = ref.variation
    return {"spacing_mm": v["spacing_mm"], "field_mm": v["field_mm"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--twins", type=int, default=12)
    parser.add_argument("--phantom", choices=tuple(TEMPLATES), default="liver")
    args = parser.parse_args()
    tj, grid = TEMPLATES[args.phantom]
    template = template_from_json(tj)
    refs = generated_refs(args.phantom, phantom=args.phantom, count=args.twins, **grid)
    _warm(template.to_json(), refs[0].to_json())  # this process's imports, off the clock
    t0 = time.perf_counter()
    run_serial(template, refs)
    bare = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        start1, one = _dask(template, refs, 1, Path(tmp))
        start2, two = _dask(template, refs, 2, Path(tmp))
    print(f"{args.twins} {args.phantom} twins, template {template.kind}")
    print(f"bare loop        {bare:7.1f} s  ({bare / args.twins:.2f} s/twin)")
    print(f"dask 1 worker    {one:7.1f} s  (+ {start1:.1f} s cluster start and warm-up)")
    print(f"dask 2 workers   {two:7.1f} s  (+ {start2:.1f} s cluster start and warm-up)")
    print(f"overhead 1 worker / bare loop = {one / bare:.3f} (goal <= 1.1)")
    print(f"speed-up 1 -> 2 workers      = {one / two:.2f}x")


if __name__ == "__main__":
    main()
