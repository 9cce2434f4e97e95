"""``manage.py runstack``: start every process of the site and supervise them as one."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demos.firewall import ensure_sandbox
from demos.sandbox import DEMO_INSTANCE, SandboxUnavailable, demo_dsn
from portfolio.celery import QUEUES
from portfolio.stack import Service, StackError, Supervisor, redis_server_command

SANDBOX_READY_TIMEOUT = 60.0  # seconds for the demo instance's roles and schema to appear


def prepare_sandbox(timeout: float = SANDBOX_READY_TIMEOUT) -> str:
    """Make the firewall demo's sample tables if they are missing, before the first visitor
    can ask for them. The instance accepts connections a moment before engines.pgcluster has
    made its roles and schema, so a failed login is tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            created = asyncio.run(ensure_sandbox(recheck=True))
        except (psycopg.Error, SandboxUnavailable, OSError) as exc:
            if time.monotonic() > deadline:
                raise StackError(f"could not make the demo's sample tables: {exc}") from exc
            time.sleep(0.25)
            continue
        return "sample tables created" if created else "sample tables present"


def stack_services() -> list[Service]:
    """The processes of the site, in start order, at the addresses the settings give."""
    python = sys.executable
    services = []
    if settings.EMBEDDED_REDIS:
        services.append(
            Service(
                "redis",
                redis_server_command(settings.EMBEDDED_REDIS_PORT, settings.RUN_DIR / "redis"),
                ready_port=("127.0.0.1", settings.EMBEDDED_REDIS_PORT),
            )
        )
    services += [
        Service(
            "postgres",
            [python, "-m", "engines.pgcluster", "up", "--foreground", "--data-dir",
             str(settings.PGCLUSTER_DATA_DIR), "--names", DEMO_INSTANCE,
             "--base-port", str(settings.PG_BASE_PORT)],
            ready_port=("127.0.0.1", settings.PG_BASE_PORT),
            ready_timeout=120,  # the first start runs initdb
            on_ready=prepare_sandbox,
        ),
        Service(
            "firewall",
            [python, "-m", "engines.firewall",
             "--listen", f"{settings.FIREWALL_HOST}:{settings.FIREWALL_PORT}",
             "--metrics-listen", f"127.0.0.1:{settings.FIREWALL_METRICS_PORT}"],
            ready_port=(settings.FIREWALL_HOST, settings.FIREWALL_PORT),
            late_env=lambda: {"FIREWALL_UPSTREAM": demo_dsn()},
        ),
        Service(
            "worker",
            [python, "-m", "celery", "-A", "portfolio", "worker", "-Q", ",".join(QUEUES),
             "--loglevel", "INFO", "--hostname", "worker@%h"],
        ),
        Service(
            "web",
            [python, "-m", "portfolio.serve", "-b", settings.WEB_HOST, "-p", str(settings.WEB_PORT),
             *(["--proxy-headers"] if settings.BEHIND_PROXY else []),
             "portfolio.asgi:application"],
            ready_port=(settings.WEB_HOST, settings.WEB_PORT),
        ),
    ]  # fmt: skip
    return services


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Start the whole site — Redis (unless REDIS_URL is set), PostgreSQL for the demos, the "
        "SQL firewall, the Celery worker and the daphne web server — and stop all of them on "
        "Ctrl-C or when any one exits."
    )

    def handle(self, *args, **options) -> None:
        supervisor = Supervisor(stack_services(), out=self.stdout)
        # SIGTERM (a process manager) stops the stack like Ctrl-C; SIGINT is set explicitly
        # because a shell starting us in the background would have it ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
        try:
            supervisor.check_ports()
            supervisor.start_all()
            url = f"http://{settings.WEB_HOST}:{settings.WEB_PORT}/"
            self.stdout.write(self.style.SUCCESS(f"\n  The site is up: {url}  (Ctrl-C stops it)\n"))
            name, code = supervisor.wait()
            raise CommandError(f"{name} exited with code {code}; stopped the rest")
        except StackError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            supervisor.stop_all()
