"""Watching a native run from asyncio: samples flow and the event loop keeps running."""

from __future__ import annotations

import asyncio

from engines.scheduler.watch import watch


async def test_watch_streams_samples_without_blocking_the_loop(sched):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    executed_before = sched.stats()["totals"]["executed"]
    run = sched.start_native("skew", 20_000, pattern="split", work_us=20)
    samples = [sample async for sample in watch(sched, run, interval=0.02)]
    ticking.cancel()
    assert samples[-1]["progress"]["done"]
    assert samples[-1]["progress"]["completed"] == 20_000
    assert samples[-1]["stats"]["totals"]["executed"] - executed_before == 20_000
    assert sum(s["delta"]["totals"]["executed"] for s in samples) <= 20_000
    assert all(s["delta"]["jobs_per_s"] >= 0 for s in samples)
    assert ticks >= len(samples) - 1  # the loop ran between samples


async def test_watch_of_a_finished_run_yields_one_final_sample(sched):
    run = sched.start_native("noop", 1000)
    run.wait()
    samples = [sample async for sample in watch(sched, run)]
    assert len(samples) == 1
    assert samples[0]["progress"]["done"]
