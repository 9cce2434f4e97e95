"""stats(): the figures add up, and sampling while a run is going is safe and cheap
enough for the live demo."""

from __future__ import annotations

import itertools
import threading
import time

from engines.scheduler import LATENCY_BUCKET_LOWER_NS, Scheduler, metrics

PER_WORKER_KEYS = {
    "executed",
    "stolen",
    "steal_attempts",
    "mailbox_pushes",
    "parks",
    "cancelled",
    "deque",
    "mailbox",
    "steals_from",
}


def test_shape(sched):
    st = sched.stats()
    assert st["workers"] == 2
    assert len(st["per_worker"]) == 2
    assert all(set(w) == PER_WORKER_KEYS for w in st["per_worker"])
    assert all(len(w["steals_from"]) == 2 for w in st["per_worker"])
    assert set(st["totals"]) == set(metrics.COUNTERS)
    lat = st["latency"]
    assert lat["bucket_lower_ns"] == LATENCY_BUCKET_LOWER_NS
    assert len(lat["hot"]) == len(lat["parked"]) == len(LATENCY_BUCKET_LOWER_NS)
    assert lat["bucket_lower_ns"] == sorted(set(lat["bucket_lower_ns"]))
    assert set(lat["hot_summary"]) == {"count", "p50_ns", "p99_ns", "p999_ns"}
    assert lat["parked_summary"]["count"] == sum(lat["parked"])


def test_counters_add_up_after_runs(sched):
    before = sched.stats()
    sched.run_native("noop", 50_000, pattern="split")
    sched.run_native("noop", 50_000, pattern="outside", submitters=4)
    sched.run_native("noop", 50_000, pattern="fork")
    list(sched.map(abs, range(1000)))
    d = metrics.delta(before, sched.stats())
    # fork adds its root job; every job started is in one latency histogram or the other
    assert d["totals"]["executed"] == 150_000 + 1 + 1000
    assert (
        d["latency"]["hot_summary"]["count"] + d["latency"]["parked_summary"]["count"]
        == (d["totals"]["executed"])
    )
    assert d["totals"]["mailbox_pushes"] == 50_000 + 2 + 1000  # outside jobs, 2 roots, map
    assert sum(s["count"] for s in d["steals"]) == d["totals"]["stolen"]
    assert d["totals"]["steal_attempts"] >= d["totals"]["stolen"]


def test_idle_workers_park_and_are_counted():
    with Scheduler(workers=2, spin_us=10) as s:
        s.run_native("noop", 1000)
        deadline = time.monotonic() + 30
        while s.stats()["parked"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        st = s.stats()
        assert st["parked"] == 2
        assert st["searching"] == 0
        assert st["totals"]["parks"] >= 2
        # a job submitted now wakes a parked worker: its latency is "parked"
        s.submit(abs, 1).result(timeout=30)
        assert sum(s.stats()["latency"]["parked"]) >= 1


def test_sampling_while_running_is_safe(sched):
    run = sched.start_native("skew", 20_000, pattern="split", work_us=20)
    samples = []

    def sampler():
        while not run.done():
            samples.append(sched.stats())
            time.sleep(0.001)

    t = threading.Thread(target=sampler)
    t.start()
    run.wait(timeout=60)
    t.join(timeout=60)
    samples.append(sched.stats())
    assert len(samples) >= 2
    for a, b in itertools.pairwise(samples):
        d = metrics.delta(a, b)
        assert all(v >= 0 for v in d["totals"].values())
        assert all(w["deque"] >= 0 and w["mailbox"] >= 0 for w in d["per_worker"])
    assert samples[-1]["inflight"] == 0


def test_percentiles_of_a_histogram():
    lower = LATENCY_BUCKET_LOWER_NS
    counts = [0] * len(lower)
    i = lower.index(512)
    counts[i] = 99
    counts[i + 8] = 1
    summary = metrics.latency_summary(counts, lower)
    assert summary["count"] == 100
    assert summary["p50_ns"] == lower[i + 1]  # upper edge of the bucket
    assert summary["p99_ns"] == lower[i + 1]
    assert summary["p999_ns"] == lower[i + 9]
    assert metrics.latency_summary([0] * len(lower), lower)["p50_ns"] is None
