"""Native runs: every job runs exactly once whatever the submission pattern, fork-join
fib is right, runs start without blocking and can be cancelled."""

from __future__ import annotations

import pytest

from engines.scheduler import Scheduler, UnknownKernel


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@pytest.mark.parametrize("pattern", ["fork", "split", "outside"])
def test_every_job_runs_exactly_once(sched, pattern):
    res = sched.run_native("noop", 300_000, pattern=pattern, submitters=8, verify=True)
    assert res["done"]
    assert (res["missing"], res["duplicates"]) == (0, 0)
    assert res["completed"] == 300_000


@pytest.mark.slow
def test_ten_million_jobs_from_many_outside_threads_none_lost_or_repeated():
    with Scheduler(workers=4, pool_size=4096) as s:
        before = s.stats()["totals"]["executed"]
        res = s.run_native("noop", 10**7, pattern="outside", submitters=8, verify=True)
        after = s.stats()["totals"]
    assert (res["missing"], res["duplicates"]) == (0, 0)
    assert after["executed"] - before == 10**7
    assert after["mailbox_pushes"] >= 10**7


@pytest.mark.parametrize(("n", "cutoff"), [(20, 2), (25, 10), (1, 2), (0, 2)])
def test_fork_join_fib_is_correct(sched, n, cutoff):
    res = sched.run_native("fib", 4, pattern="split", fib_n=n, cutoff=cutoff)
    assert res["checksum"] == 4 * fib(n)


def test_fork_join_spawns_are_stolen(sched):
    before = sched.stats()["totals"]
    res = sched.run_native("fib", 1, fib_n=27, cutoff=2)
    after = sched.stats()["totals"]
    assert res["checksum"] == fib(27)
    assert after["executed"] - before["executed"] > 100_000  # one job per spawn
    assert after["steal_attempts"] >= after["stolen"]


def test_skewed_work_is_balanced_by_stealing():
    with Scheduler(workers=2) as s:
        res = s.run_native("skew", 2000, pattern="split", work_us=20, verify=True)
        per = s.stats()["per_worker"]
    assert (res["missing"], res["duplicates"]) == (0, 0)
    assert all(w["executed"] > 0 for w in per)
    assert sum(w["stolen"] for w in per) > 0


def test_start_native_returns_at_once_and_can_be_cancelled(sched):
    run = sched.start_native("spin", 1_000_000, pattern="outside", work_us=50, submitters=2)
    assert not run.done()  # 50 s of work: certainly not finished on return
    assert run.progress()["completed"] < 1_000_000
    run.cancel()
    res = run.result(timeout=60)
    assert res["done"]
    assert res["completed"] == 1_000_000
    assert 0 < res["cancelled"] <= 1_000_000  # none may have started yet


def test_wait_times_out_on_a_long_run(sched):
    run = sched.start_native("spin", 10_000, pattern="fork", work_us=1000)
    assert run.wait(timeout=0.01) is False
    with pytest.raises(TimeoutError):
        run.result(timeout=0.01)
    run.cancel()
    assert run.wait(timeout=60)


def test_empty_run_completes(sched):
    assert sched.run_native("noop", 0)["done"]


def test_unknown_kernel_and_pattern_are_refused(sched):
    with pytest.raises(UnknownKernel, match="choose from"):
        sched.start_native("sleep", 10)
    with pytest.raises(UnknownKernel, match="pattern"):
        sched.start_native("noop", 10, pattern="scatter")
    with pytest.raises(ValueError, match="count"):
        sched.start_native("noop", -1)


def test_a_job_can_wait_for_a_native_run_on_a_single_worker():
    with Scheduler(workers=1) as s:

        def job():
            return s.run_native("noop", 10_000, pattern="split", verify=True)["missing"]

        assert s.submit(job).result(timeout=60) == 0
