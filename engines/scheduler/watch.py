"""Watching a native run from asyncio without blocking the event loop: the live demo's
feed. ``start_native`` returns at once; this samples the run and the scheduler's figures
at a steady rate (both calls take microseconds and never wait for the workers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from . import metrics
from ._scheduler import NativeRun, Scheduler


async def watch(
    scheduler: Scheduler, run: NativeRun, interval: float = 0.1
) -> AsyncIterator[dict[str, Any]]:
    """Yield a sample every ``interval`` seconds until ``run`` is done (the last sample is
    taken after it finished). Each sample: ``progress`` (``run.progress()``), ``stats``
    (``scheduler.stats()``) and ``delta`` (``metrics.delta`` since the previous sample:
    jobs/s, steal events, per-worker increments, latency of the jobs started meanwhile).

    Cancelling the consuming task leaves the run going: call ``run.cancel()`` to stop it.
    """
    before = scheduler.stats()
    while True:
        done = run.done()
        await asyncio.sleep(0 if done else interval)
        now = scheduler.stats()
        yield {"progress": run.progress(), "stats": now, "delta": metrics.delta(before, now)}
        before = now
        if done:
            return
