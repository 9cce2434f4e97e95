"""Turning ``Scheduler.stats()`` samples into the figures people read: percentiles of the
latency histograms, and what happened between two samples (rates, steal events).

Pure Python over plain dicts, so the benchmark, the CLI and the live demo share one
definition of "P50" and "jobs/s".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Stats = dict[str, Any]

COUNTERS = ("executed", "stolen", "steal_attempts", "mailbox_pushes", "parks", "cancelled")


def percentile_ns(counts: Sequence[int], lower_ns: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a log-linear histogram, or None when it is empty.

    Reported as the upper edge of the bucket that holds it, so the figure is an upper
    bound: at most 25% above the truth with four buckets per power of two.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if c and seen >= rank:
            return float(lower_ns[i + 1] if i + 1 < len(lower_ns) else lower_ns[i] * 1.25)
    return float(lower_ns[-1])


def latency_summary(counts: Sequence[int], lower_ns: Sequence[int]) -> dict[str, Any]:
    """Count, P50, P99 and P99.9 (ns, upper bounds) of one histogram."""
    return {
        "count": sum(counts),
        "p50_ns": percentile_ns(counts, lower_ns, 0.50),
        "p99_ns": percentile_ns(counts, lower_ns, 0.99),
        "p999_ns": percentile_ns(counts, lower_ns, 0.999),
    }


def delta(before: Stats, after: Stats) -> Stats:
    """What happened between two samples of the same scheduler: counter increments per
    worker and in total, steal events (thief, victim, count), latency histograms of the
    jobs started in between, and the rates over the interval."""
    seconds = max((after["time_ns"] - before["time_ns"]) / 1e9, 1e-9)
    per_worker = []
    steals = []
    for thief, (b, a) in enumerate(zip(before["per_worker"], after["per_worker"], strict=True)):
        per_worker.append({k: a[k] - b[k] for k in COUNTERS} | {"deque": a["deque"],
                          "mailbox": a["mailbox"]})  # fmt: skip
        for victim, (sb, sa) in enumerate(zip(b["steals_from"], a["steals_from"], strict=True)):
            if sa > sb:
                steals.append({"from": victim, "to": thief, "count": sa - sb})
    totals = {k: after["totals"][k] - before["totals"][k] for k in COUNTERS}
    lower = after["latency"]["bucket_lower_ns"]
    hot = [a - b for a, b in zip(after["latency"]["hot"], before["latency"]["hot"], strict=True)]
    parked = [
        a - b for a, b in zip(after["latency"]["parked"], before["latency"]["parked"], strict=True)
    ]
    return {
        "seconds": seconds,
        "totals": totals,
        "jobs_per_s": totals["executed"] / seconds,
        "per_worker": per_worker,
        "steals": steals,
        "latency": {
            "bucket_lower_ns": lower,
            "hot": hot,
            "parked": parked,
            "hot_summary": latency_summary(hot, lower),
            "parked_summary": latency_summary(parked, lower),
        },
    }
