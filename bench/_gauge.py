"""How fast this machine runs plain Python right now, so that figures taken on
different days (or on different virtual machines of the same size) can be compared."""

from __future__ import annotations

import time

_ROUNDS = 2_000_000


def python_gauge_ms() -> float:
    """Best of three timings (ms) of a fixed pure-Python loop; lower is faster.

    The loop does integer arithmetic only, so it measures the CPU the benchmark is
    given (a slower or busier virtual machine gives a higher figure), not the
    project's code. The best of three hides a single interruption."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(_ROUNDS):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
