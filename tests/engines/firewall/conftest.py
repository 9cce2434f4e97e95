"""A real PostgreSQL (engines.pgcluster) and the real firewall CLI in front of it.

The proxy runs as its own process, started the way an operator would start it, so the
tests exercise exactly what ships: flags, config file, listener, pools.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from engines.firewall.catalog import Catalog, load_catalog
from engines.firewall.guard import Guard
from engines.pgcluster import Cluster
from engines.procs import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL for the firewall tests, with a sample table owned by the superuser."""
    data_dir = Path(tempfile.mkdtemp(prefix="firewall-test-"))
    with Cluster(data_dir, instances=1, attached=True, statement_timeout="5s") as cluster:
        with psycopg.connect(cluster[0].dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
            conn.execute(
                "INSERT INTO users SELECT n, 'user' || n || '@example.com' FROM generate_series(1, 100) n"
            )
        yield cluster
    shutil.rmtree(data_dir, ignore_errors=True)


class Firewall:
    """A running proxy process and how to reach it."""

    def __init__(self, process: subprocess.Popen, port: int, upstream: str, log: Path) -> None:
        self.process = process
        self.port = port
        self.upstream = upstream
        self.log = log

    def dsn(
        self, user: str | None = None, password: str | None = None, db: str = "postgres"
    ) -> str:
        from urllib.parse import urlsplit

        up = urlsplit(self.upstream)
        return f"postgresql://{user or up.username}:{password or up.password}@127.0.0.1:{self.port}/{db}"

    def log_text(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="session")
def start_firewall(postgres: Cluster, tmp_path_factory) -> Iterator[Callable[..., Firewall]]:
    started: list[subprocess.Popen] = []

    def start(*args: str, config: str | None = None) -> Firewall:
        port = free_port()
        workdir = tmp_path_factory.mktemp("firewall")
        log = workdir / "firewall.log"
        upstream = postgres[0].dsn()
        argv = [sys.executable, "-m", "engines.firewall", "--listen", f"127.0.0.1:{port}", *args]
        if config is not None:
            (workdir / "firewall.toml").write_text(config.replace("{upstream}", upstream))
            argv += ["--config", str(workdir / "firewall.toml")]
        else:
            argv += ["--upstream", upstream]
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        wait_for_port("127.0.0.1", port, 20, process)
        return Firewall(process, port, upstream, log)

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def firewall(start_firewall) -> Firewall:
    """The proxy with defaults: transaction pooling, every rule on."""
    return start_firewall()


@pytest.fixture(scope="session")
def catalog(postgres: Cluster) -> Catalog:
    """The test server's function and operator catalog, as the guard reads it."""
    return asyncio.run(load_catalog(postgres[0].dsn()))


@pytest.fixture
def guard(catalog: Catalog) -> Guard:
    """A fresh guard (empty verdict cache) with the default policy on that catalog."""
    return Guard(catalog)
