"""The scheduler's own figures, measured the same way by the CLI's ``bench`` and by
``bench/scheduler.py``: native and Python throughput, fork-join fib, submit-to-start
latency with the workers hot (spinning) and parked.

Each function takes a running Scheduler and returns plain numbers; none prints.
"""

from __future__ import annotations

import os
import time
from typing import Any

from . import metrics
from ._scheduler import Scheduler


def native_throughput(s: Scheduler, count: int, pattern: str = "fork") -> float:
    """Empty native jobs per second: ``count`` noop jobs submitted by ``pattern``."""
    return float(s.run_native("noop", count, pattern=pattern)["jobs_per_s"])


def fib_tasks(n: int, cutoff: int) -> int:
    """How many jobs fork-join fib(n) spawns when it recurses down to ``cutoff``."""
    counts = {}
    for k in range(n + 1):
        counts[k] = 0 if k < max(cutoff, 2) else 1 + counts[k - 1] + counts[k - 2]
    return counts[n]


def fib_seconds(s: Scheduler, n: int, cutoff: int) -> tuple[float, int]:
    """Wall time of one native fork-join fib(n), and its result (checked by callers)."""
    res = s.run_native("fib", 1, fib_n=n, cutoff=cutoff)
    return float(res["elapsed_s"]), int(res["checksum"])


def _work(x: int) -> int:
    return x + 1


def python_throughput(s: Scheduler, count: int) -> float:
    """Python-callable jobs per second: ``map`` of a trivial function, results collected."""
    start = time.perf_counter()
    results = list(s.map(_work, range(count)))
    elapsed = time.perf_counter() - start
    if results[-1] != count:
        raise AssertionError("wrong result from the scheduler")
    return count / elapsed


def latency(s: Scheduler, probes: int, interval_us: float) -> dict[str, Any]:
    """Submit ``probes`` empty jobs from one outside thread, ``interval_us`` apart, and
    return the hot and parked latency summaries of just those jobs.

    Spaced below the scheduler's spin time, the jobs find a worker spinning (hot); spaced
    well above it, the workers have parked and each job pays a futex wake-up. The
    submitter is pinned to the last CPU, away from worker 0 when the scheduler pins.
    """
    before = s.stats()
    cpu = max(os.sched_getaffinity(0)) if s.workers < os.cpu_count() else -1  # type: ignore[operator]
    s.run_native("noop", probes, pattern="outside", interval_us=interval_us, submit_cpu=cpu)
    d = metrics.delta(before, s.stats())
    return {"hot": d["latency"]["hot_summary"], "parked": d["latency"]["parked_summary"]}


def fmt_ns(ns: float | None) -> str:
    """A latency in nanoseconds as people read it: ``384 ns``, ``10.24 µs``, ``n/a``."""
    if ns is None:
        return "n/a"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def fib_value(n: int) -> int:
    """fib(n), to check the scheduler's answer."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
