"""Fixtures shared by the whole suite: seeded database, a real Celery worker, a real site.

The services themselves (Redis, ports, environment) come from the ``tests.stack`` plugin,
which runs before Django is configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from engines.procs import wait_for_port
from portfolio.celery import QUEUES
from portfolio.stack import Service, start, stop

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> None:
    """The test database holds the seed content, as a fresh `make setup` leaves it."""
    with django_db_blocker.unblock():
        call_command("loadseed", verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _static_files() -> None:
    """Hashed static files as production serves them, fresh from the sources under test."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _fresh_heavy_run_budgets() -> None:
    """Every test starts as a new visitor would: the heavy-run budget and the open sockets of
    the demo consumers (demos.jobs) are per visitor address, and in tests every visitor has
    the same one."""
    from demos.jobs import JobConsumer

    JobConsumer._heavy_buckets.clear()
    JobConsumer._sockets_per_visitor.clear()


def _log(tmp_path_factory: pytest.TempPathFactory, name: str):
    return open(tmp_path_factory.mktemp("logs") / f"{name}.log", "wb")


@pytest.fixture(scope="session")
def celery_worker(tmp_path_factory) -> Iterator[str]:
    """A real Celery worker process on the suite's Redis; yields its node name."""
    from portfolio.celery import app

    node = f"test-{os.getpid()}@localhost"
    log = _log(tmp_path_factory, "worker")
    argv = [
        sys.executable, "-m", "celery", "-A", "portfolio", "worker", "--pool", "solo",
        "-Q", ",".join(QUEUES), "--hostname", node, "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    process = start(Service("worker", argv), stdout=log)
    try:
        deadline = time.monotonic() + 60
        while not any(node in reply for reply in app.control.ping(timeout=0.5)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start; see {log.name}")
        yield node
    finally:
        stop(process, grace=10)
        log.close()


@pytest.fixture(scope="session")
def demo_postgres():
    """The demos' PostgreSQL as `make run` starts it: one instance named "demo"."""
    from demos.sandbox import DEMO_INSTANCE
    from engines.pgcluster import Cluster

    cluster = Cluster(
        settings.PGCLUSTER_DATA_DIR, [DEMO_INSTANCE], base_port=settings.PG_BASE_PORT, attached=True
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def demo_firewall(demo_postgres, tmp_path_factory) -> Iterator[str]:
    """The SQL firewall in front of it, on the settings' ports; yields its DSN."""
    from demos.sandbox import demo_dsn, firewall_dsn

    log = _log(tmp_path_factory, "firewall")
    argv = [
        sys.executable, "-m", "engines.firewall",
        "--listen", f"{settings.FIREWALL_HOST}:{settings.FIREWALL_PORT}",
        "--metrics-listen", f"127.0.0.1:{settings.FIREWALL_METRICS_PORT}",
    ]  # fmt: skip
    process = start(Service("firewall", argv, env={"FIREWALL_UPSTREAM": demo_dsn()}), stdout=log)
    try:
        wait_for_port(settings.FIREWALL_HOST, settings.FIREWALL_PORT, 30, process)
        yield firewall_dsn()
    finally:
        stop(process, grace=10)
        log.close()


@pytest.fixture(scope="session")
def live_site(tmp_path_factory, celery_worker) -> Iterator[str]:
    """The real site: daphne serving the ASGI app on the port the settings name, with its
    own migrated and seeded SQLite database and a Celery worker; yields the base URL."""
    workdir = tmp_path_factory.mktemp("site")
    env = {
        "DATABASE_URL": f"sqlite:///{workdir / 'site.sqlite3'}",
        # Browser tests of several demos run heavy jobs from one address in a few minutes;
        # the budget itself is tested in tests/demos/test_jobs.py.
        "DEMO_HEAVY_RUNS_BURST": "20",
    }
    for command in (["migrate", "--noinput"], ["loadseed"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "--verbosity", "0"],
            cwd=ROOT, env={**os.environ, **env}, check=True,
        )  # fmt: skip
    log = _log(tmp_path_factory, "web")
    argv = [sys.executable, "-m", "portfolio.serve", "-b", "127.0.0.1", "-p", str(settings.WEB_PORT),
            "portfolio.asgi:application"]  # fmt: skip
    process = start(Service("web", argv, env=env), stdout=log)
    try:
        wait_for_port("127.0.0.1", settings.WEB_PORT, 60, process)
        yield f"http://localhost:{settings.WEB_PORT}"
    finally:
        stop(process, grace=10)
        log.close()
