"""The work-stealing scheduler demo's work: check a visitor's workload, run it on a fresh
``engines.scheduler.Scheduler`` while sampling its figures ~10 times a second, measure
submit-to-start of single jobs sent to the same, now idle, workers, then time the same
Python callables through ``concurrent.futures.ThreadPoolExecutor`` for comparison.

Longer than most modules (about 530 lines) because one run's whole life is here: the checked
workload and its caps, the Python-job driver that mirrors a native run, the samples, the
idle-pool probe and the summary read the same figures, and splitting them would scatter one
contract across files.

Two latencies, kept apart because they answer different questions: the run's own histogram
is mostly *queueing delay* (a burst of N jobs queued at once waits for a worker, so its P50
grows with N), while the idle-pool probe after it is what "submit-to-start" means on the
project's card: how soon a job starts when a worker is free (:func:`idle_latency`).

Plain functions; ``demos.consumers.SchedulerConsumer`` drives :func:`run_demo`. The engine's
runs never hold the event loop: native kernels run without the GIL, Python jobs are fed by
worker threads or a submitting thread, and blocking calls (waiting, shutting down, the
comparison) go through ``asyncio.to_thread``.

What a visitor may cost the server, and why:

* one run per process at a time (:class:`SchedulerBusy` otherwise): the server has few
  cores, and two runs at once would only measure each other;
* at most :data:`MAX_WORKERS` worker threads: a few more than the cores, so oversubscription
  can be seen, never a thread per visitor's whim;
* a count cap per job kind, and a cap on the estimated work (:data:`MAX_WORK_SECONDS`),
  checked before anything starts; the run is cancelled at :data:`MAX_RUN_SECONDS` of wall
  time whatever the estimate said;
* the idle-pool probe is fixed: :data:`IDLE_HOT_PROBES` jobs :data:`IDLE_HOT_INTERVAL_US`
  apart, then :data:`IDLE_PARKED_PROBES` :data:`IDLE_PARKED_INTERVAL_US` apart, about
  :data:`IDLE_PROBE_SECONDS` in all, whatever the visitor asked for;
* the comparison runs at most :data:`COMPARE_MAX` Python callables through each pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engines.scheduler import LATENCY_BUCKET_LOWER_NS, Scheduler, SchedulerClosed, measure, metrics
from engines.scheduler.watch import watch

logger = logging.getLogger(__name__)

MAX_WORKERS = 4
MAX_RUN_SECONDS = 15.0  # wall time before a run is cancelled, whatever its size
MAX_WORK_SECONDS = 8.0  # estimated wall time a visitor may ask for, checked up front
SAMPLE_INTERVAL = 0.1  # seconds between samples: ~10 a second
COMPARE_MAX = 20_000  # Python callables through each pool in the comparison
PACED_INTERVAL_US = 250.0  # "paced": one job every 250 µs, longer than the workers spin
SPIN_US = 20.0  # a "spin" job's busy time
SKEW_US = 10.0  # a "skew" job's busy time, one in eight 16 times longer
FIB_N, FIB_CUTOFF = 24, 12  # a "fib" job: fork-join fib(24), sequential below 12
# The idle-pool probe (see idle_latency). The workers spin 50 µs (Scheduler's spin_us)
# before they park: 20 µs apart a job finds one still spinning, 1 ms apart all are asleep.
IDLE_HOT_PROBES, IDLE_HOT_INTERVAL_US = 2_000, 20.0
IDLE_PARKED_PROBES, IDLE_PARKED_INTERVAL_US = 200, 1_000.0
IDLE_PROBE_SECONDS = (
    IDLE_HOT_PROBES * IDLE_HOT_INTERVAL_US + IDLE_PARKED_PROBES * IDLE_PARKED_INTERVAL_US
) / 1e6


def server_cores() -> int:
    """CPUs this process may run on (what the workers really share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class JobKind:
    """One kind of job the visitor can pick: what it is and what one costs."""

    name: str
    label: str
    description: str
    max_count: int
    default_count: int
    cost_us: float  # CPU time of one job, roughly, for the up-front work estimate
    native: dict[str, Any]  # start_native options (empty for Python jobs)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in [
        JobKind("noop", "empty native jobs", "C jobs that do nothing: pure scheduler overhead",
                5_000_000, 1_000_000, 0.25, {}),
        JobKind("spin", f"native {SPIN_US:g} µs jobs", f"C jobs that spin for {SPIN_US:g} µs each",
                1_000_000, 200_000, SPIN_US, {"work_us": SPIN_US}),
        JobKind("skew", "native skewed jobs",
                f"C jobs of {SKEW_US:g} µs, one in eight {16 * SKEW_US:g} µs: stealing evens "
                "them out", 1_000_000, 200_000, SKEW_US * (7 + 16) / 8, {"work_us": SKEW_US}),
        JobKind("fib", f"native fork-join fib({FIB_N})",
                f"each job computes fib({FIB_N}) by spawning two subjobs down to n={FIB_CUTOFF}",
                100_000, 10_000, 190.0, {"fib_n": FIB_N, "cutoff": FIB_CUTOFF}),
        JobKind("python", "Python callables",
                "a small Python function per job, through Scheduler.submit (spawn inside jobs)",
                300_000, 100_000, 2.0, {}),
    ]
}  # fmt: skip

