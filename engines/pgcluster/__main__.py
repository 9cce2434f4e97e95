"""The command line of ``engines.pgcluster``: up, down, status and dsn.

``up --foreground`` is the form a supervisor runs: it starts the servers, prints one line per
DSN and then ``ready ...``, and stays until SIGTERM, SIGINT or SIGHUP, on which it stops the
servers (fast shutdown) and exits 0. Should a server die meanwhile, it stops the others and
exits 1, so the supervisor sees the failure. A SIGKILLed foreground process takes its servers
with it too: the kernel sends them SIGINT (see ``instance.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .cluster import Cluster
from .errors import ClusterError

logger = logging.getLogger("engines.pgcluster")

DEFAULT_DATA_DIR = ".run/pgcluster"

EPILOG = """\
environment:
  PG_BINDIR            bin folder of the PostgreSQL server to use; else `pg_config --bindir`,
                       else the newest /usr/lib/postgresql/<major>/bin, else the binaries of
                       the pgserver wheel (PostgreSQL 16, no TLS)
  PGCLUSTER_DATA_DIR   default for --data-dir (default: ./.run/pgcluster)
  PGCLUSTER_BASE_PORT  default for --base-port (default: 0, free ports, kept across restarts)
  PGCLUSTER_USER       when run as root: the unprivileged user the servers run as
                       (default: a system user `pgcluster`, created if missing, else nobody)

data folder:
  cluster.json         names, ports, binaries, TLS (no secrets); read by status and down
  tls/ca.crt           the CA to trust: sslmode=verify-full sslrootcert=<data-dir>/tls/ca.crt
  <name>/              one instance: pgdata/, server.log, superuser.password, demo.password

exit status: 0 success (status: all instances up), 1 failure (status: any instance down)

role names, timeouts and ports given once are recorded in cluster.json and kept by later
runs that do not give them; the binaries that made a data folder are kept unless
PG_BINDIR says otherwise.

examples:
  python -m engines.pgcluster up --names demo,shard0,shard1,shard2 --base-port 56432 --foreground
  python -m engines.pgcluster status
  psql "$(python -m engines.pgcluster dsn --instance pg0 --role demo)"
  python -m engines.pgcluster down
