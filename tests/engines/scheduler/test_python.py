"""Python jobs: futures, map, fork-join with spawn/join, exceptions, and many submitting
threads at once without losing or repeating a job."""

from __future__ import annotations

import threading

import pytest

from engines.scheduler import Future, Scheduler


class Boom(Exception):
    pass


def test_submit_returns_a_future_with_the_result(sched):
    f = sched.submit(pow, 2, 10)
    assert isinstance(f, Future)
    assert f.result(timeout=10) == 1024
    assert f.done()
    assert f.exception() is None


def test_map_keeps_order(sched):
    assert list(sched.map(lambda a, b: a * b, range(1000), range(1000))) == [
        i * i for i in range(1000)
    ]


def test_exceptions_reach_the_caller_with_their_type_and_traceback(sched):
    def fail(x):
        raise Boom(f"bad {x}")

    f = sched.submit(fail, 7)
    with pytest.raises(Boom, match="bad 7") as info:
        f.result()
    assert any(entry.name == "fail" for entry in info.traceback)
    assert isinstance(f.exception(), Boom)
    with pytest.raises(Boom):
        list(sched.map(fail, [1]))


def test_an_exception_in_a_spawned_child_reaches_the_joining_parent(sched):
    def child():
        raise Boom("child")

    def parent():
        try:
            sched.join(sched.spawn(child))
        except Boom as exc:
            return f"caught {exc}"
        return "not raised"

    assert sched.submit(parent).result(timeout=30) == "caught child"


def test_fork_join_fib_with_spawn_and_join(sched):
    def fib(n):
        if n < 2:
            return n
        left = sched.spawn(fib, n - 1)
        right = fib(n - 2)
        (left_value,) = sched.join(left)
        return left_value + right

    assert sched.submit(fib, 18).result(timeout=60) == 2584
    assert sched.stats()["totals"]["executed"] >= 4181  # one job per spawn


def test_result_times_out_while_a_job_runs(sched):
    gate = threading.Event()
    f = sched.submit(gate.wait, 30)
    with pytest.raises(TimeoutError):
        f.result(timeout=0.05)
    assert not f.done()
    gate.set()
    assert f.result(timeout=30) is True


def test_python_jobs_from_many_threads_none_lost_or_repeated():
    jobs, threads = 100_000, 16
    seen = []
    with Scheduler(workers=2, pool_size=1024) as s:
        futures: list[list[Future]] = [[] for _ in range(threads)]

        def submitter(k):
            for i in range(k, jobs, threads):
                futures[k].append(s.submit(seen.append, i))

        ts = [threading.Thread(target=submitter, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for fs in futures:
            for f in fs:
                f.result(timeout=60)
    assert len(seen) == jobs
    assert sorted(seen) == list(range(jobs))


def test_submit_from_inside_a_job_uses_the_workers_deque(sched):
    def parent():
        return [f.result() for f in [sched.submit(abs, -i) for i in range(100)]]

    assert sched.submit(parent).result(timeout=30) == list(range(100))
