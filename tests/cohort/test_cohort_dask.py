"""Cohorts end to end on a local Dask cluster (2 worker processes, shared by the session).

Kept fast: small cohorts on coarse grids with 4 Monte Carlo samples. Spine twins on a 1.6 mm
grid over a 130 x 120 x 110 mm field (81 x 75 x 68 voxels), one suggested screw (left L4), no
exact mesh check; liver twins on a 4 mm grid (64 x 64 x 39 voxels), both tumours ablated; head
twins on a 4 mm grid, one trajectory to the tumour from the safest-path search, through the
command line on the running cluster (as an existing cluster is used). Dask rows are compared
with a bare serial loop over the same function. Of the issue's 50-twin acceptance runs, the
liver one is in CI (about 40 s on this 2-core machine, the serial run compared on every fifth
twin); the spine one (about 70 s) runs with SURGIPLAN_SLOW=1, its CI variant being the 4-twin
spine cohort (the same checks: every twin's rows, equal to the serial rows, resumable);
bench/bench_cohort.py measures the overhead.
"""

from __future__ import annotations

import contextlib
import json
import math
import os

import pytest

from surgiplan.cohort.cohort import generated_refs
from surgiplan.cohort.runner import MALLOC_TRIM, PROFILE, open_twin, read_rows, run_cohort
from surgiplan.cohort.templates import template_from_json

N_TWINS = 50  # the acceptance cohorts
SPINE = template_from_json({"kind": "pedicle-screws", "name": "L4 left screw", "levels": ["L4"],
                            "sides": ["left"], "samples": 4, "exact_check": False})
LIVER = template_from_json({"kind": "ablation", "name": "ablate targets", "samples": 4})
HEAD = {"kind": "trajectory", "name": "biopsy", "samples": 4, "max_length_mm": 100.0,
        "max_angle_deg": 40.0, "diameter_mm": 2.0}
SPINE_REFS = generated_refs("spine", phantom="spine", count=N_TWINS, spacing_mm=1.6,
                            field_mm=[130.0, 120.0, 110.0])
LIVER_REFS = generated_refs("liver", phantom="liver", count=N_TWINS, spacing_mm=4.0)


def _same_value(u: object, v: object) -> bool:
    """Equal, both NaN, or floats equal to 12 significant digits: the order of a floating-point
    sum inside numpy/numba may differ by the last bit between processes (seen once in CI:
    28.69248637437515 vs 28.692486374375154), which no reader of a table can see."""
    if u == v:
        return True
    if isinstance(u, float) and isinstance(v, float):
        return (math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-12)
    return False