"""


class _Stop(BaseException):
    """Raised by the signal handler to abandon a start that is still in progress."""


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not 0 (free ports) or a TCP port")
    return port


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PGCLUSTER_DATA_DIR") or DEFAULT_DATA_DIR),
        help="folder holding every instance (env PGCLUSTER_DATA_DIR; default %(default)s)",
    )
    common.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )

    parser = argparse.ArgumentParser(
        prog="python -m engines.pgcluster",
        description="Start, check and stop N local PostgreSQL servers on loopback ports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, parents=[common], help=summary, description=description, epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip

    up = add(
        "up", "initialise if needed and start; idempotent",
        "Initialise missing instances, start stopped ones, (re)apply the demo role, print "
        "one line per DSN (passwords masked) and then a line starting with 'ready'.",
    )  # fmt: skip
    group = up.add_mutually_exclusive_group()
    group.add_argument("--instances", type=int, help="how many instances: pg0, pg1, ...")
    group.add_argument("--names", help="comma-separated instance names instead of pg0, pg1, ...")
    up.add_argument(
        "--base-port",
        type=_port,
        default=os.environ.get("PGCLUSTER_BASE_PORT") or "0",
        help="instance i listens on BASE+i; 0 picks free ports and keeps them "
        "(env PGCLUSTER_BASE_PORT; default %(default)s)",
    )
    up.add_argument(
        "--foreground", action="store_true",
        help="after 'ready', stay until SIGTERM/SIGINT/SIGHUP, then stop the servers and exit "
        "0; exit 1 if a server dies (for supervisors)",
    )  # fmt: skip
    up.add_argument(
        "--durable", action=argparse.BooleanOptionalAction,
        help="fsync, synchronous_commit and full_page_writes on (default off: demo data that "
        "a machine crash may lose)",
    )  # fmt: skip
    tls = up.add_mutually_exclusive_group()
    tls.add_argument("--tls", dest="tls", action="store_true", default=None,
                     help="require TLS (fail if the binaries lack OpenSSL)")  # fmt: skip
    tls.add_argument("--no-tls", dest="tls", action="store_false",
                     help="serve without TLS (default: TLS when supported)")  # fmt: skip
    up.add_argument("--superuser", help="fixed at first start (default postgres)")
    up.add_argument("--demo-role", help="the least-privilege role (default demo)")
    up.add_argument("--demo-db", help="the demo role's database (default demo)")
    up.add_argument("--statement-timeout", help="the demo role's (default 5s)")
    up.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds (default %(default)s)"
    )
    up.add_argument("--show-passwords", action="store_true", help="print DSNs with real passwords")

    down = add(
        "down", "stop every instance (fast shutdown)",
        "Stop every instance of the data folder: fast shutdown (SIGINT), immediate (SIGQUIT) "
        "after --timeout.",
    )  # fmt: skip
    down.add_argument(
        "--timeout", type=float, default=30.0,
        help="seconds before a fast shutdown becomes immediate (default %(default)s)",
    )  # fmt: skip

    status = add(
        "status", "table of instances; exit 0 only if all are up",
        "Print name, port, pid, state, version, TLS and bindir of every instance; "
        "exit 0 if all are up, 1 otherwise.",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    dsn = add(
        "dsn", "print one connection URL, with its password",
        "Print postgresql://user:password@127.0.0.1:port/db for one instance and role.",
    )  # fmt: skip
    dsn.add_argument("--instance", default="0", help="name or index (default %(default)s)")
    dsn.add_argument("--role", choices=["superuser", "demo"], default="superuser")
    dsn.add_argument("--db", help="database (default: postgres, or the demo database)")
    dsn.add_argument("--tls", action="store_true", help="add sslmode=verify-full and the CA")
    return parser


def _mask(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)


def _print_dsns(cluster: Cluster, show_passwords: bool) -> None:
    for inst in cluster.instances:
        for role in ("superuser", "demo"):
            url = inst.dsn(role)
            print(inst.name, role, url if show_passwords else _mask(url))
    if cluster.ca_file:
        print("ca", cluster.ca_file)


def _cmd_up(args: argparse.Namespace) -> int:
    instances = args.instances
    if args.names:
        instances = [n.strip() for n in args.names.split(",") if n.strip()]
    cluster = Cluster(
        args.data_dir,
        instances=instances,
        base_port=args.base_port,
        superuser=args.superuser,
        demo_role=args.demo_role,
        demo_db=args.demo_db,
        statement_timeout=args.statement_timeout,
        durable=args.durable,
        tls=args.tls,
        attached=args.foreground,
        start_timeout=args.start_timeout,
    )
    if not args.foreground:
        cluster.up()
        _print_dsns(cluster, args.show_passwords)
        print(f"ready instances={len(cluster.instances)} data_dir={cluster.data_dir}", flush=True)
        return 0
    return _run_foreground(cluster, args.show_passwords)


def _run_foreground(cluster: Cluster, show_passwords: bool) -> int:
    stop = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal starting
        logger.info("event=signal signal=%s", signal.Signals(signum).name)
        stop.set()
        if starting:
            starting = False
            raise _Stop

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    code = 0
    try:
        cluster.up()
        starting = False
        _print_dsns(cluster, show_passwords)
        print(f"ready instances={len(cluster.instances)} data_dir={cluster.data_dir}", flush=True)
        while not stop.wait(1.0):
            dead = [i for i in cluster.instances if i.running_pid() is None]
            if dead:
                for inst in dead:
                    logger.error(
                        "event=server_died instance=%s log=%s tail=%r",
                        inst.name,
                        inst.log_path,
                        inst.log_tail(5),
                    )
                code = 1
                break
    except _Stop:
        logger.info("event=start_abandoned reason=signal")
    finally:
        starting = False
        # 8 s of fast shutdown, then immediate: inside a supervisor's usual 10 s grace.
        cluster.down(timeout=8.0)
    return code


def _cmd_down(args: argparse.Namespace) -> int:
    Cluster(args.data_dir).down(timeout=args.timeout)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    rows = Cluster(args.data_dir).status()
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], default=str, indent=2))
    else:
        print(f"{'NAME':<10} {'PORT':>5} {'PID':>8} {'STATE':<5} {'VERSION':<8} {'TLS':<3} BINDIR")
        for r in rows:
            print(
                f"{r.name:<10} {r.port:>5} {r.pid or '-':>8} {'up' if r.up else 'down':<5} "
                f"{r.version:<8} {'on' if r.tls else 'off':<3} {r.bindir}"
            )
    return 0 if rows and all(r.up for r in rows) else 1


def _cmd_dsn(args: argparse.Namespace) -> int:
    cluster = Cluster(args.data_dir)
    key: int | str = int(args.instance) if args.instance.isdigit() else args.instance
    try:
        inst = cluster[key]
    except IndexError:
        raise ClusterError(f"no instance {args.instance}; instances: {cluster.names}") from None
    if inst.port == 0:
        raise ClusterError(f"{inst.name} has never been started in {cluster.data_dir}; run up")
    print(inst.dsn(args.role, args.db, args.tls))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    commands = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "dsn": _cmd_dsn}
    try:
        return commands[args.command](args)
    except (ClusterError, ValueError) as exc:
        print(f"pgcluster: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
