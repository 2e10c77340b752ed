"""Run a template over a cohort with Dask (dask.distributed): one task per twin.

* Scheduler: a ``LocalCluster`` (processes, one thread each) by default, or any running
  scheduler when ``scheduler`` is an address (``tcp://host:8786``); the workers must have
  SurgiPlan and its simulator plug-ins installed.
* Memory-aware: the local cluster gets at most as many workers as the free memory holds twins
  (estimated from the twin's grid, :func:`twin_bytes`), each with a memory limit, so a worker
  that outgrows it is restarted by its nanny instead of swapping the machine.
* Retries: a task whose worker died is re-run on another worker (Dask's ``allowed-failures``),
  and a task that raised is re-submitted ``retries`` times.
* Resumable: each finished twin's rows are written at once to ``<out>.parts/<twin>.parquet``;
  a re-run skips those twins. A twin whose task finally failed gets no part file (so the next
  run retries it) and is listed in the summary.
* Output: the tidy table (:mod:`surgiplan.cohort.rows`) as Parquet, twins in cohort order;
  the template and the twin references ride in the file's metadata (:func:`read_meta`), so a
  twin can be re-made and opened with its templated plan (:func:`open_twin`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surgiplan.cohort.cohort import TwinRef
from surgiplan.cohort.rows import COLUMNS, run_twin
from surgiplan.cohort.templates import Template
from surgiplan.errors import BadInputError

BYTES_PER_VOXEL = 160  # image, labels, float32 distance maps of a dozen structures, MC scratch
MIN_WORKER_BYTES = 1 << 30
WORKER_ENV = "distributed.nanny.pre-spawn-environ"
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
PROFILE = "distributed.worker.profile.enabled"


@dataclass
class RunSummary:
    """What a cohort run did: twins run now, resumed from parts, failed (id -> reason)."""

    out: Path
    n_twins: int
    ran: int = 0
    resumed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    n_workers: int = 0
    wall_s: float = 0.0


def parts_dir(out: Path) -> Path:
    return Path(str(out) + ".parts")


def run_cohort(template: Template, refs: Sequence[TwinRef], out: Path, *,
               scheduler: str | None = None, workers: int | None = None, retries: int = 2,
               progress: bool = True,
               on_done: Callable[[int, Any], None] | None = None) -> RunSummary:
    """Run ``template`` on every twin of ``refs`` and write the table to ``out`` (Parquet).

    ``on_done(n_finished, client)`` is called after each finished twin (tests use it to kill a
    worker mid-run).
    """
    from dask.distributed import as_completed

    out = Path(out)
    started = time.perf_counter()
    parts = _prepare_parts(template, out)
    todo = [r for r in refs if not (parts / f"{r.twin_id}.parquet").is_file()]
    summary = RunSummary(out, len(refs), resumed=len(refs) - len(todo))
    if todo:
        client, cluster = _client(scheduler, workers, refs)
        try:
            summary.n_workers = len(client.scheduler_info()["workers"])
            futures = client.map(run_twin, [template.to_json()] * len(todo),
                                 [r.to_json() for r in todo], key=[_key(r) for r in todo],
                                 retries=retries, pure=False)
            owner = {f.key: r for f, r in zip(futures, todo, strict=True)}
            for future in as_completed(futures):
                ref = owner[future.key]
                try:
                    write_table(future.result(), parts / f"{ref.twin_id}.parquet")
                    summary.ran += 1
                except Exception as exc:  # KilledWorker after allowed failures, lost scheduler
                    summary.failed[ref.twin_id] = f"{type(exc).__name__}: {exc}"
                done = summary.ran + len(summary.failed)
                if progress:
                    _progress(done, len(todo), summary, started)
                if on_done is not None:
                    on_done(done, client)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        if progress:
            print(file=sys.stderr)
    _combine(template, refs, parts, out)
    summary.wall_s = time.perf_counter() - started
    return summary


def run_serial(template: Template, refs: Sequence[TwinRef]) -> list[dict[str, Any]]:
    """The same rows as :func:`run_cohort`, by a bare loop in this process (reference run)."""
    return [row for r in refs for row in run_twin(template.to_json(), r.to_json())]


def twin_bytes(ref: TwinRef) -> int:
    """Estimated peak memory of one twin task (bytes): grid voxels x :data:`BYTES_PER_VOXEL`."""
    if ref.kind == "generated" and ref.variation:
        from surgiplan.phantoms.variants import Variation, variant_spec

        v = dict(ref.variation)
        v["shift_lps"] = tuple(v["shift_lps"])
        v["field_mm"] = None if v.get("field_mm") is None else tuple(v["field_mm"])
        size = variant_spec(Variation(**v)).geometry.size
        return int(size[0] * size[1] * size[2] * BYTES_PER_VOXEL)
    return int(Path(ref.path).stat().st_size * 40) if ref.kind == "bundle" else 2 << 30


def local_worker_plan(refs: Sequence[TwinRef], workers: int | None) -> tuple[int, int]:
    """(number of workers, memory limit per worker in bytes) for a local cluster."""
    import psutil

    available = psutil.virtual_memory().available * 0.8
    need = max(max((twin_bytes(r) for r in refs[:8]), default=0), MIN_WORKER_BYTES)
    wanted = workers or os.cpu_count() or 1
    n = max(1, min(wanted, int(available // need)))
    return n, int(available // n)


def _client(scheduler: str | None, workers: int | None, refs: Sequence[TwinRef]
            ) -> tuple[Any, Any]:
    from dask.distributed import Client

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as exc:
            raise BadInputError(f"cannot reach the Dask scheduler {scheduler}: {exc}",
                                action="check the address (tcp://HOST:8786) and that the "
                                       "scheduler is running") from exc
    n, memory = local_worker_plan(refs, workers)
    cluster = local_cluster(n, memory)
    return Client(cluster), cluster


def local_cluster(n_workers: int, memory_limit: int | str = "auto") -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded processes, each limited to
    ``memory_limit`` bytes, without the ``MALLOC_TRIM_THRESHOLD_`` Dask sets by default and
    without the workers' statistical profiler.

    That variable fixes glibc's mmap threshold at 128 KiB, so every large numpy temporary is
    mapped and unmapped anew: 15x the page faults of a plain process and 1.35-1.45x its wall
    time on the liver twin tasks (``bench/bench_cohort.py``). The profiler samples every
    thread's stack 100 times a second for the dashboard (not used here): median overhead
    1.11 -> 1.02-1.05 without it (noisy). Workers keep Dask's one-thread OMP/MKL/OpenBLAS.
    """
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({f"{WORKER_ENV}.{MALLOC_TRIM}": None, PROFILE: False}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            memory_limit=memory_limit, dashboard_address=":0",
                            silence_logs=40)


