"""Shutting down with work in flight finishes it or cancels it, and never hangs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from engines.scheduler import JobCancelled, Scheduler, SchedulerClosed, SchedulerError


def test_shutdown_waits_for_work_in_flight():
    s = Scheduler(workers=2)
    futures = [s.submit(time.sleep, 0.001) for _ in range(200)]
    run = s.start_native("spin", 2000, pattern="split", work_us=50)
    s.shutdown(wait=True)
    assert all(f.done() and f.exception() is None for f in futures)
    assert run.done()
    assert run.progress()["cancelled"] == 0


def test_shutdown_with_cancel_pending_cancels_the_queue():
    s = Scheduler(workers=1)
    futures = [s.submit(time.sleep, 0.002) for _ in range(2000)]
    run = s.start_native("spin", 100_000, pattern="fork", work_us=100)
    s.shutdown(wait=True, cancel_pending=True)
    outcomes = {"done": 0, "cancelled": 0}
    for f in futures:
        assert f.done()
        if isinstance(f.exception(), JobCancelled):
            outcomes["cancelled"] += 1
        else:
            assert f.exception() is None
            outcomes["done"] += 1
    assert outcomes["cancelled"] > 0
    res = run.progress()
    assert res["done"]
    assert res["cancelled"] > 0


def _submit_then_raise(futures):
    with Scheduler(workers=1) as s:
        futures.extend(s.submit(time.sleep, 0.002) for _ in range(1000))
        raise RuntimeError("leaving early")


def test_context_manager_cancels_when_the_block_raises():
    futures = []
    with pytest.raises(RuntimeError, match="leaving early"):
        _submit_then_raise(futures)
    assert all(f.done() for f in futures)
    assert isinstance(futures[-1].exception(), JobCancelled)


def test_closed_scheduler_refuses_work_and_shutdown_is_idempotent():
    s = Scheduler(workers=1)
    s.shutdown()
    s.shutdown()
    assert s.closed
    with pytest.raises(SchedulerClosed, match="shut down"):
        s.submit(abs, 1)
    with pytest.raises(SchedulerClosed):
        s.start_native("noop", 1)
    with pytest.raises(SchedulerClosed):
        s.stats()


def test_shutdown_from_inside_a_job_is_refused(sched):
    with pytest.raises(SchedulerError, match="wait for itself"):
        sched.submit(sched.shutdown).result(timeout=30)


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError, match="workers"):
        Scheduler(workers=0)
    with pytest.raises(ValueError, match="pool_size"):
        Scheduler(workers=1, pool_size=1)


SCRIPT = """
import time
from engines.scheduler import Scheduler
s = Scheduler(workers=2)
for _ in range(1000):
    s.submit(time.sleep, 0.001)
s.start_native("spin", 10**6, pattern="outside", work_us=100)
keep = s.submit(lambda: s)  # a job holding the scheduler itself
print("exiting", flush=True)
"""


def test_interpreter_exit_with_work_in_flight_does_not_hang():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "exiting" in proc.stdout


FORK_SCRIPT = """
import os
from engines.scheduler import Scheduler, SchedulerClosed
s = Scheduler(workers=2)
assert s.submit(abs, -1).result() == 1
pid = os.fork()
if pid == 0:
    try:
        s.submit(abs, -2)
    except SchedulerClosed as exc:
        os._exit(0 if "fork" in str(exc) else 3)
    os._exit(4)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert s.submit(abs, -3).result() == 3
print("ok", flush=True)
"""


def test_a_forked_child_gets_a_clear_error_not_a_hang():
    proc = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_jobs_in_flight_may_still_fork_while_shutdown_waits():
    s = Scheduler(workers=2)
    started = threading.Event()

    def fib(n):
        started.set()
        if n < 2:
            return n
        left = s.spawn(fib, n - 1)
        return fib(n - 2) + s.join(left)[0]

    f = s.submit(fib, 17)
    started.wait(timeout=30)
    s.shutdown(wait=True)
    assert f.result() == 1597
    with pytest.raises(SchedulerClosed):
        s.submit(fib, 1)
