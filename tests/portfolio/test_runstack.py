"""`make run`'s supervisor: starts every process, serves the site, and one Ctrl-C stops all
of them with nothing left behind — twice in a row."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from portfolio.stack import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_stack_once(tmp_path: Path, web_port: int, redis_port: int, ports: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PORT"}}
    env.update(
        DJANGO_DEBUG="1",
        PORT=str(web_port),
        EMBEDDED_REDIS_PORT=str(redis_port),
        STACK_RUN_DIR=str(tmp_path / "run"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.update(ports)
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "runstack"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = []
    try:
        for line in stack.stdout:
            output.append(line)
            if "The site is up" in line:
                break
        else:
            pytest.fail("runstack ended before the site was up:\n" + "".join(output))
        assert f"http://127.0.0.1:{web_port}/" in output[-1]
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=10) as r:
            assert r.status == 200
        assert port_open("127.0.0.1", redis_port)
        children = descendants(stack.pid)
        assert len(children) >= 5  # redis, postgres (+ its server), firewall, worker, daphne
        firewall = ("127.0.0.1", int(ports["FIREWALL_PORT"]))
        assert port_open(*firewall)
        stack.send_signal(signal.SIGINT)
        output.append(stack.communicate(timeout=60)[0])
    finally:
        if stack.poll() is None:
            stack.kill()
    assert stack.returncode == 0, "".join(output)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "processes left behind"
    assert not port_open("127.0.0.1", web_port)
    assert not port_open("127.0.0.1", redis_port)
    assert not port_open(*firewall)
    assert not port_open("127.0.0.1", int(ports["PG_BASE_PORT"]))


def test_runstack_starts_everything_and_ctrl_c_stops_everything_twice(tmp_path):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        check=True,
    )  # fmt: skip
    web_port, redis_port = free_port(), free_port()
    # Its own PostgreSQL folder (reachable by the unprivileged server user) and ports.
    pg_dir = Path(tempfile.mkdtemp(prefix="runstack-test-"))
    pg_dir.chmod(0o755)
    ports = {
        "PGCLUSTER_DATA_DIR": str(pg_dir / "pgcluster"),
        **{
            name: str(free_port())
            for name in ("PG_BASE_PORT", "FIREWALL_PORT", "FIREWALL_METRICS_PORT")
        },
    }
    try:
        run_stack_once(tmp_path, web_port, redis_port, ports)
        run_stack_once(tmp_path, web_port, redis_port, ports)
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_runstack_refuses_a_taken_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update(DJANGO_DEBUG="1", PORT=str(port), EMBEDDED_REDIS_PORT=str(free_port()))
        env.update(
            {
                name: str(free_port())
                for name in ("PG_BASE_PORT", "FIREWALL_PORT", "FIREWALL_METRICS_PORT")
            }
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "runstack"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in result.stderr
