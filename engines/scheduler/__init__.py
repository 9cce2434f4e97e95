"""A work-stealing job scheduler: a C core (C11 atomics, pthreads) wrapped by Cython.

Why it exists: to show, running, what a modern scheduler does -- per-worker Chase-Lev
deques (Le et al., PPoPP 2013), Vyukov MPSC mailboxes for submissions from outside,
randomized stealing, spin-then-park idling with a bounded number of searching workers
(Go, Tokio), job records from a preallocated pool -- and to measure it against oneTBB.

    with Scheduler(workers=2) as s:
        s.submit(pow, 2, 10).result()            # 1024
        list(s.map(abs, [-1, -2]))               # [1, 2]
        run = s.start_native("noop", 10**6)      # returns at once; runs without the GIL
        run.wait(); run.progress()["jobs_per_s"]

Command line: ``python -m engines.scheduler --help`` (``run`` a native workload with a
progress bar, ``bench`` the scheduler's own figures; ``bench/scheduler.py`` compares them
with oneTBB and ThreadPoolExecutor).

Fork-join from inside a job: ``s.spawn(fn, ...)`` pushes onto the current worker's deque
and ``s.join(*futures)`` (or ``future.result()``) runs other jobs while it waits.

Non-blocking use from asyncio (the live demo): ``run = s.start_native(...)`` never blocks;
poll ``run.done()`` / ``run.progress()`` and ``s.stats()`` from the event loop (both are
cheap: a few µs per worker, no locks, no GIL hand-over to the workers), or iterate
``engines.scheduler.watch.watch(s, run, interval=0.1)``, which does exactly that::

    async for sample in watch(s, run):      # ~10 samples/s, the last after the run
        send(sample["delta"]["jobs_per_s"], sample["delta"]["steals"], ...)

``Scheduler.stats()`` returns, with counters cumulative since the scheduler started::

    {
      "workers": 2,
      "time_ns": 1234567890,          # CLOCK_MONOTONIC now: diff two samples for rates
      "uptime_s": 12.5,
      "searching": 1,                 # workers spinning for work right now
      "parked": 1,                    # workers asleep on their futex right now
      "inflight": 3,                  # Python jobs + native runs not yet complete
      "pool": {"size": 65536, "waits": 0},   # waits: submitter found no free record
      "totals": {"executed", "stolen", "steal_attempts", "mailbox_pushes", "parks",
                 "cancelled"},        # sums of the per-worker counters below
      "per_worker": [{
          "executed": int,            # jobs run by this worker
          "stolen": int,              # jobs it took from other workers
          "steal_attempts": int,      # victims it probed
          "mailbox_pushes": int,      # outside submissions into its mailbox
          "parks": int,               # times it went to sleep
          "cancelled": int,           # native jobs skipped because cancelled
          "deque": int,               # queue depth now: its deque ...
          "mailbox": int,             # ... and its mailbox
          "steals_from": [int, ...],  # jobs it stole from worker j (steal arrows: diff)
      }, ...],
      "latency": {                    # submit-to-start, log-linear buckets (4 per octave)
          "bucket_lower_ns": [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, ...],
          "hot": [count, ...],        # started by a worker that was running or spinning
          "parked": [count, ...],     # the first job a worker ran after being woken
          "hot_summary": {"count", "p50_ns", "p99_ns", "p999_ns"},  # since start; None
          "parked_summary": {...},    # when empty. Upper bucket edges (<= 25% high)
      },
    }

``engines.scheduler.metrics`` turns two samples into rates and percentiles.
"""

from __future__ import annotations

import atexit
import os

from ._scheduler import (
    KERNELS,
    LATENCY_BUCKET_LOWER_NS,
    PATTERNS,
    Future,
    NativeRun,
    Scheduler,
    _after_fork_in_child,
    _shutdown_all,
)
from .errors import JobCancelled, SchedulerClosed, SchedulerError, UnknownKernel

# Worker threads must not outlive the interpreter: stop them before finalization.
atexit.register(_shutdown_all)
os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "KERNELS",
    "LATENCY_BUCKET_LOWER_NS",
    "PATTERNS",
    "Future",
    "JobCancelled",
    "NativeRun",
    "Scheduler",
    "SchedulerClosed",
    "SchedulerError",
    "UnknownKernel",
]
