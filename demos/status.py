"""Stack status: is every process of the site up, and how fast does it answer a real ping?

Each probe does what a client of that process does — an HTTP GET of the web process's
``/healthz``, a Redis ``PING``, a Celery control ping answered by a worker — and times it.
One :class:`StackMonitor` per event loop runs the probes once per interval while at least
one visitor watches, so a hundred open pages cost one round of pings a second, not a hundred.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psycopg
import redis.asyncio as aioredis
from celery import Celery
from django.conf import settings

from portfolio.celery import app as celery_app

from .sandbox import SandboxUnavailable, demo_dsn, firewall_dsn

PROBE_TIMEOUT = 1.0  # seconds; a process slower than this to answer a ping counts as down

PROCESS_LABELS = {
    "web": "Web (daphne)",
    "worker": "Celery worker",
    "redis": "Redis",
    "postgres": "PostgreSQL (demo)",
    "firewall": "SQL firewall",
}


@dataclass(frozen=True)
class ProbeResult:
    """One process's state in a snapshot."""

    name: str
    label: str
    up: bool
    latency_ms: float | None
    detail: str


Probe = Callable[[], Awaitable[ProbeResult]]


def _result(name: str, started: float, up: bool, detail: str) -> ProbeResult:
    latency = round((time.perf_counter() - started) * 1000, 2) if up else None
    return ProbeResult(name, PROCESS_LABELS.get(name, name), up, latency, detail)


async def probe_http(name: str, host: str, port: int, path: str = "/healthz") -> ProbeResult:
    """GET ``path`` over a fresh TCP connection; up when the server answers below 500."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                # The Host header must be one Django accepts or it answers 400; any allowed
                # host will do, and "localhost" is allowed in development.
                allowed = [
                    h
                    for h in settings.ALLOWED_HOSTS
                    if h and "*" not in h and not h.startswith(".")
                ]
                vhost = allowed[0] if allowed else "localhost"
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {vhost}\r\nConnection: close\r\n\r\n".encode()
                )
                status_line = (await reader.readline()).decode("latin-1").strip()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return _result(name, started, False, f"{host}:{port} {type(exc).__name__}: {exc}".strip())
    parts = status_line.split(" ", 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return _result(name, started, 0 < code < 500, f"GET {path} → {status_line or 'no answer'}")


async def probe_redis(name: str, url: str) -> ProbeResult:
    """Redis ``PING`` over a fresh connection."""
    started = time.perf_counter()
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            pong = await client.ping()
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        return _result(name, started, False, f"PING failed: {type(exc).__name__}")
    finally:
        await client.aclose()
    return _result(name, started, bool(pong), "PING → PONG")


async def probe_celery(name: str, app: Celery) -> ProbeResult:
    """Celery control ping: up when at least one worker answers within the timeout."""
    started = time.perf_counter()
    try:
        # control.ping is blocking; limit=1 returns on the first reply instead of waiting
        # out the whole timeout, so the latency is that of the fastest worker.
        replies = await asyncio.to_thread(app.control.ping, timeout=PROBE_TIMEOUT, limit=1)
    except Exception as exc:  # kombu raises a variety of connection errors
        return _result(name, started, False, f"ping failed: {type(exc).__name__}")
    if not replies:
        return _result(name, started, False, "no worker answered the ping")
    workers = ", ".join(host for reply in replies for host in reply)
    return _result(name, started, True, f"pong from {workers}")


async def probe_postgres(name: str, dsn: Callable[[], str]) -> ProbeResult:
    """Log in and run ``SELECT 1``: the whole path a client takes, authentication included."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            conn = await psycopg.AsyncConnection.connect(dsn(), autocommit=True)
            async with conn:
                await conn.execute("SELECT 1")
    except SandboxUnavailable as exc:
        return _result(name, started, False, str(exc))
    except (psycopg.Error, OSError, TimeoutError) as exc:
        return _result(name, started, False, f"SELECT 1 failed: {type(exc).__name__}")
    return _result(name, started, True, "login + SELECT 1")


def default_probes() -> list[Probe]:
    """The processes `make run` starts, at the addresses the settings give."""
    return [
        lambda: probe_http("web", settings.WEB_HOST, settings.WEB_PORT),
        lambda: probe_celery("worker", celery_app),
        lambda: probe_redis("redis", settings.REDIS_URL),
        lambda: probe_postgres("postgres", demo_dsn),
        lambda: probe_postgres("firewall", firewall_dsn),
    ]


async def snapshot(probes: list[Probe]) -> dict:
    """Run every probe at once; the snapshot takes as long as the slowest probe."""
    results = await asyncio.gather(*(probe() for probe in probes))
    return {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "processes": [asdict(result) for result in results],
    }


class StackMonitor:
    """Probes the stack once per interval while anyone watches, and fans snapshots out."""

    def __init__(self, probes: list[Probe], interval: float) -> None:
        self.probes = probes
        self.interval = interval
        self._watchers: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        self.rounds = 0

    async def watch(self) -> AsyncIterator[dict]:
        """Yield a fresh snapshot each interval, the latest one only if the reader lags."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._watchers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    async def _loop(self) -> None:
        while self._watchers:
            started = time.monotonic()
            snap = await snapshot(self.probes)
            self.rounds += 1
            for queue in list(self._watchers):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(snap)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StackMonitor] = (
    weakref.WeakKeyDictionary()
)


def get_monitor() -> StackMonitor:
    """The running event loop's monitor (a task belongs to one loop; tests run several)."""
    loop = asyncio.get_running_loop()
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = StackMonitor(default_probes(), settings.DEMO_STATUS_INTERVAL)
    return monitor
