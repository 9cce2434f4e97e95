"""The C core on its own, through a small C stress driver (stress.c): clean under
ThreadSanitizer, and not one malloc on the hot path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORE = ROOT / "engines" / "scheduler"
DRIVER = Path(__file__).with_name("stress.c")
CC = shutil.which("gcc") or shutil.which("cc")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (gcc) on PATH")


def build(out: Path, *flags: str) -> Path:
    argv = [CC, "-std=gnu11", "-g", *flags, f"-I{CORE}", str(DRIVER)]
    argv += [str(CORE / "_core.c"), str(CORE / "_kernels.c"), "-o", str(out), "-lpthread"]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return out


def tsan_missing(tmp: Path) -> str | None:
    """Why TSAN cannot be used here, or None when it works."""
    probe = tmp / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    try:
        subprocess.run([CC, "-fsanitize=thread", str(probe), "-o", str(tmp / "probe")],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        subprocess.run([str(tmp / "probe")], check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        return f"{CC} cannot build or run -fsanitize=thread programs: {exc.stderr!r:.200}"
    return None


@pytest.mark.parametrize("workers", [2, 4])
def test_stress_is_clean_under_threadsanitizer(tmp_path, workers):
    reason = tsan_missing(tmp_path)
    if reason:
        pytest.skip(reason)
    exe = build(tmp_path / "stress-tsan", "-O1", "-fsanitize=thread", "-DSCHED_TSAN")
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1")
    proc = subprocess.run(
        [str(exe), str(workers), "20000"], capture_output=True, text=True, timeout=300, env=env
    )
    assert "ThreadSanitizer" not in proc.stderr, proc.stderr[-4000:]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "failures=0" in proc.stdout


def test_no_malloc_on_the_hot_path(tmp_path):
    exe = build(tmp_path / "stress-malloc", "-O2", "-DCOUNT_MALLOC")
    runs = {}
    for count in (1000, 300_000):
        proc = subprocess.run([str(exe), "2", str(count)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # worker threads never allocate, whatever they run
        assert "worker_mallocs=0 " in proc.stdout
        runs[count] = dict(re.findall(r"^(\w+) count=\d+ .* mallocs=(\d+)$", proc.stdout, re.M))
    assert set(runs[1000]) == set(runs[300_000]) == {"fork", "split", "outside", "skew", "fib"}
    # Starting a run allocates its record (and, for "outside", its submitter threads, whose
    # start and exit glibc may serve with a malloc or two); no job does: 300,000 jobs cost
    # no more than a handful of mallocs, as 1,000 do.
    for count, mallocs in runs.items():
        assert all(int(m) <= 16 for m in mallocs.values()), (count, mallocs)
