"""Timing for the benchmark scripts: the best of several runs, after a warm-up."""

from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Seconds of the fastest of `repeats` calls of fn (one untimed call first if `warmup`)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
