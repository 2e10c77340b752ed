"""Shared fixtures: paths to the real scans (skipped when absent), temporary folders, and the
generated phantoms rendered once per session."""

from __future__ import annotations

import copy
import functools
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_SCANS = PROJECT_ROOT.parent / "shared" / "scans"
SLOW = os.environ.get("SURGIPLAN_SLOW") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.slow`` tests run only with SURGIPLAN_SLOW=1 (the marker's meaning in
    pyproject.toml). A slow test keeps a smaller version of its checks in CI where one can run
    in seconds (killed saves, resection agreement, cohorts)."""
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow: set SURGIPLAN_SLOW=1 to run it")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def real_scan(name: str) -> Path:
    """Path of a real series in ../shared/scans, or skip the test with the reason."""
    path = SHARED_SCANS / name
    if not path.is_dir():
        pytest.skip(f"real scan {name!r} not available: {path} is absent (see ../shared/scans)")
    return path


@functools.cache
def _rendered_phantom(name: str, seed: int):
    from surgiplan.phantoms import make_phantom

    return make_phantom(name, seed=seed)


def shared_phantom(name: str, seed: int = 0):
    """``make_phantom(name, seed=seed)`` rendered once per test session (each render costs
    seconds); every caller gets its own deep copy: (CT volume in HU, labels, truth)."""
    return copy.deepcopy(_rendered_phantom(name, seed))


@pytest.fixture(scope="session")
def head_sample(_isolated_user_dirs: None) -> Path:
    """The folder ``surgiplan sample head --out DIR --seed 0`` wrote, once per session (CLI run
    in-process). DIR is where ``phantom_bundle("head")`` (training, report, score tests) finds
    its cached copy, so those share it too. Read-only: copy the bundle before changing it."""
    from surgiplan.cli.main import main
    from surgiplan.training.cases import cache_dir

    out = cache_dir() / "head-seed0"  # always the CLI, even over a copy phantom_bundle made
    assert main(["sample", "head", "--out", str(out), "--seed", "0"]) == 0
    return out


@pytest.fixture
def shared_scans() -> Path:
    if not SHARED_SCANS.is_dir():
        pytest.skip(f"real scans not available: {SHARED_SCANS} is absent")
    return SHARED_SCANS


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests out of the real user folders (pseudonym key, logs, autosave, settings).

    platformdirs honours the XDG variables; subprocesses started by tests inherit them.
    """
    import os

    base = tmp_path_factory.mktemp("user-dirs")
    for var in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        os.environ[var] = str(base / var.lower())


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``."""

    def on_alarm(_signum, _frame):
        raise TimeoutError(f"hung for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
