"""bench/firewall.py's reading of its runs: pgbench's report, the median run, the
round-by-round ratios and the verdict's note on noise, which decide how a reader takes a
ratio near 1.0."""

from __future__ import annotations

import pytest

from bench import _firewall_report as report
from bench._firewall_report import Case, Outcome, Verdict

PGBENCH_OK = """\
transaction type: <builtin: select only>
number of clients: 20
number of transactions actually processed: 412345
number of failed transactions: 0 (0.000%)
latency average = 0.971 ms
initial connection time = 12.345 ms
tps = 20594.128822 (without initial connection time)
"""


def test_pgbench_figures_are_read_and_any_error_or_failed_transaction_wins():
    assert report.parse_pgbench(0, PGBENCH_OK, "") == Outcome(tps=20594.128822, latency_ms=0.971)
    refused = "pgbench: error: connection to server failed: Connection refused\n"
    assert report.parse_pgbench(1, "", refused).error == (
        "connection to server failed: Connection refused"
    )
    failed = PGBENCH_OK.replace("failed transactions: 0", "failed transactions: 3")
    assert not report.parse_pgbench(0, failed, "").ok
    assert "no tps/latency" in report.parse_pgbench(0, "garbage", "").error


def test_the_median_run_is_kept_whole_and_a_failure_is_never_hidden():
    runs = [Outcome(tps=300.0, latency_ms=1.0), Outcome(tps=100.0, latency_ms=3.0),
            Outcome(tps=200.0, latency_ms=2.0)]  # fmt: skip
    assert report.median_outcome(runs) == Outcome(tps=200.0, latency_ms=2.0)
    assert report.median_outcome([*runs, Outcome(error="boom")]).error == "boom"


def test_paired_ratios_keep_only_rounds_where_both_proxies_worked():
    ok = Outcome
    rounds = [
        {"direct": ok(tps=300.0, latency_ms=1.0), "pgbouncer": ok(tps=100.0, latency_ms=1.0),
         "firewall": ok(tps=95.0, latency_ms=1.0)},
        {"pgbouncer": ok(error="boom"), "firewall": ok(tps=120.0, latency_ms=1.0)},
        {"firewall": ok(tps=120.0, latency_ms=1.0)},  # no PgBouncer
        {"pgbouncer": ok(tps=100.0, latency_ms=1.0), "firewall": ok(tps=104.0, latency_ms=1.0)},
    ]  # fmt: skip
    assert report.paired_ratios(rounds) == pytest.approx([0.95, 1.04])


def test_the_table_shows_added_latency_and_the_ratios_of_each_case():
    case = Case(1, "simple")
    results = {
        (case, "direct"): Outcome(tps=10000.0, latency_ms=0.100),
        (case, "pgbouncer"): Outcome(tps=8000.0, latency_ms=0.150),
        (case, "firewall"): Outcome(tps=8800.0, latency_ms=0.140),
    }
    header, rule, row = report.render_table(results, [case], {}).splitlines()
    assert header.startswith("clients  mode    direct TPS")
    assert set(rule) == {"-", " "}
    assert row.split() == ["1", "simple", "10,000", "8,000", "8,800", "1.10", "50", "40", "0.80"]
    missing = report.render_table(results, [case], {"pgbouncer": "not installed"})
    assert "not installed" in missing.splitlines()[2]


def _verdict(ratio: float, rounds: tuple[float, ...]) -> Verdict:
    return Verdict(ratio, 20, rounds, 0.9, 1, True, True, "fail")


def test_the_verdict_says_when_rounds_fall_either_side_of_parity():
    [tps_line, *_] = report.render_verdicts(_verdict(0.98, (0.95, 0.98, 1.04)))
    assert "ratio 0.98 -> NOT met" in tps_line
    assert "(rounds 0.95-1.04, either side of 1.0: a single run could land on either)" in tps_line
    [tps_line, *_] = report.render_verdicts(_verdict(1.05, (1.02, 1.05, 1.09)))
    assert tps_line.endswith("ratio 1.05 -> met")
    [tps_line, *_] = report.render_verdicts(_verdict(0.98, ()))
    assert tps_line.endswith("ratio 0.98 -> NOT met")


def test_many_rounds_get_an_interval_that_decides_the_note():
    level = (0.93, 0.97, 0.99, 1.0, 1.01, 1.02, 1.04, 1.08)
    [tps_line, *_] = report.render_verdicts(_verdict(1.0, level))
    assert "95 % interval of the rounds' median" in tps_line
    assert "level with PgBouncer" in tps_line
    ahead = (1.03, 1.04, 1.05, 1.05, 1.06, 1.06, 1.07, 1.09)
    low, high = report.median_interval(list(ahead))
    assert 1.0 < low <= high
    [tps_line, *_] = report.render_verdicts(_verdict(1.06, ahead))
    assert tps_line.endswith("ratio 1.06 -> met")
    [line] = report.render_rounds({Case(20, "simple"): list(ahead)})[1:]
    assert f"95 % interval of the median {low:.3f}-{high:.3f}" in line


def test_modes_choose_the_cases_and_an_unmeasured_prepared_target_says_so():
    cases = report.build_cases([20], ["simple", "connect"])
    assert cases == [Case(20, "simple"), Case(20, "simple", connect=True)]
    verdict = Verdict(1.0, 20, (), 0.9, 20, True, None, "n/a")
    assert report.render_verdicts(verdict)[2].endswith("not measured (--modes)")
    assert "prepared=n/a" in report.result_line(verdict)


def test_round_lines_show_median_and_range_and_skip_single_rounds():
    many, few = Case(20, "simple"), Case(1, "simple")
    lines = report.render_rounds({many: [0.97, 1.03, 0.99], few: [1.1]})
    assert lines[0].startswith("fw/pgb TPS, round by round")
    assert lines[1:] == ["  c=20 simple: 0.97 1.03 0.99  (median 0.99, range 0.97-1.03)"]
    assert report.render_rounds({few: [1.1]}) == []
