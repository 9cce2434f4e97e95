"""``python -m engines.firewall``: run the SQL firewall and connection pooler."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from engines.pgproxy.config import POOL_MODES, ConfigError

from .config import load_config
from .proxy import FirewallProxy
from .verdicts import RULES

EPILOG = (
    """
rules (the guard denies by default; each refusal names one of these):
"""
    + "\n".join(f"  {rule.name:<24} {rule.description}" for rule in RULES.values())
    + """

A blocked statement gets ErrorResponse SQLSTATE 42501 naming the rule; the connection stays
usable and in the right transaction state. Every block is logged by engines.firewall.audit.

examples:
  python -m engines.firewall --upstream postgresql://demo:secret@127.0.0.1:5432/demo
  psql "postgresql://demo:secret@127.0.0.1:6432/demo" -c "DROP TABLE users"
  python -m engines.firewall --config firewall.toml
"""
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engines.firewall",
        description="A PostgreSQL wire-protocol proxy that pools server connections and blocks "
        "destructive SQL (DROP, TRUNCATE, ALTER TABLE, DELETE/UPDATE without WHERE). With only "
        "--upstream, clients log in with the upstream's user name and password.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="where clients connect (default 127.0.0.1:6432)"
    )
    parser.add_argument(
        "--upstream",
        default=os.environ.get("FIREWALL_UPSTREAM"),
        metavar="URL",
        help="postgresql://USER:PASS@HOST:PORT/DB[?sslmode=...] (default: $FIREWALL_UPSTREAM, "
        "which keeps the password out of the process list)",
    )
    parser.add_argument(
        "--pool-mode",
        choices=POOL_MODES,
        help="lend a server per transaction (default) or per session",
    )
    parser.add_argument(
        "--pool-size", type=int, metavar="N", help="server connections per database (default 20)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file: databases, users, guard additions, limits"
    )
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve GET /metrics (Prometheus text) and GET /stats.json (JSON) here",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate for TLS towards clients")
    parser.add_argument("--tls-key", metavar="FILE", help="its private key")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser


async def serve(proxy: FirewallProxy) -> None:
    await proxy.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"firewall listening on {proxy.config.listen_host}:{proxy.port}", flush=True)
    await stop.wait()
    await proxy.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    try:
        config = load_config(
            args.config,
            {
                "listen": args.listen, "metrics_listen": args.metrics_listen,
                "upstream": args.upstream, "pool_mode": args.pool_mode, "pool_size": args.pool_size,
                "tls_cert": args.tls_cert, "tls_key": args.tls_key,
            },
        )  # fmt: skip
    except ConfigError as exc:
        print(f"firewall: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(serve(FirewallProxy(config)))
    except OSError as exc:
        print(
            f"firewall: cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
