"""Hostile third-party plug-ins, through the runner API: the process survives, each gets a
failed result naming it, the bundled plug-ins keep working and the case is untouched."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from surgiplan.io.bundle import load_bundle
from surgiplan.simulation import (
    PathSearchRequest,
    SimulationContext,
    Status,
    UncertaintyModel,
    discover,
    load_simulator,
    run_simulation,
)
from surgiplan.simulation.runner import SimulationFailedError, run_search
from tests.conftest import time_limit
from tests.reliability.conftest import IMPORT_TIMEOUT_S, INPUT, file_digest, twin_digest

RUN_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def entries(hostile_dir):
    started = time.monotonic()
    with time_limit(60):
        found = {e.name: e for e in discover(refresh=True)}
    return found, time.monotonic() - started


@pytest.fixture
def case(case_bundle):
    """A twin loaded from the bundle, its digest, and the bundle file's digest."""
    twin = load_bundle(case_bundle)
    return twin, twin_digest(twin), file_digest(case_bundle)


def _check_untouched(case, case_bundle) -> None:
    twin, digest, bundle_digest = case
    assert twin_digest(twin) == digest, "the plug-in changed the user's twin"
    assert file_digest(case_bundle) == bundle_digest


def _bundled_still_work(twin) -> None:
    ok = run_simulation(load_simulator("trajectory"), SimulationContext(twin), INPUT,
                        uncertainty=UncertaintyModel(samples=50))
    assert ok.status is Status.OK, ok.error


def test_third_party_plugins_are_isolated_and_import_failures_disable_only_them(entries):
    found, elapsed = entries
    for name in ("trajectory", "implant", "ablation", "resection"):
        assert found[name].enabled and not found[name].isolated, found[name].reason
    assert found["hostile-segfault"].enabled and found["hostile-segfault"].isolated
    hang = found["hostile-import-hang"]
    assert not hang.enabled and f"did not finish within {IMPORT_TIMEOUT_S:g} s" in hang.reason
    crash = found["hostile-import-crash"]
    assert not crash.enabled and "SIGSEGV" in crash.reason, crash.reason
    assert elapsed < IMPORT_TIMEOUT_S + 30


def test_an_absurd_parameter_default_disables_the_plugin_not_the_form(entries):
    absurd = entries[0]["hostile-absurd-default"]
    assert not absurd.enabled and "default 1000000000000 is beyond" in absurd.reason


def test_a_disabled_plugin_is_named_disabled_not_missing(entries):
    from surgiplan.errors import BadInputError

    with pytest.raises(BadInputError, match=r"installed but disabled.*SIGSEGV"):
        load_simulator("hostile-import-crash", entries=list(entries[0].values()))


@pytest.mark.parametrize(("sim_id", "expected"), [
    ("hostile-segfault", "crashed during run (killed by SIGSEGV)"),
    ("hostile-gil-hang", f"did not finish within {RUN_TIMEOUT_S:g} s (run) and was stopped"),
    ("hostile-exit", "crashed during run (exit code 3)"),
    ("hostile-sysexit", "failed: SystemExit: 4"),
    ("hostile-nan", "returned an invalid result"),
    ("hostile-types", "returned an invalid result"),
    ("hostile-dict", "not a SimulationResult but dict"),
    ("hostile-huge", "sent back more than 64 MB during run; refused"),
    ("hostile-pickle", "does not accept from a plug-in"),
])
def test_hostile_run_gives_a_failed_result_naming_it(entries, case, case_bundle, sim_id,
                                                     expected):
    twin = case[0]
    started = time.monotonic()
    with time_limit(60):
        result = run_simulation(load_simulator(sim_id, entries=list(entries[0].values())),
                                SimulationContext(twin), INPUT, timeout_s=RUN_TIMEOUT_S)
    assert result.status is Status.FAILED
    assert sim_id in result.error and expected in result.error, result.error
    assert "\n" not in result.error
    assert time.monotonic() - started < RUN_TIMEOUT_S + 20
    _check_untouched(case, case_bundle)
    _bundled_still_work(twin)


def test_nan_clearance_is_never_shown_as_safe(entries, case):
    sim = load_simulator("hostile-nan", entries=list(entries[0].values()))
    result = run_simulation(sim, SimulationContext(case[0]), INPUT, timeout_s=RUN_TIMEOUT_S)
    assert result.status is Status.FAILED and result.overall_level != "safe"
    assert "not finite and not marked not assessable" in result.error


def test_tampering_plugin_cannot_change_the_case(entries, case, case_bundle):
    sim = load_simulator("hostile-tamper", entries=list(entries[0].values()))
    result = run_simulation(sim, SimulationContext(case[0]), INPUT, timeout_s=RUN_TIMEOUT_S)
    assert result.ok, result.error  # it lied, but only about its own copy
    _check_untouched(case, case_bundle)
    assert result.provenance.input_hashes == SimulationContext(case[0]).input_hashes()


