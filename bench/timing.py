"""Timing helper shared by the benchmarks (imported as ``bench.timing`` by bench/run.py)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` runs of ``fn()``, in seconds (the least noisy estimate)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
