"""The stack status demo against real processes: a Redis, a Celery worker, a daphne."""

from __future__ import annotations

import pytest
from celery import Celery
from channels.testing import WebsocketCommunicator
from django.conf import settings

from demos.status import probe_celery, probe_http, probe_redis
from engines.procs import free_port
from portfolio.asgi import application

pytestmark = [pytest.mark.timeout(90)]


async def test_a_dead_port_is_reported_down():
    result = await probe_http("web", "127.0.0.1", free_port())
    assert not result.up
    assert result.latency_ms is None
    assert "ConnectionRefusedError" in result.detail


async def test_a_dead_redis_is_reported_down():
    result = await probe_redis("redis", f"redis://127.0.0.1:{free_port()}/0")
    assert not result.up


async def test_redis_ping_is_timed():
    result = await probe_redis("redis", settings.REDIS_URL)
    assert result.up
    assert result.latency_ms > 0
    assert result.detail == "PING → PONG"


async def test_no_worker_means_worker_down():
    # A broker database no worker listens on: the ping goes out and nobody answers.
    lonely = Celery(broker=settings.REDIS_URL.rsplit("/", 1)[0] + "/15")
    result = await probe_celery("worker", lonely)
    assert not result.up
    assert result.detail == "no worker answered the ping"


@pytest.mark.django_db(transaction=True)
async def test_status_stream_reports_every_process_up(live_site, celery_worker, demo_firewall):
    communicator = WebsocketCommunicator(
        application, "/ws/demos/status/", headers=[(b"origin", b"http://localhost")]
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "start", "params": {}})
    snapshots = []
    while len(snapshots) < 2:
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == "output":
            snapshots.extend(message["items"])
    await communicator.disconnect()
    latest = {p["name"]: p for p in snapshots[-1]["processes"]}
    assert set(latest) == {"web", "worker", "redis", "postgres", "firewall"}
    for name, process in latest.items():
        assert process["up"], f"{name} down: {process['detail']}"
        assert process["latency_ms"] > 0
    assert celery_worker in latest["worker"]["detail"]
    assert f"{settings.WEB_PORT}" not in latest["web"]["detail"]  # up: the detail is the GET
    assert latest["web"]["detail"].startswith("GET /healthz → HTTP/1.1 200")
    assert latest["firewall"]["detail"] == "login + SELECT 1"
    assert snapshots[0]["at"] < snapshots[1]["at"]


async def test_postgres_down_is_reported_with_the_reason(settings, tmp_path):
    from demos.status import probe_postgres

    settings.PGCLUSTER_DATA_DIR = tmp_path / "never-started"
    from demos.sandbox import demo_dsn

    result = await probe_postgres("postgres", demo_dsn)
    assert not result.up
    assert "is `make run` running?" in result.detail