def first_difference(a: list[dict], b: list[dict]) -> str | None:
    """The first column where two row lists differ (wall time ignored, NaN equals NaN, floats
    to 12 significant digits), as readable text, or None when they are equal."""
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)}"
    for x, y in zip(a, b, strict=True):
        for k in x:
            if k == "run_time_s":
                continue
            u, v = x[k], y[k]
            if not _same_value(u, v):
                row = {c: x.get(c) for c in ("twin_id", "template", "slot", "metric")}
                return f"{row} column {k!r}: {u!r} vs {v!r}"
    return None


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Rows equal in every column but the wall time (NaN equals NaN)."""
    return first_difference(a, b) is None


def _matches_serial(cluster, serial, tmp_path, template, refs, every: int) -> list[dict]:
    out = tmp_path / "results.parquet"
    summary = run_cohort(template, refs, out, scheduler=cluster.scheduler_address,
                         progress=False)
    assert (summary.ran, summary.failed, summary.n_workers) == (len(refs), {}, 2)
    rows = read_rows(out)
    assert [r.twin_id for r in refs] == sorted({row["twin_id"] for row in rows})
    ids = {r.twin_id for r in refs[::every]}
    difference = first_difference([row for row in rows if row["twin_id"] in ids],
                                  serial(template, refs[::every]))
    assert difference is None, f"Dask and serial rows differ: {difference}"
    again = run_cohort(template, refs, out, scheduler=cluster.scheduler_address,
                       progress=False)  # resumable: nothing is redone
    assert (again.ran, again.resumed) == (0, len(refs)) and same_rows(read_rows(out), rows)
    return rows


def _profiling() -> bool:
    import dask

    return bool(dask.config.get(PROFILE))


def test_workers_run_without_dasks_malloc_trim_setting_and_profiler(cluster):
    from dask.distributed import Client

    with Client(cluster) as client:
        seen = client.run(os.environ.get, MALLOC_TRIM)
        profiling = client.run(_profiling)
    assert len(seen) == 2 and set(seen.values()) == {None}
    assert set(profiling.values()) == {False}


def test_a_small_spine_cohort_on_dask_matches_a_serial_run(cluster, serial, tmp_path):
    rows = _matches_serial(cluster, serial, tmp_path, SPINE, SPINE_REFS[:4], every=2)
    placed = {r["twin_id"] for r in rows if r["metric"] not in ("plan", "twin")}
    assert len(placed) >= 3, [r["not_assessable"] for r in rows if r["metric"] == "plan"]
    assessed = [r for r in rows if r["metric"] not in ("plan", "twin")]
    assert all(r["simulator_id"] == "implant" and r["samples"] == 4 for r in assessed)


def test_a_small_liver_cohort_on_dask_matches_a_serial_run(cluster, serial, tmp_path):
    rows = _matches_serial(cluster, serial, tmp_path, LIVER, LIVER_REFS[:4], every=1)
    assert {r["slot"] for r in rows} == {"tumour 1", "tumour 2"}
    assert all(r["simulator_id"] == "ablation" for r in rows)


def test_cli_runs_a_trajectory_cohort_on_a_running_scheduler(cluster, serial, tmp_path,
                                                              capsys):
    from surgiplan.cli.main import main
    from surgiplan.plans.store import read_plans

    (tmp_path / "t.json").write_text(json.dumps(HEAD))
    (tmp_path / "c.json").write_text(json.dumps(
        {"name": "head", "generated": {"phantom": "head", "count": 2, "spacing_mm": 4.0}}))
    out = tmp_path / "head.parquet"
    code = main(["cohort", "run", str(tmp_path / "t.json"), str(tmp_path / "c.json"),
                 "--out", str(out), "--scheduler", cluster.scheduler_address, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and (summary["ran"], summary["workers"]) == (2, 2)
    rows = read_rows(out)
    refs = generated_refs("head", phantom="head", count=2, spacing_mm=4.0)
    template = template_from_json(HEAD)
    assert same_rows(rows, serial(template, refs))
    by_metric = {(r["twin_id"], r["metric"], r["structure"]): r for r in rows}
    for ref in refs:  # scored to the tumour, every structure's clearance with its interval
        length = by_metric[(ref.twin_id, "path_length_mm", "")]
        assert 0 < length["value"] <= 100.0 and length["ci95_low"] < length["ci95_high"]
        assert by_metric[(ref.twin_id, "min_distance_mm", "ventricles")]["value"] > 0
    bundle = tmp_path / "head1.surgiplan"
    assert main(["cohort", "open", str(out), refs[1].twin_id, "--out", str(bundle)]) == 0
    (plan,) = read_plans(bundle).plans
    (tool,) = plan.interventions
    assert tool.label == "tumour" and tool.simulator_id == "trajectory"


def test_a_killed_worker_is_retried_and_the_table_is_complete(cluster, serial, tmp_path):
    """Last in the module: the nanny restarts the killed worker before the test ends."""
    from dask.distributed import Client

    refs = LIVER_REFS[:4]  # their serial rows are cached from the liver test
    killed: list[str] = []

    def kill_one(done, client):
        if done == 1 and not killed:
            worker = sorted(client.scheduler_info()["workers"])[0]
            killed.append(worker)
            with contextlib.suppress(Exception):  # the dying worker drops the reply
                client.run(os._exit, 1, workers=[worker])  # the worker process dies

    out = tmp_path / "killed.parquet"
    summary = run_cohort(LIVER, refs, out, scheduler=cluster.scheduler_address,
                         progress=False, on_done=kill_one)
    assert killed and summary.failed == {} and summary.ran == len(refs)
    rows = read_rows(out)
    assert [r.twin_id for r in refs] == sorted({r["twin_id"] for r in rows})
    assert same_rows(rows, serial(LIVER, refs))
    bundle = open_twin(out, refs[1].twin_id, tmp_path / "twin.surgiplan")
    from surgiplan.plans.store import read_plans

    (plan,) = read_plans(bundle).plans
    assert [i.label for i in plan.interventions] == ["tumour 1", "tumour 2"]
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)


@pytest.mark.parametrize(("template", "refs"), [
    pytest.param(SPINE, SPINE_REFS, marks=pytest.mark.slow, id="spine"),
    pytest.param(LIVER, LIVER_REFS, id="liver")])
def test_fifty_twins_on_dask_match_a_serial_run(cluster, serial, tmp_path, template, refs):
    _matches_serial(cluster, serial, tmp_path, template, refs, every=5)
