"""``python -m engines.scheduler``: run a native workload and watch it, or print the
scheduler's own figures (``bench``). The comparison with oneTBB and ThreadPoolExecutor
lives in ``bench/scheduler.py``, which reuses the progress bar below."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from . import measure, metrics
from ._scheduler import KERNELS, PATTERNS, Scheduler
from .measure import fmt_ns


class ProgressBar:
    """A one-line progress bar on a terminal stream, redrawn in place."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.done = 0

    def step(self, label: str, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        self.show(label)

    def show(self, label: str, fraction: float | None = None) -> None:
        f = self.done / self.total if fraction is None else fraction
        filled = int(f * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {f * 100:5.1f}% {label[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * (self.width + 50) + "\r")
        self.stream.flush()


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    with Scheduler(workers=args.workers) as s:
        before = s.stats()
        run = s.start_native(
            args.kind,
            args.count,
            pattern=args.pattern,
            work_us=args.work_us,
            fib_n=args.fib_n,
            cutoff=args.cutoff,
            submitters=args.submitters,
            verify=args.verify,
        )
        bar = ProgressBar(args.count, sys.stderr)
        while not run.wait(0.1):
            p = run.progress()
            bar.show(f"{p['completed']:,} jobs", p["completed"] / max(p["count"], 1))
        bar.close()
        p = run.result()
        d = metrics.delta(before, s.stats())
    out.write(f"{args.kind}/{args.pattern}: {p['count']:,} jobs in {p['elapsed_s']:.3f} s, ")
    out.write(f"{p['jobs_per_s'] / 1e6:.2f} M jobs/s\n")
    if args.verify:
        out.write(f"missing={p['missing']} duplicates={p['duplicates']}\n")
    for i, w in enumerate(d["per_worker"]):
        out.write(
            f"worker {i}: executed={w['executed']:,} stolen={w['stolen']:,} "
            f"steal_attempts={w['steal_attempts']:,} parks={w['parks']:,}\n"
        )
    hot, parked = d["latency"]["hot_summary"], d["latency"]["parked_summary"]
    out.write(
        f"latency hot p50={fmt_ns(hot['p50_ns'])} p99={fmt_ns(hot['p99_ns'])}; "
        f"parked p50={fmt_ns(parked['p50_ns'])} p99={fmt_ns(parked['p99_ns'])}\n"
    )
    return 0 if not args.verify or (p["missing"], p["duplicates"]) == (0, 0) else 1


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    jobs = args.jobs // 10 if args.quick else args.jobs
    py_jobs = args.py_jobs // 10 if args.quick else args.py_jobs
    bar = ProgressBar(7, sys.stderr)
    rows: list[tuple[str, str]] = []
    with Scheduler(workers=args.workers) as s:
        for pattern in ("fork", "split", "outside"):
            bar.step(f"native noop, {pattern}")
            rate = measure.native_throughput(s, jobs, pattern)
            rows.append((f"native noop ({pattern})", f"{rate / 1e6:.2f} M jobs/s"))
        bar.step("fork-join fib")
        secs, value = measure.fib_seconds(s, args.fib, args.cutoff)
        tasks = measure.fib_tasks(args.fib, args.cutoff)
        rows.append((f"fib({args.fib}) cutoff {args.cutoff}", f"{secs * 1e3:.1f} ms = {value}"))
        rows.append(("  spawned jobs", f"{tasks:,} ({tasks / secs / 1e6:.2f} M/s)"))
        bar.step("Python jobs")
        rate = measure.python_throughput(s, py_jobs)
        rows.append(("Python jobs (map)", f"{rate / 1e3:.0f} k jobs/s"))
        bar.step("latency, hot")
        hot = measure.latency(s, 200 if args.quick else 2000, 20)["hot"]
        bar.step("latency, parked")
        parked = measure.latency(s, 20 if args.quick else 200, 2000)["parked"]
    bar.close()
    rows.append(
        (
            "latency hot p50 / p99",
            f"{fmt_ns(hot['p50_ns'])} / {fmt_ns(hot['p99_ns'])}",
        )
    )
    rows.append(
        (
            "latency parked p50 / p99",
            f"{fmt_ns(parked['p50_ns'])} / {fmt_ns(parked['p99_ns'])}",
        )
    )
    width = max(len(r[0]) for r in rows)
    out.write(f"engines.scheduler, {args.workers} workers\n")
    for name, value in rows:
        out.write(f"  {name:<{width}}  {value}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engines.scheduler",
        description="A work-stealing job scheduler (C core, Cython API): run a native "
        "workload and watch it, or measure the scheduler's figures.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one native workload with a progress bar")
    run.add_argument("kind", choices=sorted(KERNELS), help="the job kernel")
    run.add_argument("--count", type=int, default=1_000_000, help="jobs (default 1000000)")
    run.add_argument("--pattern", choices=sorted(PATTERNS), default="fork",
                     help="how jobs are submitted (default fork)")  # fmt: skip
    run.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    run.add_argument("--work-us", type=float, default=1.0, help="spin/skew: µs per job")
    run.add_argument("--fib-n", type=int, default=20, help="fib: n per job (default 20)")
    run.add_argument("--cutoff", type=int, default=12, help="fib: sequential below this")
    run.add_argument("--submitters", type=int, default=4, help="outside: submitting threads")
    run.add_argument("--verify", action="store_true", help="check no job lost or run twice")
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="measure throughput and latency (own figures)")
    bench.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    bench.add_argument("--jobs", type=int, default=5_000_000, help="native jobs per run")
    bench.add_argument("--py-jobs", type=int, default=200_000, help="Python jobs")
    bench.add_argument("--fib", type=int, default=30, help="fork-join fib(n) (default 30)")
    bench.add_argument("--cutoff", type=int, default=8, help="fib: sequential below this")
    bench.add_argument("--quick", action="store_true", help="a tenth of the jobs")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, out or sys.stdout))
