"""The SQL firewall demo's load test: the owner's 2,000 queries over 20 connections, run
straight to PostgreSQL and then through the firewall, each query timed by the client, so the
page can show what the proxy costs: total time, per-query percentiles and both histograms.
``demos.consumers.FirewallConsumer`` drives :func:`load_test`.

One load test runs per process at a time (20 connections are the proxy's whole pool); a
second waits its turn, up to :data:`LOAD_QUEUE_WAIT`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import psycopg

from .firewall import connect_direct, connect_through_firewall, ensure_sandbox

LOAD_QUERIES = 2_000  # the owner's test: 2,000 queries over 20 connections
LOAD_CONNECTIONS = 20
LOAD_PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks
LOAD_QUEUE_WAIT = 45.0  # seconds a load test waits for the one running before giving up
WARM_UP_WAIT = 2.0  # seconds the warm-up holds a server connection waiting for the others
LOAD_QUERY = "SELECT id, name, email, city FROM customers WHERE id = %s"
LOAD_TARGETS = ("direct", "firewall")  # measured in this order, the same way


class LoadTestBusy(RuntimeError):
    """Load tests kept the slot for longer than a visitor is asked to wait."""


_load_running = False  # one load test per process: 20 connections are the whole pool


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


# Histogram bucket upper bounds in ms, log-spaced: 50 µs up to 5 s, four per doubling-ish.
_BOUNDS_MS = [float(f"{0.05 * 1.25**k:.3g}") for k in range(52)]


def _bucket_counts(latencies_ms: list[float]) -> list[int]:
    """How many latencies fall in each bucket (the last one: past every bound)."""
    counts = [0] * (len(_BOUNDS_MS) + 1)
    for value in latencies_ms:
        counts[bisect.bisect_left(_BOUNDS_MS, value)] += 1
    return counts


def latency_histogram(
    latencies_ms: list[float], also: list[float] | None = None
) -> list[list[float]]:
    """``[[upper_bound_ms, count], ...]`` over log-spaced buckets, from the first non-empty
    bucket to the last (the final bound is +Inf's stand-in: the maximum). With ``also``,
    another series, the range spans the buckets either uses, so that the two histograms
    line up bar for bar."""
    counts = _bucket_counts(latencies_ms)
    everything = [*latencies_ms, *(also or [])]
    used = [i for i, c in enumerate(_bucket_counts(everything)) if c]
    if not used:
        return []
    bounds = [*_BOUNDS_MS, max(everything)]
    return [[round(bounds[i], 3), counts[i]] for i in range(used[0], used[-1] + 1)]


def latency_summary(
    latencies_ms: list[float], seconds: float, also: list[float] | None = None
) -> dict[str, Any]:
    """One target's figures: the run's wall time and rate, and per-query percentiles; its
    histogram spans ``also``'s buckets too (see :func:`latency_histogram`)."""
    ordered = sorted(latencies_ms)
    return {
        "queries": len(ordered),
        "seconds": round(seconds, 3),
        "qps": round(len(ordered) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(_percentile(ordered, 0.50), 3),
        "p95_ms": round(_percentile(ordered, 0.95), 3),
        "p99_ms": round(_percentile(ordered, 0.99), 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(sum(ordered) / len(ordered), 3),
        "histogram": latency_histogram(ordered, also),
    }


async def _warm_up(conns: list[psycopg.AsyncConnection], key: int) -> None:
    """One untimed query per connection, as benchmarks warm up. The proxy opens server
    connections on demand, and their logins are not what the test measures, so each query
    runs in a transaction held (briefly) until every connection holds a server connection
    of its own: the pool is at full size before the clock starts."""
    holding = 0
    everyone = asyncio.Event()

    async def warm(conn: psycopg.AsyncConnection) -> None:
        nonlocal holding
        async with conn.transaction():
            await conn.execute(LOAD_QUERY, [key])
            holding += 1
            if holding == len(conns):
                everyone.set()
            # A pool smaller than the test cannot hold them all: do not wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WARM_UP_WAIT):
                    await everyone.wait()

    await asyncio.gather(*(warm(conn) for conn in conns))


async def _claim_load_slot(waiting: Callable[[], None]) -> None:
    """Take the process's load-test slot, waiting (up to ``LOAD_QUEUE_WAIT``) for a load
    test already running, whoever started it: a few seconds in line beat a refusal."""
    global _load_running
    deadline = time.monotonic() + LOAD_QUEUE_WAIT
    told = False
    while _load_running:
        if time.monotonic() > deadline:
            raise LoadTestBusy(
                "other load tests kept the server busy for a while; try again in a minute"
            )
        if not told:
            waiting()
            told = True
        await asyncio.sleep(0.1)
    _load_running = True


async def _run_target(
    target: str,
    queries: int,
    connections: int,
    ids: list[int],
    report: Callable[[str, int, float], None],
) -> tuple[list[float], float, int]:
    """``queries`` timed queries over ``connections`` logins to ``target`` after the warm-up;
    returns (latencies in ms, wall seconds, connections used)."""
    connect = connect_direct if target == "direct" else connect_through_firewall
    conns: list[psycopg.AsyncConnection] = []
    try:
        opened = await asyncio.gather(
            *(connect(autocommit=True) for _ in range(min(connections, queries))),
            return_exceptions=True,
        )
        conns = [c for c in opened if isinstance(c, psycopg.AsyncConnection)]
        failures = [c for c in opened if isinstance(c, BaseException)]
        if failures:
            raise failures[0]
        await _warm_up(conns, ids[0])

        latencies: list[float] = []
        issued = 0
        started = time.perf_counter()

        async def worker(conn: psycopg.AsyncConnection) -> None:
            nonlocal issued
            while issued < queries:
                n = issued
                issued += 1
                t0 = time.perf_counter()
                await conn.execute(LOAD_QUERY, [ids[n % len(ids)]])
                latencies.append((time.perf_counter() - t0) * 1000)

        async def reporter() -> None:
            while True:
                await asyncio.sleep(LOAD_PROGRESS_INTERVAL)
                report(target, len(latencies), time.perf_counter() - started)

        ticker = asyncio.create_task(reporter())
        try:
            await asyncio.gather(*(worker(conn) for conn in conns))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        seconds = time.perf_counter() - started
        report(target, len(latencies), seconds)
        return latencies, seconds, len(conns)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)


async def load_test(
    queries: int = LOAD_QUERIES,
    connections: int = LOAD_CONNECTIONS,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Replay the owner's test: ``queries`` one-row primary-key SELECTs spread over
    ``connections`` concurrent connections, first straight to PostgreSQL, then through the
    firewall, each timed client-side after one untimed warm-up query per connection (see
    :func:`_warm_up`). The difference between the two is what the proxy costs.

    ``progress`` is called about ten times a second with ``{"target", "done", "total",
    "seconds", "qps"}`` (``done`` and ``total`` count both runs), and once with
    ``{"queued": true}`` when the test waits for another load test to finish. Returns the
    firewall's figures at the top level, the direct run's under ``"direct"`` and the
    per-query difference under ``"added_ms"``.
    """
    global _load_running
    if queries < 1 or connections < 1:
        raise ValueError("a load test needs at least one query and one connection")

    def tell(item: dict[str, Any]) -> None:
        if progress is not None:
            progress(item)

    def report(target: str, done: int, seconds: float) -> None:
        offset = LOAD_TARGETS.index(target) * queries
        tell(
            {
                "target": target,
                "done": offset + done,
                "total": len(LOAD_TARGETS) * queries,
                "seconds": round(seconds, 3),
                "qps": round(done / seconds) if seconds > 0 else 0,
            }
        )

    await _claim_load_slot(lambda: tell({"queued": True}))
    try:
        await ensure_sandbox()
        async with await connect_direct() as conn:
            try:
                cur = await conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1000")
            except psycopg.errors.UndefinedTable as exc:
                raise ValueError("the sample tables are missing: press Reset") from exc
            ids = [row[0] for row in await cur.fetchall()]
        if not ids:
            raise ValueError("the customers table is empty: press Reset to refill it")
        runs = {}
        for target in LOAD_TARGETS:
            runs[target] = await _run_target(target, queries, connections, ids, report)
    finally:
        _load_running = False

    (direct_ms, direct_s, _), (through_ms, through_s, used) = runs["direct"], runs["firewall"]
    direct = latency_summary(direct_ms, direct_s, also=through_ms)
    through = latency_summary(through_ms, through_s, also=direct_ms)
    return {
        **through,
        "connections": used,
        "direct": direct,
        "added_ms": {
            key: round(through[f"{key}_ms"] - direct[f"{key}_ms"], 3)
            for key in ("p50", "p95", "p99", "mean")
        },
        "query": LOAD_QUERY.replace("%s", "$1"),
        "warmup": used,
    }
