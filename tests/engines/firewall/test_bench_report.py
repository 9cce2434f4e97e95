"""bench/firewall.py's reading of its runs: the round-by-round ratios and the verdict's
note on noise, which decide how a reader takes a ratio near 1.0."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_firewall", ROOT / "bench" / "firewall.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_paired_ratios_keep_only_rounds_where_both_proxies_worked(bench):
    ok = bench.Outcome
    rounds = [
        {"direct": ok(tps=300.0, latency_ms=1.0), "pgbouncer": ok(tps=100.0, latency_ms=1.0),
         "firewall": ok(tps=95.0, latency_ms=1.0)},
        {"pgbouncer": ok(error="boom"), "firewall": ok(tps=120.0, latency_ms=1.0)},
        {"firewall": ok(tps=120.0, latency_ms=1.0)},  # no PgBouncer
        {"pgbouncer": ok(tps=100.0, latency_ms=1.0), "firewall": ok(tps=104.0, latency_ms=1.0)},
    ]  # fmt: skip
    assert bench.paired_ratios(rounds) == pytest.approx([0.95, 1.04])


def _verdict(bench, ratio: float, rounds: tuple[float, ...]):
    return bench.Verdict(ratio, 20, rounds, 0.9, 1, True, True, "fail")


def test_the_verdict_says_when_rounds_fall_either_side_of_parity(bench):
    [tps_line, *_] = bench.render_verdicts(_verdict(bench, 0.98, (0.95, 0.98, 1.04)))
    assert "ratio 0.98 -> NOT met" in tps_line
    assert "(rounds 0.95-1.04, either side of 1.0: a single run could land on either)" in tps_line
    [tps_line, *_] = bench.render_verdicts(_verdict(bench, 1.05, (1.02, 1.05, 1.09)))
    assert tps_line.endswith("ratio 1.05 -> met")
    [tps_line, *_] = bench.render_verdicts(_verdict(bench, 0.98, ()))
    assert tps_line.endswith("ratio 0.98 -> NOT met")


def test_many_rounds_get_an_interval_that_decides_the_note(bench):
    level = (0.93, 0.97, 0.99, 1.0, 1.01, 1.02, 1.04, 1.08)
    [tps_line, *_] = bench.render_verdicts(_verdict(bench, 1.0, level))
    assert "95 % interval of the rounds' median" in tps_line
    assert "level with PgBouncer" in tps_line
    ahead = (1.03, 1.04, 1.05, 1.05, 1.06, 1.06, 1.07, 1.09)
    low, high = bench.median_interval(list(ahead))
    assert 1.0 < low <= high
    [tps_line, *_] = bench.render_verdicts(_verdict(bench, 1.06, ahead))
    assert tps_line.endswith("ratio 1.06 -> met")
    [line] = bench.render_rounds({bench.Case(20, "simple"): list(ahead)})[1:]
    assert f"95 % interval of the median {low:.3f}-{high:.3f}" in line


def test_modes_choose_the_cases_and_an_unmeasured_prepared_target_says_so(bench):
    cases = bench.build_cases([20], ["simple", "connect"])
    assert cases == [bench.Case(20, "simple"), bench.Case(20, "simple", connect=True)]
    verdict = bench.Verdict(1.0, 20, (), 0.9, 20, True, None, "n/a")
    assert bench.render_verdicts(verdict)[2].endswith("not measured (--modes)")
    assert "prepared=n/a" in bench.result_line(verdict)


def test_round_lines_show_median_and_range_and_skip_single_rounds(bench):
    many, few = bench.Case(20, "simple"), bench.Case(1, "simple")
    lines = bench.render_rounds({many: [0.97, 1.03, 0.99], few: [1.1]})
    assert lines[0].startswith("fw/pgb TPS, round by round")
    assert lines[1:] == ["  c=20 simple: 0.97 1.03 0.99  (median 0.99, range 0.97-1.03)"]
    assert bench.render_rounds({few: [1.1]}) == []
