"""How bench/firewall.py reads its runs: pgbench's output, the median run of each cell, the
firewall/PgBouncer ratios round by round, the table, and the verdict on each target.

Pure functions of the outcomes, no processes, so tests/bench/ checks them without running a
benchmark.
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._report import fmt, met, ratio, table

TARGETS = ("direct", "pgbouncer", "firewall")


# -- what is measured ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row of the table: a client count, a protocol, and whether to reconnect."""

    clients: int
    mode: str  # pgbench -M: simple | prepared
    connect: bool = False  # pgbench -C

    @property
    def label(self) -> str:
        return f"{self.mode}{' -C' if self.connect else ''}"


@dataclass(frozen=True)
class Outcome:
    """What one pgbench run gave: figures when it worked, the error when it did not."""

    tps: float | None = None
    latency_ms: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.tps is not None


MODES = ("simple", "prepared", "connect")


def build_cases(clients: Sequence[int], modes: Sequence[str] = MODES) -> list[Case]:
    """Simple and prepared at every client count, then a new connection per transaction;
    of those, the ``modes`` asked for."""
    cases = [Case(c, mode) for c in clients for mode in ("simple", "prepared") if mode in modes]
    if "connect" in modes:
        cases += [Case(c, "simple", connect=True) for c in clients]
    return cases


# -- pgbench's output, run by run ---------------------------------------------------------