def _key(ref: TwinRef) -> str:
    return f"twin-{ref.twin_id}"


def _prepare_parts(template: Template, out: Path) -> Path:
    """The parts folder, refusing one that holds another template's rows."""
    parts = parts_dir(out)
    stamp = parts / "template.json"
    text = json.dumps(template.to_json(), sort_keys=True)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") != text:
        raise BadInputError("finished twins of another template are stored here", path=parts,
                            action="choose another --out, or delete the folder to start over")
    parts.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text, encoding="utf-8")
    return parts


def _progress(done: int, total: int, summary: RunSummary, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    rate = (time.perf_counter() - started) / max(done, 1)
    print(f"\rcohort [{'#' * filled}{'.' * (width - filled)}] {done}/{total} twins"
          f" ({summary.resumed} resumed, {len(summary.failed)} failed, {rate:.1f} s/twin)",
          end="", file=sys.stderr, flush=True)


def _combine(template: Template, refs: Sequence[TwinRef], parts: Path, out: Path) -> None:
    rows: list[dict[str, Any]] = []
    for ref in refs:
        part = parts / f"{ref.twin_id}.parquet"
        if part.is_file():
            rows.extend(read_rows(part))
    write_table(rows, out, {"template": template.to_json(),
                            "twins": [r.to_json() for r in refs]})


# ---------------------------------------------------------------------------- Parquet I/O
def _schema() -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}
    return pa.schema([(name, types[t]) for name, t in COLUMNS.items()])


def write_table(rows: Sequence[dict[str, Any]], path: Path,
                meta: dict[str, Any] | None = None) -> Path:
    """Write rows (dicts with :data:`COLUMNS`) as Parquet, atomically (temp file + rename);
    ``meta`` (JSON) is kept in the file's schema metadata under ``surgiplan.cohort``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    if meta is not None:
        schema = schema.with_metadata({b"surgiplan.cohort": json.dumps(meta).encode()})
    table = pa.Table.from_pylist(list(rows), schema=schema)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_meta(path: Path) -> dict[str, Any]:
    """The template and twin references stored in a results table (see :func:`run_cohort`)."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(Path(path)).metadata or {}).get(b"surgiplan.cohort")
    except (OSError, ValueError) as exc:
        raise BadInputError(f"not a cohort results table: {exc}", path=path,
                            action="give the .parquet file written by 'surgiplan cohort run'"
                            ) from exc
    if raw is None:
        raise BadInputError("the table holds no cohort description", path=path,
                            action="give the .parquet file written by 'surgiplan cohort run'")
    return json.loads(raw)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results table (list of dicts)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(Path(path)).to_pylist()
    except (OSError, ValueError) as exc:
        raise BadInputError(f"not a cohort results table: {exc}", path=path,
                            action="give the .parquet file written by 'surgiplan cohort run'"
                            ) from exc


def open_twin(results: Path, twin_id: str, out: Path) -> Path:
    """Re-make one twin of a results table with its templated plan; save it as a case bundle."""
    from surgiplan.cohort.cohort import load_twin
    from surgiplan.cohort.templates import apply_template, template_from_json, templated_plan
    from surgiplan.io.bundle import save_bundle
    from surgiplan.plans.store import store_in_twin

    meta = read_meta(results)
    refs = {r["twin_id"]: TwinRef(**r) for r in meta["twins"]}
    if twin_id not in refs:
        raise BadInputError(f"no twin {twin_id!r} in the table", path=results,
                            action=f"choose one of {', '.join(list(refs)[:5])}...")
    ref = refs[twin_id]
    template = template_from_json(meta["template"])
    twin = load_twin(ref)
    store_in_twin(twin, templated_plan(template, twin_id, apply_template(template, twin,
                                                                          ref.seed)))
    twin.provenance.notes.append(f"cohort twin {twin_id} ({ref.source}), template "
                                 f"{template.name}")
    return save_bundle(twin, Path(out))
