"""Benchmark: the SQL firewall against PgBouncer and against no proxy at all.

Starts one throwaway PostgreSQL (``engines.pgcluster``), loads it with ``pgbench -i``, puts
PgBouncer and ``python -m engines.firewall`` (both transaction pooling, the firewall with every
guard rule on) in front of it, and runs the same ``pgbench -S`` against each of them and
against PostgreSQL directly: 1 and 20 clients, the simple and the prepared protocol, and
``-C``. Prints the table, the firewall/PgBouncer ratios, the verdict on each target and one
``RESULT firewall ...`` line; ``--help`` lists the flags (``--quick``, ``--duration``,
``--repeat``, ``--clients``, ``--modes``, ``--scale``, ``--pool-size``). How it measures,
why the figures are noisy and how to read them: bench/README.md.

    .venv/bin/python bench/firewall.py            # about 3 minutes
    .venv/bin/python bench/firewall.py --quick    # about 1 minute
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench._firewall_report import (
    MODES,
    ByRound,
    Case,
    Outcome,
    Results,
    build_cases,
    judge,
    log_problems,
    median_outcome,
    paired_ratios,
    parse_pgbench,
    render_failures,
    render_firewall_stats,
    render_rounds,
    render_table,
    render_verdicts,
    result_line,
)
from engines.pgcluster import Cluster, ClusterError
from engines.procs import NotReadyError, die_with_parent, free_port, wait_for_port, wait_until

# The firewall runs as ``python -m engines.firewall`` from the project's folder.
ROOT = Path(__file__).resolve().parent.parent

PGBOUNCER_INSTALL = (
    "PgBouncer is not installed; to compare with it: apt-get install -y pgbouncer "
    "(Debian/Ubuntu; the packaged service need not run, this script starts its own)"
)
PGBENCH_FALLBACK = "/usr/lib/postgresql/15/bin/pgbench"
STARTUP_TIMEOUT = 30.0


# -- processes ----------------------------------------------------------------------------


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
            # SIGTERM should this script die, even by SIGKILL: no proxy outlives a run.
            preexec_fn=die_with_parent(signal.SIGTERM),  # single-threaded here: safe
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


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def starting(what: str, log: Path) -> Iterator[None]:
    """Turn a failed start-up (the process exited, or was not ready within STARTUP_TIMEOUT)
    into a RuntimeError naming ``what``, with the tail of its log."""
    try:
        yield
    except NotReadyError as exc:
        raise RuntimeError(f"{what}: {exc}; its log:\n{log_tail(log)}") from None


# -- the three targets --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where pgbench connects; ``missing`` says why it cannot (e.g. not installed)."""

    name: str
    port: int | None
    missing: str | None = None


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
        with starting("pgbouncer", log):
            wait_for_port("127.0.0.1", port, STARTUP_TIMEOUT, proc)
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
        # Ready when it says so: a probe of its port would count as a client in its figures.
        with starting("firewall", log):
            wait_until(
                lambda: "firewall listening on" in log.read_text(),
                STARTUP_TIMEOUT,
                proc,
                what="it said it was listening",
                timed_out=f"no 'firewall listening on' in its log after {STARTUP_TIMEOUT:g} s",
            )
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


def run_pgbench(argv: list[str], env: dict[str, str], duration: float) -> Outcome:
    try:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(error=f"pgbench did not finish within {duration + 60:g} s")
    return parse_pgbench(result.returncode, result.stdout, result.stderr)


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