PATTERNS: dict[str, str] = {
    "fork": "one root job spawns them all onto its own deque; the others must steal",
    "split": "recursive halving: each job spawns the upper half of its range",
    "outside": "a thread outside the pool submits them through the workers' mailboxes",
    "paced": f"from outside, one every {PACED_INTERVAL_US:g} µs: workers go idle and park",
}

PARAM_NAMES = ("workers", "count", "kind", "pattern")
DEFAULTS = {"workers": 2, "count": 200_000, "kind": "spin", "pattern": "fork"}


class SchedulerBusy(RuntimeError):
    """Another run is going in this process; one at a time."""


@dataclass(frozen=True)
class RunParams:
    """A checked workload: every field within the caps."""

    workers: int
    count: int
    kind: str
    pattern: str


def estimated_seconds(kind: str, pattern: str, count: int, workers: int) -> float:
    """Rough wall time of a workload on this server: its CPU time over the workers that can
    run at once, or the pace of a paced submission, whichever is longer."""
    parallel = max(1, min(workers, server_cores()))
    seconds = count * KINDS[kind].cost_us / parallel / 1e6
    if pattern == "paced":
        seconds = max(seconds, count * PACED_INTERVAL_US / 1e6)
    return seconds


def max_count(kind: str, pattern: str, workers: int) -> int:
    """The most jobs of ``kind`` a visitor may run with ``pattern`` on ``workers``."""
    per_job = estimated_seconds(kind, pattern, 1_000_000, workers) / 1e6
    return max(1, min(KINDS[kind].max_count, int(MAX_WORK_SECONDS / per_job)))


def _integer(params: dict[str, Any], name: str) -> int:
    value = params.get(name, DEFAULTS[name])
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # 1000.0 from a JS number
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\+?\d{1,12}\s*", value):
        return int(value)
    raise ValueError(f'"{name}" must be a whole number, got {str(value)[:40]!r}')


def _shown(number: int) -> str:
    """A number for an error message, without echoing thousands of digits back."""
    return f"{number:,}" if abs(number) < 10**15 else "a far larger number"


def _choice(params: dict[str, Any], name: str, choices: dict[str, Any]) -> str:
    value = params.get(name, DEFAULTS[name])
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f'"{name}" must be one of {", ".join(choices)}; got {str(value)[:40]!r}')
    return value


def check_params(params: dict[str, Any]) -> RunParams:
    """The visitor's workload, checked against the caps; ValueError says what to change.
    Missing fields take the page's defaults."""
    extra = sorted(set(params) - set(PARAM_NAMES))
    if extra:
        raise ValueError(
            f"unknown parameter {', '.join(repr(e[:40]) for e in extra[:5])}; "
            f"the demo takes {', '.join(PARAM_NAMES)}"
        )
    kind = _choice(params, "kind", KINDS)
    pattern = _choice(params, "pattern", PATTERNS)
    workers = _integer(params, "workers")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f'"workers" must be between 1 and {MAX_WORKERS}, got {_shown(workers)}')
    count = _integer(params, "count")
    limit = max_count(kind, pattern, workers)
    if not 1 <= count <= limit:
        raise ValueError(
            f'"count" must be between 1 and {limit:,} for {KINDS[kind].label} submitted '
            f'"{pattern}" on {workers} worker{"s" if workers > 1 else ""} '
            f"(about {MAX_WORK_SECONDS:g} s of work on this server), got {_shown(count)}"
        )
    return RunParams(workers=workers, count=count, kind=kind, pattern=pattern)


