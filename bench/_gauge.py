"""How fast this machine runs plain Python right now: a rough way to tell, from a
benchmark's output alone, a machine much faster or slower than the one its figures in
docs/benchmarks.md were taken on."""

from __future__ import annotations

import time

_ROUNDS = 2_000_000


def python_gauge_ms() -> float:
    """Best of three timings (ms) of a fixed pure-Python loop; lower is faster.

    The loop does integer arithmetic only, so it measures the CPU the benchmark is
    given, not the project's code, and not every slowdown: on one VM it read 152-237 ms
    while the camt.054 import stayed at 20.8-24.6 s (docs/benchmarks.md, session 7).
    The best of three hides a single interruption."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(_ROUNDS):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
