"""One local Dask cluster (2 single-threaded worker processes) for every cohort test, started
the way ``surgiplan cohort run`` starts its own (:func:`surgiplan.cohort.runner.local_cluster`)
and warmed once (plug-ins imported on both workers), plus the serial rows of a twin computed
once per session."""

from __future__ import annotations

import functools
import json

import pytest


def _import_plugins() -> int:
    from surgiplan.simulation import load_simulator

    return len([load_simulator(name) for name in ("implant", "ablation", "trajectory")])


@pytest.fixture(scope="session")
def cluster():
    from dask.distributed import Client

    from surgiplan.cohort.runner import local_cluster

    with local_cluster(2) as c:
        with Client(c) as client:
            client.run(_import_plugins)
        yield c


@functools.cache
def _serial(template_json: str, ref_json: str) -> tuple:
    from surgiplan.cohort.rows import run_twin

    return tuple(run_twin(json.loads(template_json), json.loads(ref_json)))


@pytest.fixture(scope="session")
def serial():
    """``serial(template, refs)``: the rows of a bare in-process loop over ``refs`` (each twin
    computed once per session)."""

    def rows(template, refs) -> list[dict]:
        return [dict(row) for r in refs
                for row in _serial(json.dumps(template.to_json(), sort_keys=True),
                                   json.dumps(r.to_json(), sort_keys=True))]

    return rows