# -- Python jobs ----------------------------------------------------------------------------


def _python_work(i: int) -> int:
    """The Python job: a little arithmetic, so the figures are about the scheduling."""
    return (i * i + 7) % 1009


class PythonRun:
    """Python callables through ``Scheduler.submit``/``spawn``, with the ``done``,
    ``progress`` and ``cancel`` of a NativeRun so that one watch loop serves both."""

    def __init__(self, s: Scheduler, count: int, pattern: str) -> None:
        self.kind = "python"
        self.pattern = pattern
        self._s = s
        self._count = count
        self._finished: list[None] = []  # one append per job run: atomic under the GIL
        self._cancelled = False
        self._submitted = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = time.perf_counter()
        self._end: float | None = None

    def start(self) -> PythonRun:
        self._start = time.perf_counter()
        if self.pattern in ("outside", "paced"):
            self._thread = threading.Thread(target=self._outside, name="demo-submitter")
            self._thread.start()
        else:
            root = self._fork if self.pattern == "fork" else self._split
            self._s.submit(root, 0, self._count)
            self._submitted.set()
        return self

    # Jobs (they run on the scheduler's workers).

    def _job(self, i: int) -> None:
        if self._cancelled:
            return
        _python_work(i)
        self._finished.append(None)
        if len(self._finished) == self._count and self._end is None:
            self._end = time.perf_counter()

    def _fork(self, lo: int, hi: int) -> None:
        for i in range(lo, hi):
            if self._cancelled:
                return
            self._s.spawn(self._job, i)

    def _split(self, lo: int, hi: int) -> None:
        while hi - lo > 1 and not self._cancelled:
            mid = (lo + hi) // 2
            self._s.spawn(self._split, mid, hi)
            hi = mid
        self._job(lo)

    def _outside(self) -> None:
        pace = PACED_INTERVAL_US / 1e6 if self.pattern == "paced" else 0.0
        try:
            for i in range(self._count):
                if self._cancelled:
                    break
                if pace:
                    due = self._start + i * pace
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                self._s.submit(self._job, i)
        except SchedulerClosed:
            pass
        finally:
            self._submitted.set()

    # The NativeRun surface.

    def done(self) -> bool:
        return self._submitted.is_set() and self._s.stats()["inflight"] == 0

    def cancel(self) -> None:
        self._cancelled = True

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        while not self.done():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def progress(self) -> dict[str, Any]:
        ran = len(self._finished)
        done = self.done()
        end = self._end if self._end is not None else time.perf_counter()
        elapsed = end - self._start
        cancelled = self._count - ran if done else 0
        return {  # as NativeRun.progress: "completed" counts cancelled jobs too
            "kind": self.kind,
            "pattern": self.pattern,
            "done": done,
            "count": self._count,
            "completed": ran + cancelled,
            "cancelled": cancelled,
            "elapsed_s": elapsed,
            "jobs_per_s": ran / elapsed if elapsed > 0 else 0.0,
            "missing": None,
            "duplicates": None,
        }


# -- the run --------------------------------------------------------------------------------

_slot = threading.Lock()  # one run per process; released by the thread that shuts it down


def _start(s: Scheduler, params: RunParams) -> Any:
    if params.kind == "python":
        return PythonRun(s, params.count, params.pattern).start()
    pattern = "outside" if params.pattern == "paced" else params.pattern
    return s.start_native(
        params.kind,
        params.count,
        pattern=pattern,
        interval_us=PACED_INTERVAL_US if params.pattern == "paced" else 0.0,
        verify=True,
        **KINDS[params.kind].native,
    )


def _close(s: Scheduler, run: Any) -> None:
    """Stop the run, wait for it, stop the workers, free the slot (in a thread)."""
    try:
        if run is not None and not run.done():
            run.cancel()
            run.wait(30)
        s.shutdown(wait=True, cancel_pending=True)
    except Exception:  # pragma: no cover - logged, the slot must still be freed
        logger.exception("event=scheduler_demo_close_failed")
    finally:
        _slot.release()


