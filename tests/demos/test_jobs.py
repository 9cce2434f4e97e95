"""The demo job framework through the full ASGI application and through a small consumer
with tight limits: start, stop, disconnect, caps, junk input, rate limiting."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator

from demos.jobs import JobConsumer, JobInputError, JobLimits, JobOutput
from demos.status import get_monitor
from portfolio.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


async def connect(app=application, path="/ws/demos/status/", headers=ORIGIN):
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive_until(communicator, kind, wait=10):
    """Read messages until one of the given type arrives; return it and those before it."""
    seen = []
    while True:
        message = await communicator.receive_json_from(timeout=wait)
        seen.append(message)
        if message["type"] == kind:
            return message, seen


async def test_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/demos/status/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_stop_mid_job_ends_it_and_frees_the_slot():
    communicator = await connect()
    await communicator.send_json_to({"type": "start", "params": {}})
    started, _ = await receive_until(communicator, "started")
    output, _ = await receive_until(communicator, "output")
    assert output["job"] == started["job"]
    assert output["seq"] == 0
    await communicator.send_json_to({"type": "stop", "job": started["job"]})
    done, _ = await receive_until(communicator, "done")
    assert done == {
        "type": "done",
        "job": started["job"],
        "status": "stopped",
        "message": "stopped on request",
    }
    assert not JobConsumer._jobs_per_visitor
    # The socket is still usable: a new job starts.
    await communicator.send_json_to({"type": "start"})
    started_again, _ = await receive_until(communicator, "started")
    assert started_again["job"] == started["job"] + 1
    await communicator.disconnect()


async def test_disconnect_mid_job_cancels_it():
    communicator = await connect()
    await communicator.send_json_to({"type": "start", "params": {}})
    await receive_until(communicator, "output")
    monitor = get_monitor()
    assert monitor._watchers, "the status job should be watching the monitor"
    await communicator.disconnect()
    for _ in range(100):
        if not monitor._watchers and not JobConsumer._jobs_per_visitor:
            break
        await asyncio.sleep(0.02)
    assert not monitor._watchers
    assert not JobConsumer._jobs_per_visitor


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json at all {", "bad_json"),
        ("[1, 2, 3]", "bad_message"),
        ('{"no": "type"}', "bad_message"),
        ('{"type": "launch-missiles"}', "unknown_type"),
        ('{"type": "start", "params": "everything"}', "bad_params"),
        ('{"type": "start", "params": {"rows": 10}}', "bad_params"),
        ('{"type": "stop", "job": 999}', "no_such_job"),
        (b"\x00\x01binary", "bad_message"),
        ("x" * (64 * 1024 + 1), "too_large"),
        ("\u00e9" * (32 * 1024 + 1), "too_large"),  # 32K characters, over 64 KB in UTF-8
        # Nesting is bounded before parsing: json.loads would recurse a thousand levels.
        ("[" * 1000 + "]" * 1000, "bad_json"),
        ('{"type": "start", "params": {"a": ' + "[" * 1000 + "]" * 1000 + "}}", "bad_json"),
        ('{"type": "start", "params": {"a": "' + "[" * 1000 + '"}}', "bad_params"),
        ('{"type": "stop", "job": [1]}', "bad_message"),
        ('{"type": "stop", "job": {"a": 1}}', "bad_message"),
        ('{"type": "stop", "job": "1"}', "bad_message"),
        ('{"type": "stop", "job": true}', "bad_message"),
        ('{"type": "stop", "job": 1e308}', "bad_message"),
        ('{"type": "stop", "job": 12345678901234567890}', "no_such_job"),
        ('{"type": "stop", "job": NaN}', "bad_json"),
        ('{"type": "stop", "job": ' + "9" * 5000 + "}", "bad_json"),
        ('{"type": "start", "params": {}, "extra": 1}', "bad_message"),
        ('{"type": ["start"]}', "bad_message"),
        ('{"type": "\ud800"}', "unknown_type"),
        ("\ud800", "bad_json"),
    ],
)
async def test_junk_gets_an_error_and_the_socket_stays_usable(frame, code):
    communicator = await connect()
    if isinstance(frame, bytes):
        await communicator.send_to(bytes_data=frame)
    else:
        await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == code
    await communicator.send_json_to({"type": "start", "params": {}})
    started, _ = await receive_until(communicator, "started")
    assert started["job"] == 1
    await communicator.disconnect()


async def test_flood_is_rate_limited_then_recovers():
    communicator = await connect()
    for _ in range(60):
        await communicator.send_json_to({"type": "ping-flood"})
    replies = []
    while not await communicator.receive_nothing(timeout=0.3):
        replies.append(await communicator.receive_json_from())
    codes = [reply["code"] for reply in replies]
    assert "rate_limited" in codes
    # Not one answer per junk message: the rate limit also limits the answers.
    assert len(codes) < 60
    await asyncio.sleep(1.5)
    await communicator.send_json_to({"type": "start"})
    started, _ = await receive_until(communicator, "started")
    assert started["job"] == 1
    await communicator.disconnect()


async def test_watches_of_many_open_tabs_do_not_count_against_the_visitors_jobs(settings):
    settings.DEMO_MAX_JOBS_PER_VISITOR = 2
    # Five tabs, each with the footer's status watch.
    tabs = [await connect() for _ in range(5)]
    for tab in tabs:
        await tab.send_json_to({"type": "start"})
        await receive_until(tab, "started")
    assert not JobConsumer._jobs_per_visitor
    # The visitor's interactive jobs still all start.
    demo = await connect(SlowConsumer.as_asgi(), "/", headers=[])
    for _ in range(2):
        await demo.send_json_to({"type": "start", "params": {}})
        await receive_until(demo, "started")
    for communicator in [*tabs, demo]:
        await communicator.disconnect()


async def test_watches_are_capped_per_connection(settings):
    settings.DEMO_MAX_WATCHES_PER_CONNECTION = 2
    tab = await connect()
    for _ in range(2):
        await tab.send_json_to({"type": "start"})
        await receive_until(tab, "started")
    await tab.send_json_to({"type": "start"})
    error, _ = await receive_until(tab, "error")
    assert error["code"] == "too_many_jobs"
    assert "this page" in error["message"]
    await tab.disconnect()


class SlowConsumer(JobConsumer):
    """An interactive job that runs until stopped."""

    async def run_job(self, params, output: JobOutput):
        await asyncio.sleep(30)


async def test_interactive_jobs_are_capped_per_connection_and_per_visitor(settings):
    settings.DEMO_MAX_JOBS_PER_CONNECTION = 2
    settings.DEMO_MAX_JOBS_PER_VISITOR = 3
    first = await connect(SlowConsumer.as_asgi(), "/", headers=[])
    second = await connect(SlowConsumer.as_asgi(), "/", headers=[])
    for _ in range(2):
        await first.send_json_to({"type": "start"})
        await receive_until(first, "started")
    await first.send_json_to({"type": "start"})
    error, _ = await receive_until(first, "error")
    assert error["code"] == "too_many_jobs"
    assert "this page" in error["message"]

    await second.send_json_to({"type": "start"})
    await receive_until(second, "started")
    await second.send_json_to({"type": "start"})
    error, _ = await receive_until(second, "error")
    assert error["code"] == "too_many_jobs"
    assert "other tabs" in error["message"]  # says where the visitor's jobs are
    await first.disconnect()
    # The slots are the visitor's, not the connection's: freed, the other socket may start.
    await second.send_json_to({"type": "start"})
    await receive_until(second, "started")
    await second.disconnect()
    assert not JobConsumer._jobs_per_visitor


async def test_sockets_per_visitor_are_capped_and_the_refusal_says_why(settings):
    settings.DEMO_MAX_SOCKETS_PER_VISITOR = 3
    open_ = [await connect() for _ in range(3)]
    refused = await connect()
    error = await refused.receive_json_from(timeout=5)
    assert error["code"] == "too_many_connections"
    assert "close some tabs" in error["message"]
    closed = await refused.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": JobConsumer.close_too_many_connections}
    await open_[0].disconnect()
    # One tab closed: a new page connects.
    again = await connect()
    await again.send_json_to({"type": "start"})
    await receive_until(again, "started")
    for communicator in [*open_[1:], again]:
        await communicator.disconnect()
    assert not JobConsumer._sockets_per_visitor


class CountingConsumer(JobConsumer):
    """Emits ``count`` numbers, ``per_tick`` at a time, sleeping ``tick`` between them."""

    limits = JobLimits(max_runtime=1.0, max_items=500, max_batch=100, flush_interval=0.05)

    def validate(self, params):
        count = params.get("count", 10)
        if not isinstance(count, int) or count < 0:
            raise JobInputError("count must be a non-negative integer")
        return {"count": count, "tick": float(params.get("tick", 0)), "fail": params.get("fail")}

    async def run_job(self, params, output: JobOutput):
        if params["fail"]:
            raise RuntimeError("engine exploded")
        for n in range(params["count"]):
            output.emit(n)
            if params["tick"]:
                await asyncio.sleep(params["tick"])
        return f"counted {params['count']}"


async def run_counting(params):
    communicator = await connect(CountingConsumer.as_asgi(), "/", headers=[])
    await communicator.send_json_to({"type": "start", "params": params})
    done, seen = await receive_until(communicator, "done")
    await communicator.disconnect()
    outputs = [message for message in seen if message["type"] == "output"]
    return done, outputs


async def test_output_is_batched_numbered_and_complete():
    done, outputs = await run_counting({"count": 450})
    assert done["status"] == "finished"
    assert done["message"] == "counted 450"
    assert [m["seq"] for m in outputs] == list(range(len(outputs)))
    assert [item for m in outputs for item in m["items"]] == list(range(450))
    assert all(len(m["items"]) <= 100 for m in outputs)
    assert len(outputs) < 450 / 10  # batched, not a message per item


async def test_output_cap_ends_the_job_with_limit():
    done, outputs = await run_counting({"count": 10_000})
    assert done["status"] == "limit"
    assert sum(len(m["items"]) for m in outputs) == 500


async def test_run_time_cap_ends_the_job_with_timeout():
    done, outputs = await run_counting({"count": 400, "tick": 0.01})
    assert done["status"] == "timeout"
    assert 0 < sum(len(m["items"]) for m in outputs) < 400


async def test_a_failing_job_reports_failure_without_details():
    done, _ = await run_counting({"fail": True})
    assert done["status"] == "failed"
    assert "exploded" not in done["message"]


async def test_invalid_params_are_reported_by_the_demo():
    communicator = await connect(CountingConsumer.as_asgi(), "/", headers=[])
    await communicator.send_to(text_data=json.dumps({"type": "start", "params": {"count": -1}}))
    error = await communicator.receive_json_from()
    assert error == {
        "type": "error",
        "code": "bad_params",
        "message": "count must be a non-negative integer",
    }
    await communicator.disconnect()


class HeavyConsumer(CountingConsumer):
    """The counting demo with every run counted as heavy."""

    def is_heavy(self, params):
        return True


async def test_heavy_runs_are_budgeted_per_visitor_across_connections(settings):
    settings.DEMO_HEAVY_RUNS_BURST = 2
    settings.DEMO_HEAVY_RUNS_PER_MINUTE = 1
    for _ in range(2):  # the burst: two runs back to back
        done, _ = await run_counting_with(HeavyConsumer, {"count": 3})
        assert done["status"] == "finished"
    communicator = await connect(HeavyConsumer.as_asgi(), "/", headers=[])  # a new socket
    await communicator.send_json_to({"type": "start", "params": {"count": 3}})
    refused = await communicator.receive_json_from()
    assert refused["type"] == "error"
    assert refused["code"] == "too_many_runs"
    # Light jobs of other demos are not counted: the same visitor still counts normally.
    done, _ = await run_counting({"count": 3})
    assert done["status"] == "finished"
    await communicator.disconnect()


async def run_counting_with(consumer, params):
    communicator = await connect(consumer.as_asgi(), "/", headers=[])
    await communicator.send_json_to({"type": "start", "params": params})
    done, seen = await receive_until(communicator, "done")
    await communicator.disconnect()
    return done, seen


class BrokenValidationConsumer(CountingConsumer):
    """A demo whose parameter check has a bug: the framework still answers in words."""

    def validate(self, params):
        return params["missing"]  # KeyError for any visitor's input


async def test_an_unexpected_failure_is_one_warning_and_the_socket_stays_open(caplog):
    communicator = await connect(BrokenValidationConsumer.as_asgi(), "/", headers=[])
    with caplog.at_level("WARNING", logger="demos.jobs"):
        await communicator.send_json_to({"type": "start", "params": {}})
        error = await communicator.receive_json_from(timeout=5)
    assert error == {
        "type": "error",
        "code": "bad_message",
        "message": "the server could not handle that message",
    }
    [record] = [r for r in caplog.records if r.name == "demos.jobs"]
    assert "event=message_failed" in record.getMessage()
    assert "error=KeyError" in record.getMessage()
    assert record.exc_info is None  # one line, no traceback
    # Still open: a stop of nothing is answered.
    await communicator.send_json_to({"type": "stop", "job": 1})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "no_such_job"
    await communicator.disconnect()
