"""bench/scheduler.py's reading of its rounds: medians, latency rounds without figures left
out, nanoseconds shown as a reader wants them, and ratios that point the right way."""

from __future__ import annotations

import argparse

from bench import scheduler


def _fig(tbb: bool = True) -> dict[str, list[float]]:
    return {
        "native": [4.0e6, 5.0e6, 6.0e6], "tbb_native": [4.8e6] if tbb else [],
        "fib": [0.010, 0.012, 0.011], "tbb_fib": [0.0165] if tbb else [],
        "python": [1.2e6], "tpe": [1.0e5],
        "hot": [900.0, 700.0, 800.0], "hot_p99": [5000.0],
        "parked": [], "parked_p99": [],
    }  # fmt: skip


OWN = {"totals": {"executed": 1234567, "stolen": 89, "parks": 12}, "pool": {"waits": 3}}
ARGS = argparse.Namespace(workers=2, repeat=3, fib=20, cutoff=10)


def test_rounds_without_percentiles_are_left_out_and_medians_of_nothing_are_none():
    fig: dict[str, list[float]] = {"hot": [], "hot_p99": []}
    scheduler.record(fig, "hot", {"p50_ns": 700.0, "p99_ns": 4000.0})
    scheduler.record(fig, "hot", {"p50_ns": None, "p99_ns": None})  # no job landed there
    assert fig == {"hot": [700.0], "hot_p99": [4000.0]}
    assert scheduler.median([3.0, 1.0, 2.0]) == 2.0
    assert scheduler.median([]) is None


def test_nanoseconds_below_a_microsecond_and_microseconds_above():
    assert scheduler.fmt_ns(640.4) == "640 ns"
    assert scheduler.fmt_ns(1234.0) == "1.23 µs"
    assert scheduler.fmt_ns(None) == "n/a"


def test_ratios_say_above_one_when_the_scheduler_is_ahead():
    lines = scheduler.report(_fig(), OWN, ARGS, None)
    result = lines[-1].split()
    assert result[:2] == ["RESULT", "scheduler"]
    figures = dict(item.split("=") for item in result[2:])
    assert figures["native_ratio"] == "1.04"  # 5.0 M jobs/s over TBB's 4.8 M
    assert figures["fib_ratio"] == "1.50"  # a time: TBB's 16.5 ms over our 11 ms
    assert figures["python_ratio"] == "12.0"
    assert figures["hot_p50_ns"] == "800"
    assert figures["parked_p50_ns"] == "n/a"
    assert "target: native ratio >= 1.0 -> met" in lines
    assert "target: hot P50 < 1 µs -> met" in lines
    assert any(line.startswith("  best round's hot P50") and "700 ns" in line for line in lines)


def test_without_onetbb_its_ratios_are_missing_and_undetermined():
    lines = scheduler.report(_fig(tbb=False), OWN, ARGS, "oneTBB is not installed")
    assert "oneTBB: oneTBB is not installed" in lines
    assert "target: native ratio >= 1.0 -> undetermined" in lines
    assert "native_ratio=n/a fib_ratio=n/a" in lines[-1]
