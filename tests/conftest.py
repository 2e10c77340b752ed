"""Shared fixtures: paths to the real scans (skipped when absent) and temporary folders."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_SCANS = PROJECT_ROOT.parent / "shared" / "scans"


def real_scan(name: str) -> Path:
    """Path of a real series in ../shared/scans, or skip the test with the reason."""
    path = SHARED_SCANS / name
    if not path.is_dir():
        pytest.skip(f"real scan {name!r} not available: {path} is absent (see ../shared/scans)")
    return path


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