def _latency_buckets(hot: list[int], parked: list[int]) -> list[list[int]]:
    """Non-empty buckets only, as [index, hot, parked]: the histogram is mostly zeros."""
    return [[i, h, p] for i, (h, p) in enumerate(zip(hot, parked, strict=True)) if h or p]


def _sample(progress: dict[str, Any], stats: dict[str, Any], step: dict[str, Any],
            run: dict[str, Any], elapsed: float) -> dict[str, Any]:  # fmt: skip
    """One live sample: the interval just gone (``step``) and the run so far (``run``)."""
    return {
        "kind": "sample",
        "t": round(elapsed, 3),
        "completed": progress["completed"],
        "count": progress["count"],
        "jobs_per_s": step["jobs_per_s"],
        "searching": stats["searching"],
        "parked": stats["parked"],
        "workers": [
            {
                "deque": w["deque"],
                "mailbox": w["mailbox"],
                "executed": w["executed"],
                "stolen": w["stolen"],
                "steal_attempts": w["steal_attempts"],
                "parks": w["parks"],
                "total_executed": t["executed"],
            }
            for w, t in zip(step["per_worker"], run["per_worker"], strict=True)
        ],
        "steals": [[s["from"], s["to"], s["count"]] for s in step["steals"]],
        "latency": {
            "buckets": _latency_buckets(run["latency"]["hot"], run["latency"]["parked"]),
            "hot": run["latency"]["hot_summary"],
            "parked": run["latency"]["parked_summary"],
        },
    }


def idle_latency(s: Scheduler) -> dict[str, Any]:
    """Submit-to-start of single empty jobs sent from outside to ``s``'s idle workers: the
    project card's latency figure, measured on the visitor's own pool after their run.

    Two passes of ``engines.scheduler.measure.latency`` (the benchmark's own measure):
    jobs spaced below the workers' spin time mostly find one spinning (``hot``); spaced far
    above it, every worker has parked and each job pays a wake-up (``parked``). Each
    figure comes from its own pass, as in ``bench/scheduler.py``; its ``count`` says how
    many of that pass's starts were of its kind (a few hot-pass jobs find every worker
    parked). Blocking (about :data:`IDLE_PROBE_SECONDS`): call it from a thread.
    """
    hot = measure.latency(s, IDLE_HOT_PROBES, IDLE_HOT_INTERVAL_US)
    parked = measure.latency(s, IDLE_PARKED_PROBES, IDLE_PARKED_INTERVAL_US)
    return {
        "hot": hot["hot"],
        "parked": parked["parked"],
        "probes": IDLE_HOT_PROBES + IDLE_PARKED_PROBES,
        "hot_probes": IDLE_HOT_PROBES,
        "hot_interval_us": IDLE_HOT_INTERVAL_US,
        "parked_probes": IDLE_PARKED_PROBES,
        "parked_interval_us": IDLE_PARKED_INTERVAL_US,
        "spin_us": s.spin_us,
    }


def compare_python(workers: int, count: int) -> dict[str, Any]:
    """The same ``count`` Python callables through ``Scheduler.map`` and through
    ``ThreadPoolExecutor.map``, ``workers`` threads each: both rates and their ratio.
    Blocking: call it from a thread."""
    count = max(1, min(count, COMPARE_MAX))
    items = range(count)
    with Scheduler(workers=workers) as s:
        list(s.map(_python_work, range(min(count, 1000))))  # warm the workers up
        started = time.perf_counter()
        ours = list(s.map(_python_work, items))
        scheduler_s = time.perf_counter() - started
    with ThreadPoolExecutor(max_workers=workers) as pool:
        started = time.perf_counter()
        theirs = list(pool.map(_python_work, items))
        pool_s = time.perf_counter() - started
    if ours != theirs:  # pragma: no cover - would be an engine bug
        raise RuntimeError("the scheduler and the thread pool disagree on the results")
    scheduler_rate = count / max(scheduler_s, 1e-9)
    pool_rate = count / max(pool_s, 1e-9)
    return {
        "jobs": count,
        "workers": workers,
        "scheduler_jobs_per_s": scheduler_rate,
        "threadpool_jobs_per_s": pool_rate,
        "ratio": scheduler_rate / pool_rate,
    }


