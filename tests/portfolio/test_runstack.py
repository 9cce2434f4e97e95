"""`make run`'s supervisor: starts every process, serves the site as visitors will see it
(DEBUG off: the site's own 404 page, compressed and cached static files), and one Ctrl-C stops
all of them with nothing left behind — twice in a row, with the same secret key."""

from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import brotli
import pytest
from django.conf import settings

from engines.procs import free_port, pid_alive, port_open

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
# What `make run` ends in (test_make_run_and_make_dev_start_the_stack_so checks the Makefile).
MAKE_RUN = [sys.executable, "-m", "portfolio.localrun", "runstack"]
# Django's debug 404 page lists the URL patterns under this sentence.
TECHNICAL_404 = b"Django tried these URL patterns"


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children = _children_by_parent()
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def django_environ(pid: int) -> dict[str, str]:
    """The DJANGO_ variables process pid was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    pairs = (item.split("=", 1) for item in raw.split("\0") if "=" in item)
    return {name: value for name, value in pairs if name.startswith("DJANGO_")}


def get(
    port: int, path: str, headers: Mapping[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Status, headers and raw body (nothing decompressed) of GET path on loopback."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def static_file(url: str) -> bytes:
    """What collectstatic wrote for a /static/ URL."""
    return (Path(settings.STATIC_ROOT) / url.removeprefix("/static/")).read_bytes()


def check_served_as_visitors_see_it(port: int) -> None:
    """DEBUG off: the site's own 404 page; hashed static files compressed and cached for
    good; HTML never compressed (BREACH)."""
    status, headers, body = get(port, "/no-such-page/", {"Accept-Encoding": "gzip, br"})
    assert status == 404
    assert TECHNICAL_404 not in body
    assert b"<h1>Page not found</h1>" in body
    assert b"There is nothing at <code>/no-such-page/</code>" in body
    assert "Content-Encoding" not in headers

    status, headers, page = get(port, "/", {"Accept-Encoding": "gzip, br"})
    assert status == 200
    assert headers.get_content_type() == "text/html"
    assert "Content-Encoding" not in headers

    hashed = r'(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.(css|js))"'
    linked = sorted(
        set(re.findall(hashed, page.decode())), key=lambda found: len(static_file(found[0]))
    )
    # The largest of each kind: WhiteNoise keeps no compressed copy of a file too small to gain.
    assets = {kind: url for url, kind in linked}
    assert set(assets) == {"css", "js"}, "the page links no hashed stylesheet or script"
    for url in assets.values():
        original = static_file(url)
        for accept, encoding, decompress in [
            ("gzip", "gzip", gzip.decompress),
            ("gzip, deflate, br", "br", brotli.decompress),
        ]:
            status, headers, body = get(port, url, {"Accept-Encoding": accept})
            assert status == 200
            assert headers["Content-Encoding"] == encoding, url
            assert decompress(body) == original
            assert len(body) < len(original)
            assert "max-age=315360000" in headers["Cache-Control"]
            assert "immutable" in headers["Cache-Control"]
        status, headers, body = get(port, url)
        assert "Content-Encoding" not in headers
        assert body == original


def run_stack_once(tmp_path: Path, web_port: int, redis_port: int, ports: dict[str, str]) -> str:
    """Start the stack as `make run` does, check it, Ctrl-C it; return what it printed."""
    # As a shell gives `make run`: none of the DJANGO_ variables the suite sets for itself.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "PORT"} and not k.startswith("DJANGO_")
    }
    env.update(
        PORT=str(web_port),
        EMBEDDED_REDIS_PORT=str(redis_port),
        STACK_RUN_DIR=str(tmp_path / "run"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.update(ports)
    stack = subprocess.Popen(
        MAKE_RUN, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
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
        check_served_as_visitors_see_it(web_port)
        children = descendants(stack.pid)
        assert len(children) >= 5  # redis, postgres (+ its server), firewall, worker, daphne
        # Every Python service, daphne and the worker alike, runs with the same settings and
        # key. (Redis is not one, and its process title overwrites its environment.)
        expected = {
            "DJANGO_SECRET_KEY_FILE": str(tmp_path / "run" / "secret_key"),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]",
            "DJANGO_HTTPS": "0",
            "DJANGO_SETTINGS_MODULE": "portfolio.settings",
        }
        python = os.path.realpath(sys.executable)
        services = [
            pid
            for pid in _children_by_parent()[stack.pid]
            if os.path.realpath(f"/proc/{pid}/exe") == python
        ]
        assert len(services) >= 4  # postgres (pgcluster), firewall, worker, daphne
        assert [django_environ(pid) for pid in services] == [expected] * len(services)
        firewall = ("127.0.0.1", int(ports["FIREWALL_PORT"]))
        assert port_open(*firewall)
        stack.send_signal(signal.SIGINT)
        output.append(stack.communicate(timeout=60)[0])
    finally:
        if stack.poll() is None:
            stack.kill()
    assert stack.returncode == 0, "".join(output)
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if pid_alive(pid)], "processes left behind"
    assert not port_open("127.0.0.1", web_port)
    assert not port_open("127.0.0.1", redis_port)
    assert not port_open(*firewall)
    assert not port_open("127.0.0.1", int(ports["PG_BASE_PORT"]))
    return "".join(output)


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
    key_file = tmp_path / "run" / "secret_key"
    try:
        first = run_stack_once(tmp_path, web_port, redis_port, ports)
        # The firewall demo's suggested query works before anyone presses Reset.
        assert "postgres: sample tables created" in first
        assert first.index("sample tables created") < first.index("web started")
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_bytes()
        inode = key_file.stat().st_ino
        second = run_stack_once(tmp_path, web_port, redis_port, ports)
        assert "postgres: sample tables present" in second
        # Kept, not made anew: sessions and signed cookies survive a restart.
        assert key_file.read_bytes() == key
        assert key_file.stat().st_ino == inode
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_make_run_and_make_dev_start_the_stack_so():
    """The command the stack test runs is the one `make run` ends in; `make dev` adds debug."""

    # Under `make test` the suite runs inside make, whose variables would make this one a
    # sub-make that prints "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}

    def last_command(target: str) -> str:
        dry_run = subprocess.run(
            ["make", "--dry-run", "--no-print-directory", target],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return dry_run.stdout.splitlines()[-1]

    assert last_command("run") == ".venv/bin/python -m portfolio.localrun runstack"
    assert last_command("dev") == "DJANGO_DEBUG=1 .venv/bin/python -m portfolio.localrun runstack"


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
