"""Benchmark: the SQL firewall against PgBouncer and against no proxy at all.

One run starts one throwaway PostgreSQL (``engines.pgcluster``), loads it with
``pgbench -i``, and puts two transaction-pooling proxies in front of it: PgBouncer from
Debian's packages and ``python -m engines.firewall`` with every guard rule on. Then, for
each case, it runs the same ``pgbench -S`` (one-row primary-key SELECTs) against

    direct     PostgreSQL itself: the floor every proxy adds to
    pgbouncer  the anchor: the pooler most PostgreSQL shops already run
    firewall   this project's proxy, parsing and checking every statement

with 1 and 20 clients, the simple and the prepared (extended, named statements) protocol,
and ``-C`` (a new connection per transaction: authentication and pool hand-off cost).

What it prints, per case: TPS of each target; the latency each proxy adds per transaction
(its average latency minus the direct one in the same case, in µs); and firewall/PgBouncer
ratios. The targets it checks:

* 20-client TPS (simple protocol) at least PgBouncer's (ratio >= 1.0);
* added latency at 1 client (simple protocol) within 1.5x PgBouncer's;
* the prepared protocol works through the firewall's transaction pooling, where
  PgBouncer 1.18 (Debian 12) fails: a statement prepared on one server connection is
  executed on another ("prepared statement ... does not exist"). That failure is reported,
  not raised.

Why the numbers are noisy: on a small machine (the reference one has 2 cores) pgbench,
the proxy and PostgreSQL's backends share the same cores, so every target also competes
with its own load generator, and a proxy's CPU time is taken from the server's. The cases
run target after target (direct, pgbouncer, firewall), and with ``--repeat`` in rounds of
all three (never one target's runs in a row), so slow drift hits all three alike; the
median run of each is kept. Every other round runs the targets in reverse order, so no
proxy always runs right after the other. With ``--repeat`` it also prints the firewall's
TPS over PgBouncer's round by round: each pair ran back to back, so drift mostly cancels
out of those ratios, and their spread shows how far one run can be trusted. From eight
rounds on, a 95 % interval of their median says whether a difference is real; ``--clients
20 --modes simple --repeat 40`` measures just the headline case that way (about 11
minutes). Read ratios, not absolute TPS, and re-run before believing a difference of a
few percent.

PgBouncer is optional: without it the script prints how to install it and still measures
the other targets, showing PgBouncer as "not installed".

    .venv/bin/python bench/firewall.py            # about 3 minutes
    .venv/bin/python bench/firewall.py --quick    # about 1 minute
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.pgcluster import Cluster, ClusterError  # noqa: E402

PGBOUNCER_INSTALL = (
    "PgBouncer is not installed; to compare with it: apt-get install -y pgbouncer "
    "(Debian/Ubuntu; the packaged service need not run, this script starts its own)"
)
PGBENCH_FALLBACK = "/usr/lib/postgresql/15/bin/pgbench"
TARGETS = ("direct", "pgbouncer", "firewall")
STARTUP_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


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


@dataclass(frozen=True)
class Target:
    """Where pgbench connects; ``missing`` says why it cannot (e.g. not installed)."""

    name: str
    port: int | None
    missing: str | None = None


MODES = ("simple", "prepared", "connect")


def build_cases(clients: Sequence[int], modes: Sequence[str] = MODES) -> list[Case]:
    """Simple and prepared at every client count, then a new connection per transaction;
    of those, the ``modes`` asked for."""
    cases = [Case(c, mode) for c in clients for mode in ("simple", "prepared") if mode in modes]
    if "connect" in modes:
        cases += [Case(c, "simple", connect=True) for c in clients]
    return cases


# -- processes ----------------------------------------------------------------------------


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn: the kernel sends SIGTERM to the child if this script dies, even by
    SIGKILL, so no proxy outlives a benchmark. Runs after the switch of user (which would
    clear the setting); libc is looked up here, in the parent."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return hook


@contextlib.contextmanager
def background(argv: list[str], log: Path, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with its output in ``log`` for the duration of the block; stop it after
    (SIGTERM, then SIGKILL), whatever happened inside."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it in order
            preexec_fn=die_with_parent(),  # single-threaded here: safe
            **kwargs,  # type: ignore[arg-type]
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
               log: Path) -> None:  # fmt: skip
    """Poll ``ready`` until it holds; raise with the log's tail if ``proc`` exits or the
    start-up takes longer than STARTUP_TIMEOUT."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}; its log:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {STARTUP_TIMEOUT:g} s:\n{log_tail(log)}")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