async def run_demo(
    params: RunParams,
    emit: Callable[[dict[str, Any]], None],
    *,
    interval: float = SAMPLE_INTERVAL,
    max_seconds: float = MAX_RUN_SECONDS,
) -> dict[str, Any]:
    """Run the visitor's workload: ``emit`` a ``start`` item, then a ``sample`` item about
    every ``interval`` seconds; then a ``phase`` item (``idle``) and an ``idle`` item with
    the idle-pool submit-to-start figures, measured on the same workers once the run is
    over; then a ``phase`` item (``compare``) as the comparison starts. Returns the summary:
    the run's figures (its ``latency`` is the burst's queueing delay), ``idle_latency`` and
    the ThreadPoolExecutor comparison. Cancelling the calling task cancels the run; the
    workers are stopped and the slot freed in the background.

    Raises SchedulerBusy when another run is going in this process.
    """
    if not _slot.acquire(blocking=False):
        raise SchedulerBusy(
            "another visitor's run is going on this server (one at a time: it has few "
            "cores); try again in a few seconds"
        )
    try:
        s = Scheduler(workers=params.workers)
    except BaseException:
        _slot.release()
        raise
    run = None
    cores = server_cores()
    try:
        emit(
            {
                "kind": "start",
                "workers": params.workers,
                "count": params.count,
                "job_kind": params.kind,
                "pattern": params.pattern,
                "cores": cores,
                "max_seconds": max_seconds,
                "bucket_lower_ns": LATENCY_BUCKET_LOWER_NS,
            }
        )
        first = s.stats()
        run = _start(s, params)
        started = time.monotonic()
        capped = False
        async for sample in watch(s, run, interval=interval):
            elapsed = time.monotonic() - started
            so_far = metrics.delta(first, sample["stats"])
            emit(_sample(sample["progress"], sample["stats"], sample["delta"], so_far, elapsed))
            if not capped and elapsed > max_seconds:
                capped = True
                run.cancel()
        progress = run.progress()
        ran = progress["completed"] - progress["cancelled"]
        last = s.stats()
        total = metrics.delta(first, last)
        emit({"kind": "phase", "phase": "idle"})
        idle = await asyncio.to_thread(idle_latency, s)
        emit({"kind": "idle", **idle})
        emit({"kind": "phase", "phase": "compare"})
        compare = await asyncio.to_thread(compare_python, params.workers, params.count)
        summary = {
            "workers": params.workers,
            "job_kind": params.kind,
            "pattern": params.pattern,
            "cores": cores,
            "count": params.count,
            "ran": ran,
            "cancelled": progress["cancelled"],
            "capped": capped,
            "elapsed_s": progress["elapsed_s"],
            "jobs_per_s": ran / progress["elapsed_s"] if progress["elapsed_s"] > 0 else 0.0,
            # Jobs neither run nor cancelled (the engine counts cancelled ones as missing).
            "missing": None
            if progress["missing"] is None
            else progress["missing"] - progress["cancelled"],
            "duplicates": progress["duplicates"],
            "totals": total["totals"],
            "per_worker": [
                {"executed": w["executed"], "stolen": w["stolen"], "parks": w["parks"]}
                for w in total["per_worker"]
            ],
            "steals": [[x["from"], x["to"], x["count"]] for x in total["steals"]],
            "latency": {
                "buckets": _latency_buckets(total["latency"]["hot"], total["latency"]["parked"]),
                "hot": total["latency"]["hot_summary"],
                "parked": total["latency"]["parked_summary"],
            },
            "idle_latency": idle,
            "compare": compare,
        }
        logger.info(
            "event=scheduler_demo_run kind=%s pattern=%s workers=%d count=%d capped=%s "
            "jobs_per_s=%.0f idle_hot_p50_ns=%s idle_parked_p50_ns=%s ratio=%.1f",
            params.kind, params.pattern, params.workers, params.count, capped,
            summary["jobs_per_s"], idle["hot"]["p50_ns"], idle["parked"]["p50_ns"],
            compare["ratio"],
        )  # fmt: skip
        return summary
    finally:
        # Shielded: a second cancellation (the visitor leaving) cannot stop the clean-up,
        # which runs to the end in its thread and frees the slot there.
        await asyncio.shield(asyncio.to_thread(_close, s, run))
