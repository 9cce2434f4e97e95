"""The command line as a supervisor and a shell user drive it: help, exit codes of
``status``, ``dsn``, and ``up --foreground`` stopping its servers on SIGTERM (and on SIGKILL)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from engines.pgcluster import Cluster
from engines.procs import port_open

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engines.pgcluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def start_foreground(data_dir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``up --foreground`` and read its stdout up to the ``ready`` line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engines.pgcluster", "up", "--foreground",
         "--data-dir", str(data_dir), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("ready "):
            return proc, lines
    proc.wait(10)
    raise AssertionError(f"up --foreground exited {proc.returncode} before ready: {lines}")


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def data_dir(make_data_dir: Callable[[], Path]) -> Path:
    return make_data_dir()


def test_help_documents_commands_and_environment() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for word in ("up", "down", "status", "dsn", "PG_BINDIR", "PGCLUSTER_DATA_DIR", "pgserver"):
        assert word in result.stdout
    up_help = cli("up", "--help").stdout
    for option in ("--foreground", "--instances", "--base-port", "--data-dir", "--durable"):
        assert option in up_help


def test_status_exit_codes_follow_the_servers(data_dir: Path) -> None:
    assert cli("status", "--data-dir", str(data_dir)).returncode == 1  # nothing made yet

    up = cli("up", "--data-dir", str(data_dir), "--instances", "2")
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines()[-1].startswith("ready instances=2")
    assert "****@127.0.0.1:" in up.stdout  # passwords masked unless --show-passwords

    status = cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 0, status.stdout
    rows = status.stdout.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["pg0", "pg1"]
    assert all(r.split()[3] == "up" for r in rows)

    as_json = json.loads(cli("status", "--data-dir", str(data_dir), "--json").stdout)
    assert [r["up"] for r in as_json] == [True, True]

    dsn = cli("dsn", "--data-dir", str(data_dir), "--instance", "pg1", "--role", "demo")
    with psycopg.connect(dsn.stdout.strip()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("demo",)

    down = cli("down", "--data-dir", str(data_dir))
    assert down.returncode == 0, down.stderr
    assert cli("status", "--data-dir", str(data_dir)).returncode == 1
    assert not any(port_open("127.0.0.1", r["port"]) for r in as_json)


def test_foreground_stops_its_servers_on_sigterm(data_dir: Path) -> None:
    proc, lines = start_foreground(data_dir)
    try:
        assert any(line.startswith("pg0 demo postgresql://demo:") for line in lines)
        rows = Cluster(data_dir).status()
        assert all(r.up for r in rows)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not any(port_open("127.0.0.1", r.port) for r in rows)
    assert cli("status", "--data-dir", str(data_dir)).returncode == 1


def test_foreground_killed_takes_its_servers_along(data_dir: Path) -> None:
    proc, _ = start_foreground(data_dir)
    rows = Cluster(data_dir).status()
    assert all(r.up for r in rows)

    proc.kill()  # SIGKILL: no handler runs; the kernel tells the servers (PR_SET_PDEATHSIG)
    proc.wait()

    assert _wait(lambda: not any(port_open("127.0.0.1", r.port) for r in rows))
    assert _wait(lambda: not any(r.pid for r in Cluster(data_dir).status()))


def test_bad_arguments_are_usage_errors(data_dir: Path) -> None:
    result = cli("up", "--data-dir", str(data_dir), "--base-port", "70000")
    assert result.returncode == 2
    assert "not 0 (free ports) or a TCP port" in result.stderr


def test_errors_are_one_line_with_a_remedy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engines.pgcluster", "up", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PG_BINDIR": "/nonexistent"},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("pgcluster: error: PG_BINDIR=/nonexistent is not usable")
    assert "Traceback" not in result.stderr