# -- the three targets --------------------------------------------------------------------


def find_pgbench() -> str:
    found = shutil.which("pgbench") or (
        PGBENCH_FALLBACK if os.path.exists(PGBENCH_FALLBACK) else None
    )
    if found is None:
        sys.exit("pgbench not found: apt-get install -y postgresql-client (or postgresql)")
    return found


def find_pgbouncer() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    candidates = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
    return shutil.which("pgbouncer") or next((p for p in candidates if os.path.exists(p)), None)


def pgbouncer_user() -> pwd.struct_passwd | None:
    """PgBouncer refuses to run as root: run it as ``postgres`` (Debian's package makes
    it) or else ``nobody``. None when we are not root (then it runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    sys.exit("running as root, but neither a 'postgres' nor a 'nobody' user exists")


def write_pgbouncer_config(workdir: Path, port: int, upstream_port: int, user: str,
                           password: str, pool_size: int,
                           owner: pwd.struct_passwd | None) -> Path:  # fmt: skip
    """The ini and auth file of a transaction pooler for every database on the upstream.

    The auth file holds the plain password, so PgBouncer can answer the clients' SCRAM
    and log in to the server with SCRAM itself; it is readable by PgBouncer's user only.
    """
    auth_file = workdir / "userlist.txt"
    auth_file.write_text(f'"{user}" "{password}"\n')
    os.chmod(auth_file, 0o600)
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={upstream_port}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {auth_file}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        "server_tls_sslmode = disable\n"
        # pgbench sends this startup parameter; PgBouncer refuses unknown ones.
        "ignore_startup_parameters = extra_float_digits\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
    )
    os.chmod(ini, 0o644)
    if owner is not None:
        os.chown(auth_file, owner.pw_uid, owner.pw_gid)
    return ini


@contextlib.contextmanager
def pgbouncer(workdir: Path, upstream_port: int, user: str, password: str,
              pool_size: int) -> Iterator[Target]:  # fmt: skip
    """PgBouncer, transaction pooling, in front of the upstream; or a Target saying why not."""
    binary = find_pgbouncer()
    if binary is None:
        print(PGBOUNCER_INSTALL, file=sys.stderr)
        yield Target("pgbouncer", None, missing="not installed")
        return
    owner = pgbouncer_user()
    port = free_port()
    ini = write_pgbouncer_config(workdir, port, upstream_port, user, password, pool_size, owner)
    log = workdir / "pgbouncer.log"
    kwargs: dict[str, object] = {"cwd": str(workdir)}
    if owner is not None:
        kwargs.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
    with background([binary, str(ini)], log, **kwargs) as proc:
        wait_until(lambda: port_open(port), proc, "pgbouncer", log)
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        print(f"started {version.splitlines()[0]} on port {port}", file=sys.stderr)
        yield Target("pgbouncer", port)


@contextlib.contextmanager
def firewall(workdir: Path, upstream_dsn: str, pool_size: int) -> Iterator[tuple[Target, int]]:
    """``python -m engines.firewall`` in transaction mode with every rule on; yields the
    target and the port of its stats endpoint. The upstream DSN goes by environment, not
    argv, so the password stays out of the process list."""
    port, metrics_port = free_port(), free_port()
    log = workdir / "firewall.log"
    argv = [
        sys.executable, "-m", "engines.firewall",
        "--listen", f"127.0.0.1:{port}",
        "--metrics-listen", f"127.0.0.1:{metrics_port}",
        "--pool-mode", "transaction",
        "--pool-size", str(pool_size),
    ]  # fmt: skip
    env = os.environ | {"FIREWALL_UPSTREAM": upstream_dsn, "PYTHONUNBUFFERED": "1"}
    with background(argv, log, cwd=str(ROOT), env=env) as proc:
        wait_until(lambda: "firewall listening on" in log.read_text(), proc, "firewall", log)
        print(f"started engines.firewall on port {port}", file=sys.stderr)
        yield Target("firewall", port), metrics_port


def firewall_stats(metrics_port: int) -> dict[str, object] | None:
    url = f"http://127.0.0.1:{metrics_port}/stats.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


# -- pgbench ------------------------------------------------------------------------------


def pgbench_env(password: str) -> dict[str, str]:
    """A clean client environment: no stray PG* variables, the password, and no TLS, so
    all three targets are measured over the same plain TCP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return env | {"PGPASSWORD": password, "PGSSLMODE": "disable"}