def parse_pgbench(returncode: int, stdout: str, stderr: str) -> Outcome:
    """TPS and average latency from pgbench's report; the first error when a client
    aborted or pgbench failed (then the figures, if any, are incomplete and dropped)."""
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    if returncode != 0 or errors or (failed and int(failed.group(1)) > 0):
        message = errors[0] if errors else stderr.strip()[-300:] or f"exit {returncode}"
        message = re.sub(r"^pgbench: error: ", "", message)
        return Outcome(error=message)
    tps = re.search(r"^tps = ([\d.]+)", stdout, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", stdout, re.MULTILINE)
    if not tps or not latency:
        return Outcome(error=f"no tps/latency in pgbench output: {stdout.strip()[-300:]}")
    return Outcome(tps=float(tps.group(1)), latency_ms=float(latency.group(1)))


def median_outcome(outcomes: list[Outcome]) -> Outcome:
    """The run with the median TPS (its own latency with it); any failure wins, since a
    mode that fails sometimes does not work."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        return failed[0]
    ranked = sorted(outcomes, key=lambda o: o.tps or 0.0)
    return ranked[(len(ranked) - 1) // 2]


def paired_ratios(rounds: list[dict[str, Outcome]]) -> list[float]:
    """The firewall's TPS over PgBouncer's in each round where both worked: the two ran
    back to back, so slow drift of the machine moves both and mostly cancels out."""
    return [
        fw.tps / pgb.tps
        for run in rounds
        if (fw := run.get("firewall")) and (pgb := run.get("pgbouncer"))
        and fw.ok and pgb.ok and fw.tps is not None and pgb.tps
    ]  # fmt: skip


# -- the report ---------------------------------------------------------------------------


Results = dict[tuple[Case, str], Outcome]
ByRound = dict[Case, list[float]]  # a case's firewall/PgBouncer TPS ratios, round by round


def added_us(results: Results, case: Case, target: str) -> float | None:
    """Average latency the target adds over direct in the same case, in µs."""
    mine, direct = results.get((case, target)), results.get((case, "direct"))
    if not (mine and direct and mine.ok and direct.ok):
        return None
    assert mine.latency_ms is not None
    assert direct.latency_ms is not None
    return (mine.latency_ms - direct.latency_ms) * 1000.0


def tps_ratio(results: Results, case: Case) -> float | None:
    fw, pgb = results.get((case, "firewall")), results.get((case, "pgbouncer"))
    if not (fw and pgb and fw.ok and pgb.ok):
        return None
    return ratio(fw.tps, pgb.tps)


def fmt_tps(outcome: Outcome | None, missing: str | None) -> str:
    if missing:
        return missing
    if outcome is None:
        return "-"
    return f"{outcome.tps:,.0f}" if outcome.ok else "fails"


def fmt_latency_ratio(fw_add: float | None, pgb_add: float | None) -> str:
    """The ratio of added latencies; "<0" when the firewall is faster than direct (a
    negative ratio would read as a magnitude)."""
    value = ratio(fw_add, pgb_add)
    return "<0" if value is not None and value < 0 else fmt(value, ".2f")


def render_table(results: Results, cases: list[Case], missing: dict[str, str | None]) -> str:
    header = (
        "clients", "mode", "direct TPS", "pgbouncer TPS", "firewall TPS", "fw/pgb TPS",
        "+µs pgbouncer", "+µs firewall", "fw/pgb +µs",
    )  # fmt: skip
    rows = [header]
    for case in cases:
        pgb_add, fw_add = added_us(results, case, "pgbouncer"), added_us(results, case, "firewall")
        rows.append((
            str(case.clients),
            case.label,
            *(fmt_tps(results.get((case, t)), missing.get(t)) for t in TARGETS),
            fmt(tps_ratio(results, case), ".2f"),
            fmt(pgb_add, ",.0f"),
            fmt(fw_add, ",.0f"),
            fmt_latency_ratio(fw_add, pgb_add),
        ))  # fmt: skip
    return "\n".join(table(rows, left=2))


# From this many rounds on, the round-by-round ratios get an interval: with fewer, resampling
# a median has too few values to say much.
INTERVAL_ROUNDS = 8


def median_interval(values: list[float], draws: int = 4000) -> tuple[float, float]:
    """A 95 % bootstrap interval for the median of ``values``; a fixed seed, so the same
    rounds always print the same interval."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def render_rounds(by_round: ByRound) -> list[str]:
    """Each case's firewall/PgBouncer TPS ratios round by round, with their median and
    range; nothing when there was one round or no PgBouncer."""
    lines = []
    for case, ratios in by_round.items():
        if len(ratios) < 2:
            continue
        summary = (
            f"median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}"
        )
        if len(ratios) >= INTERVAL_ROUNDS:
            low, high = median_interval(ratios)
            summary += f", 95 % interval of the median {low:.3f}-{high:.3f}"
        lines.append(
            f"  c={case.clients} {case.label}: {' '.join(f'{r:.2f}' for r in ratios)}  ({summary})"
        )
    if lines:
        lines.insert(0, "fw/pgb TPS, round by round (each pair ran back to back):")
    return lines


def render_failures(results: Results, cases: list[Case]) -> list[str]:
    return [
        f"  {target} {case.label} c={case.clients} fails: {outcome.error}"
        for case in cases
        for target in TARGETS
        if (outcome := results.get((case, target))) is not None and outcome.error
    ]


@dataclass(frozen=True)
class Verdict:
    tps_ratio: float | None
    tps_clients: int
    tps_rounds: tuple[float, ...]  # the same case's round-by-round ratios
    latency_ratio: float | None
    latency_clients: int
    latency_met: bool | None
    prepared_ok: bool | None  # None: not measured (--modes without prepared)
    pgbouncer_prepared: str  # ok | fail | n/a
    pgbouncer_missing: bool = False


def judge(results: Results, cases: list[Case], pgbouncer_missing: bool,
          by_round: ByRound) -> Verdict:  # fmt: skip
    plain = [c for c in cases if c.mode == "simple" and not c.connect]
    many = max(plain, key=lambda c: c.clients)
    few = min(plain, key=lambda c: c.clients)
    pgb_add, fw_add = added_us(results, few, "pgbouncer"), added_us(results, few, "firewall")
    latency_met = None
    if pgb_add is not None and fw_add is not None and pgb_add > 0:
        latency_met = fw_add <= 1.5 * pgb_add
    prepared = [c for c in cases if c.mode == "prepared"]
    prepared_ok = all(results[(c, "firewall")].ok for c in prepared) if prepared else None
    if pgbouncer_missing or not prepared:
        pgb_prepared = "n/a"
    else:
        pgb_prepared = "ok" if all(results[(c, "pgbouncer")].ok for c in prepared) else "fail"
    return Verdict(
        tps_ratio(results, many), many.clients, tuple(by_round.get(many, ())),
        ratio(fw_add, pgb_add), few.clients,
        latency_met, prepared_ok, pgb_prepared, pgbouncer_missing,
    )  # fmt: skip


def render_verdicts(v: Verdict) -> list[str]:
    tps_met = None if v.tps_ratio is None else v.tps_ratio >= 1.0
    tps_note = ""
    if len(v.tps_rounds) >= INTERVAL_ROUNDS:
        low, high = median_interval(list(v.tps_rounds))
        if low < 1.0 <= high:
            tps_note = (
                f" (95 % interval of the rounds' median {low:.3f}-{high:.3f}: level with "
                "PgBouncer within this machine's noise)"
            )
    elif len(v.tps_rounds) > 1 and min(v.tps_rounds) < 1.0 <= max(v.tps_rounds):
        tps_note = (
            f" (rounds {min(v.tps_rounds):.2f}-{max(v.tps_rounds):.2f}, either side of "
            "1.0: a single run could land on either)"
        )
    latency_note = ""
    if v.pgbouncer_missing:
        latency_note = " (no PgBouncer to compare with)"
    elif v.latency_met is None:
        latency_note = " (PgBouncer's added latency is missing or not above zero: no ratio)"
    return [
        f"target: {v.tps_clients}-client TPS >= PgBouncer's (simple): "
        f"ratio {fmt(v.tps_ratio, '.2f')} -> {met(tps_met)}{tps_note}",
        f"target: {v.latency_clients}-client added latency <= 1.5x PgBouncer's (simple): "
        f"ratio {fmt(v.latency_ratio, '.2f')} -> {met(v.latency_met)}{latency_note}",
        "target: prepared protocol through the firewall: "
        + (
            "not measured (--modes)"
            if v.prepared_ok is None
            else f"{'ok' if v.prepared_ok else 'fails'} -> {met(v.prepared_ok)}; "
            f"PgBouncer prepared: {v.pgbouncer_prepared}"
        ),
    ]


def result_line(v: Verdict) -> str:
    return (
        f"RESULT firewall tps20_ratio={fmt(v.tps_ratio, '.2f')} "
        f"added_latency1_ratio={fmt(v.latency_ratio, '.2f')} "
        f"prepared={'n/a' if v.prepared_ok is None else ('ok' if v.prepared_ok else 'fail')} "
        f"pgbouncer_prepared={v.pgbouncer_prepared}"
    )


def render_firewall_stats(stats: dict[str, object] | None) -> str:
    if stats is None:
        return "firewall's own figures: unavailable (stats endpoint did not answer)"
    guard = stats.get("guard") or {}
    latency = stats.get("latency") or {}
    pools = stats.get("pools") or []
    connects = sum(p.get("connects", 0) for p in pools if isinstance(p, dict))
    assert isinstance(guard, dict)
    assert isinstance(latency, dict)
    return (
        f"firewall's own figures: logins={stats.get('logins')} "
        f"login_failures={stats.get('login_failures')} "
        f"guard_checked={guard.get('checked')} cache_hits={guard.get('cache_hits')} "
        f"blocked={sum(guard.get('blocked', {}).values())} server_connects={connects} "
        f"round_trip_mean_us={latency.get('mean_us')} p99_us<={latency.get('p99_us')}"
    )


def log_problems(log: Path) -> list[str]:
    """The firewall's warning, error and traceback lines: a pooler that copes under load
    by failing quietly would otherwise look fine in the table."""
    markers = ("level=ERROR", "level=WARNING", "level=CRITICAL", "Traceback")
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(m in line for m in markers)]