@pytest.mark.parametrize(("sim_id", "expected"), [
    ("hostile-segfault", "killed by SIGSEGV"),
    ("hostile-gil-hang", f"did not finish within {RUN_TIMEOUT_S:g} s (search)"),
    ("hostile-dict", "invalid search result"),
])
def test_hostile_search_fails_with_one_line(entries, case, case_bundle, sim_id, expected):
    sim = load_simulator(sim_id, entries=list(entries[0].values()))
    request = PathSearchRequest(target_lps=(12.0, 12.0, 12.0))
    with time_limit(60), pytest.raises(SimulationFailedError) as info:
        run_search(sim, SimulationContext(case[0]), request, timeout_s=RUN_TIMEOUT_S)
    assert sim_id in str(info.value) and expected in str(info.value), str(info.value)
    _check_untouched(case, case_bundle)


def test_a_crashed_plugin_runs_again_in_a_fresh_process(entries, case):
    sim = load_simulator("hostile-tamper", entries=list(entries[0].values()))
    crash = load_simulator("hostile-segfault", entries=list(entries[0].values()))
    context = SimulationContext(case[0])
    assert run_simulation(crash, context, INPUT, timeout_s=RUN_TIMEOUT_S).status is \
        Status.FAILED
    assert run_simulation(sim, context, INPUT, timeout_s=RUN_TIMEOUT_S).ok
    assert run_simulation(sim, context, INPUT, timeout_s=RUN_TIMEOUT_S).ok  # warm child


# ---------------------------------------------------------------- in-process (bundled) paths
def test_in_process_context_hands_out_no_writable_path_to_the_case(case):
    twin, digest, _ = case
    context = SimulationContext(twin)
    image = context.images[0].array
    with pytest.raises(ValueError):
        image.setflags(write=True)
    chain = [image]
    while isinstance(chain[-1], np.ndarray) and chain[-1].base is not None:
        chain.append(chain[-1].base)
    assert isinstance(chain[-1], bytes), "the base chain must end in immutable bytes"
    for array in chain[:-1]:
        with pytest.raises(ValueError):
            array.setflags(write=True)
    assert not hasattr(context, "_twin") and not hasattr(context, "twin")
    mask = context.mask("vessel")
    mask.base[...] = False  # behind the read-only view: a fresh array, harmless
    assert twin_digest(twin) == digest


class _PythonLoop:
    spec = None

    def run(self, context, inputs, parameters, *, uncertainty, progress=None, cancel=None):
        while True:
            pass


class _CSleep(_PythonLoop):
    def run(self, context, inputs, parameters, *, uncertainty, progress=None, cancel=None):
        time.sleep(4)  # stuck in C: an exception cannot reach it


def _in_process(cls, sim_id):
    from tests.reliability.hostile.sp_hostile import spec

    sim = cls()
    sim.spec = spec(sim_id)
    return sim


def test_a_timed_out_python_thread_is_really_stopped(case):
    before = threading.active_count()
    result = run_simulation(_in_process(_PythonLoop, "spin"), SimulationContext(case[0]),
                            INPUT, timeout_s=0.3)
    assert result.status is Status.FAILED and "was stopped (timeout)" in result.error
    time.sleep(0.2)
    assert threading.active_count() <= before


def test_a_thread_that_cannot_be_stopped_is_not_called_stopped(case):
    result = run_simulation(_in_process(_CSleep, "csleep"), SimulationContext(case[0]),
                            INPUT, timeout_s=0.3)
    assert result.status is Status.FAILED
    assert "could not be stopped" in result.error and "was stopped" not in result.error


def test_wrong_typed_in_process_result_is_a_failed_result(case):
    from tests.reliability.hostile.sp_hostile.liars import WrongTypes

    result = run_simulation(WrongTypes(), SimulationContext(case[0]), INPUT)
    assert result.status is Status.FAILED and "hostile-types" in result.error
    assert "value is str, not a number" in result.error
    assert np.isfinite(result.provenance.run_time_s)


def test_trust_is_overridable(monkeypatch, case):
    from surgiplan.simulation.discovery import BUNDLED_DISTRIBUTIONS, trusted_distributions

    assert trusted_distributions("bundled") == BUNDLED_DISTRIBUTIONS
    assert trusted_distributions("all") is None and trusted_distributions("none") == frozenset()
    assert "my-plugin" in trusted_distributions("My_Plugin")
    monkeypatch.setenv("SURGIPLAN_PLUGIN_TRUST", "none")
    trajectory = next(e for e in discover() if e.name == "trajectory")
    assert trajectory.isolated and trajectory.enabled, trajectory.reason
    model = UncertaintyModel(samples=100)
    context = SimulationContext(case[0])
    isolated = run_simulation(trajectory.simulator, context, INPUT, uncertainty=model)
    inside = run_simulation(load_simulator("trajectory", entries=discover(trust="bundled")),
                            context, INPUT, uncertainty=model)
    assert isolated.ok and inside.ok, (isolated.error, inside.error)
    assert isolated.metric("min_distance_mm", "vessel").ci95 == \
        inside.metric("min_distance_mm", "vessel").ci95