def pgbench_argv(pgbench: str, port: int, user: str, db: str, case: Case,
                 duration: float) -> list[str]:  # fmt: skip
    argv = [
        pgbench, "-h", "127.0.0.1", "-p", str(port), "-U", user,
        "-S", "-n", "-T", str(max(1, round(duration))),
        "-c", str(case.clients), "-j", str(min(case.clients, 2)), "-M", case.mode,
    ]  # fmt: skip
    if case.connect:
        argv.append("-C")
    return [*argv, db]


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


def run_pgbench(argv: list[str], env: dict[str, str], duration: float) -> Outcome:
    try:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(error=f"pgbench did not finish within {duration + 60:g} s")
    return parse_pgbench(result.returncode, result.stdout, result.stderr)


def median_outcome(outcomes: list[Outcome]) -> Outcome:
    """The run with the median TPS (its own latency with it); any failure wins, since a
    mode that fails sometimes does not work."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        return failed[0]
    ranked = sorted(outcomes, key=lambda o: o.tps or 0.0)
    return ranked[(len(ranked) - 1) // 2]


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


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


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


def fmt_num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def fmt_latency_ratio(fw_add: float | None, pgb_add: float | None) -> str:
    """The ratio of added latencies; "<0" when the firewall is faster than direct (a
    negative ratio would read as a magnitude)."""
    value = ratio(fw_add, pgb_add)
    return "<0" if value is not None and value < 0 else fmt_num(value, ".2f")


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
            fmt_num(tps_ratio(results, case), ".2f"),
            fmt_num(pgb_add, ",.0f"),
            fmt_num(fw_add, ",.0f"),
            fmt_latency_ratio(fw_add, pgb_add),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
    def met(flag: bool | None) -> str:
        return "undetermined" if flag is None else ("met" if flag else "NOT met")

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
        f"ratio {fmt_num(v.tps_ratio, '.2f')} -> {met(tps_met)}{tps_note}",
        f"target: {v.latency_clients}-client added latency <= 1.5x PgBouncer's (simple): "
        f"ratio {fmt_num(v.latency_ratio, '.2f')} -> {met(v.latency_met)}{latency_note}",
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
        f"RESULT firewall tps20_ratio={fmt_num(v.tps_ratio, '.2f')} "
        f"added_latency1_ratio={fmt_num(v.latency_ratio, '.2f')} "
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


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="pgbench -S against PostgreSQL directly, through PgBouncer and through "
        "engines.firewall (transaction pooling, guard on), in one run.",
        epilog=PGBOUNCER_INSTALL.replace("PgBouncer is not installed; to", "To")
        + ". Ends with one line: RESULT firewall tps20_ratio=... added_latency1_ratio=... "
        "prepared=ok|fail|n/a pgbouncer_prepared=ok|fail|n/a",
    )
    parser.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                        help="length of each pgbench run (default 10)")  # fmt: skip
    parser.add_argument("--scale", type=int, default=1, help="pgbench -i -s (default 1)")
    parser.add_argument("--clients", default="1,20", metavar="N,N",
                        help="client counts, comma-separated (default 1,20)")  # fmt: skip
    parser.add_argument("--pool-size", type=int, default=20,
                        help="server connections per proxy pool (default 20)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell; the median TPS run is kept (default 1)")  # fmt: skip
    parser.add_argument("--modes", default=",".join(MODES), metavar="M,M",
                        help="which protocols to run: simple (always needed: the TPS and "
                        "latency targets read it), prepared, connect (pgbench -C); "
                        f"default {','.join(MODES)}")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="3-second runs (--duration 3)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 3.0
    try:
        args.clients = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--clients wants numbers like 1,20, not {args.clients!r}")
    if not args.clients or min(args.clients) < 1 or max(args.clients) > 150:
        parser.error("--clients: each count from 1 to 150 (the server allows 200 connections)")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}; known: {', '.join(MODES)}")
    if "simple" not in args.modes:
        parser.error("--modes must include simple: the TPS and latency targets are read from it")
    if args.duration < 1 or args.scale < 1 or args.pool_size < 1 or args.repeat < 1:
        parser.error("--duration, --scale, --pool-size and --repeat must be at least 1")
    return args


def initialise(pgbench: str, port: int, user: str, db: str, scale: int,
               env: dict[str, str]) -> None:  # fmt: skip
    print(f"pgbench -i -s {scale} ...", file=sys.stderr)
    argv = [pgbench, "-h", "127.0.0.1", "-p", str(port), "-U", user, "-i", "-q",
            "-s", str(scale), db]  # fmt: skip
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench -i failed:\n{result.stderr.strip()}")


def paired_ratios(rounds: list[dict[str, Outcome]]) -> list[float]:
    """The firewall's TPS over PgBouncer's in each round where both worked: the two ran
    back to back, so slow drift of the machine moves both and mostly cancels out."""
    return [
        fw.tps / pgb.tps
        for run in rounds
        if (fw := run.get("firewall")) and (pgb := run.get("pgbouncer"))
        and fw.ok and pgb.ok and fw.tps is not None and pgb.tps
    ]  # fmt: skip


def measure(pgbench: str, targets: dict[str, Target], cases: list[Case], args: argparse.Namespace,
            user: str, db: str, env: dict[str, str]) -> tuple[Results, ByRound]:  # fmt: skip
    """Every case against every available target: within a case, rounds of target after
    target, every other round in reverse order. The median run of each, and each case's
    round-by-round firewall/PgBouncer TPS ratios."""
    live = [t for t in targets.values() if t.port is not None]
    for target in live:  # open the pools and warm the caches; not measured
        assert target.port is not None
        warm = Case(max(args.clients), "simple")
        run_pgbench(pgbench_argv(pgbench, target.port, user, db, warm, 1), env, 1)
    total = len(cases) * len(live) * args.repeat
    results: Results = {}
    by_round: ByRound = {}
    step = 0
    for case in cases:
        outcomes: dict[str, list[Outcome]] = {target.name: [] for target in live}
        rounds: list[dict[str, Outcome]] = []
        for n in range(args.repeat):  # rounds of every target, so drift hits all alike
            rounds.append({})
            for target in live if n % 2 == 0 else live[::-1]:
                assert target.port is not None
                step += 1
                print(f"[{step}/{total}] {target.name} {case.label} c={case.clients} ...",
                      end=" ", file=sys.stderr, flush=True)  # fmt: skip
                argv = pgbench_argv(pgbench, target.port, user, db, case, args.duration)
                outcome = run_pgbench(argv, env, args.duration)
                print(f"{outcome.tps:,.0f} TPS" if outcome.ok else f"fails: {outcome.error}",
                      file=sys.stderr, flush=True)  # fmt: skip
                outcomes[target.name].append(outcome)
                rounds[-1][target.name] = outcome
        for target in live:
            results[(case, target.name)] = median_outcome(outcomes[target.name])
        by_round[case] = paired_ratios(rounds)
    return results, by_round


def log_problems(log: Path) -> list[str]:
    """The firewall's warning, error and traceback lines: a pooler that copes under load
    by failing quietly would otherwise look fine in the table."""
    markers = ("level=ERROR", "level=WARNING", "level=CRITICAL", "Traceback")
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(m in line for m in markers)]


def world_traversable_tmpdir() -> Path:
    """A fresh folder under /tmp that the server and PgBouncer users may pass through."""
    path = Path(tempfile.mkdtemp(prefix="bench-firewall-"))
    os.chmod(path, 0o755)  # noqa: S103 (x for the servers' users; secrets inside are 0600)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pgbench = find_pgbench()
    cases = build_cases(args.clients, args.modes)
    workdir = world_traversable_tmpdir()
    try:
        with Cluster(workdir / "pg", instances=1, attached=True, tls=False) as cluster:
            server = cluster[0]
            user, password, db = server.settings.superuser, server.password("superuser"), "postgres"
            env = pgbench_env(password)
            print(f"started PostgreSQL {cluster.stats()['version']} on port {server.port}",
                  file=sys.stderr)  # fmt: skip
            initialise(pgbench, server.port, user, db, args.scale, env)
            upstream = (
                f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
                f"@127.0.0.1:{server.port}/{db}?sslmode=disable"
            )
            with (
                pgbouncer(workdir, server.port, user, password, args.pool_size) as pgb,
                firewall(workdir, upstream, args.pool_size) as (fw, metrics_port),
            ):
                targets = {"direct": Target("direct", server.port), "pgbouncer": pgb,
                           "firewall": fw}  # fmt: skip
                results, by_round = measure(pgbench, targets, cases, args, user, db, env)
                stats = firewall_stats(metrics_port)
                fw_problems = log_problems(workdir / "firewall.log")
    except (ClusterError, RuntimeError) as exc:
        print(f"bench/firewall.py: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    missing = {name: t.missing for name, t in targets.items()}
    verdict = judge(results, cases, pgb.missing is not None, by_round)
    print(
        f"\npgbench -S, scale {args.scale}, {args.duration:g} s per run"
        f"{f', median of {args.repeat}' if args.repeat > 1 else ''}; proxies: transaction "
        f"pooling, {args.pool_size} server connections; firewall with all guard rules on; "
        f"+µs = average latency added over direct\n"
    )
    print(render_table(results, cases, missing))
    if any(case.connect for case in cases):
        print(
            "(-C rows: a new connection per transaction; a negative +µs means the proxy is "
            "faster than direct, since it saves PostgreSQL a backend start per connection)"
        )
    if pgb.missing:
        print(PGBOUNCER_INSTALL)
    if spread := render_rounds(by_round):
        print()
        print("\n".join(spread))
    failures = render_failures(results, cases)
    if failures:
        print("\nfailures:")
        print("\n".join(failures))
    print()
    print(render_firewall_stats(stats))
    if fw_problems:
        print(f"firewall log: {len(fw_problems)} warning/error lines, first: {fw_problems[0]}")
    print()
    print("\n".join(render_verdicts(verdict)))
    print(result_line(verdict))
    return 0


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a runner giving up on us) into SystemExit, so every ``finally`` and
    context manager stops what it started; the kernel's parent-death signal only covers
    SIGKILL, and leaves the temporary folder behind."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    stop_on_sigterm()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process this benchmark started has been stopped",
              file=sys.stderr)  # fmt: skip
        sys.exit(130)
