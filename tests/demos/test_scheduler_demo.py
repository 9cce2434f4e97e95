"""The work-stealing scheduler demo against the real engine: the page, the service's caps,
and runs through the consumer over the full ASGI application."""

from __future__ import annotations

import re

import pytest
from channels.testing import WebsocketCommunicator

from demos import scheduler
from demos.registry import DEMOS
from engines.scheduler import Scheduler
from portfolio import seed
from portfolio.asgi import application

from .wsjobs import read_until_done

pytestmark = [pytest.mark.timeout(120)]

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
PATH = "/ws/demos/scheduler/"


async def connect(client=("127.0.0.1", 50000)):
    communicator = WebsocketCommunicator(application, PATH, headers=ORIGIN)
    communicator.scope["client"] = client
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def start(communicator, params):
    """Send a start; return the job id (or fail with the error the server sent)."""
    await communicator.send_json_to({"type": "start", "params": params})
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "started", message
    return message["job"]


async def run(communicator, params):
    await start(communicator, params)
    return await read_until_done(communicator)


async def expect_error(communicator, params, code, pattern):
    await communicator.send_json_to({"type": "start", "params": params})
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "error", message
    assert message["code"] == code
    assert re.search(pattern, message["message"]), message["message"]
    return message


def by_kind(items, kind):
    return [item for item in items if item["kind"] == kind]


# -- the page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_explains_and_offers_the_workload(client):
    response = client.get("/demos/scheduler/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<h1") == 1
    assert re.search(r'<meta name="description" content="[^"]*work-stealing', html)
    for term in ("Chase-Lev deque", "mailbox", "steal", "parks", "Honest caveat"):
        assert term in html, term
    for field in ("sd-workers", "sd-kind", "sd-pattern", "sd-count"):
        assert f'<label class="sd-label" for="{field}">' in html
        assert f'id="{field}"' in html
    for kind in scheduler.KINDS:
        assert f'value="{kind}"' in html
    for pattern in scheduler.PATTERNS:
        assert f'<option value="{pattern}"' in html
    # Strict CSP: scripts only from files, no inline handlers.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"\son[a-z]+=", html)
    assert "scheduler-demo" in html
    assert "Content-Security-Policy" in response.headers


# What each figure on the project's card is called, on the card and on the demo page: the
# page must show the same quantity the card states, under the same name.
CARD_QUANTITIES = {
    "< 5 µs P50": "Submit-to-start, idle pool",
    "1M+ jobs/s": "Throughput, empty native jobs",
}


@pytest.mark.django_db
def test_the_cards_figures_are_quantities_the_page_measures(client):
    [project] = [p for p in seed.PROJECTS if p.demo_slug == "scheduler"]
    figures = {f.metric: f.text for f in project.features if f.metric}
    assert figures.keys() == CARD_QUANTITIES.keys()
    html = client.get("/demos/scheduler/").content.decode()
    for metric, quantity in CARD_QUANTITIES.items():
        assert quantity.lower() in figures[metric].lower(), (metric, figures[metric])
        assert quantity in html, quantity
    # The run's own histogram is labelled as what it is, apart from the card's latency.
    assert "Queueing delay under this burst" in html
    # The throughput figure's workload is one click away, and one the server accepts.
    preset = re.search(r"<button[^>]*data-sd-preset[^>]*>", html)[0]
    params = dict(re.findall(r'data-(kind|pattern|workers|count)="([^"]*)"', preset))
    checked = scheduler.check_params(params)
    assert (checked.kind, checked.pattern) == ("noop", "fork")


@pytest.mark.django_db
def test_the_demos_index_links_to_it(client):
    assert DEMOS["scheduler"].available
    html = client.get("/demos/").content.decode()
    assert 'href="/demos/scheduler/"' in html


# -- checking a workload --------------------------------------------------------------------


def test_defaults_and_caps():
    assert scheduler.check_params({}) == scheduler.RunParams(
        workers=2, count=200_000, kind="spin", pattern="fork"
    )
    assert scheduler.check_params({"workers": "3", "count": 1000.0, "kind": "python"}).count == 1000
    # Paced submissions cost their pace: at most MAX_WORK_SECONDS of it.
    paced = scheduler.max_count("noop", "paced", 2)
    assert paced == int(scheduler.MAX_WORK_SECONDS / (scheduler.PACED_INTERVAL_US / 1e6))
    assert scheduler.check_params({"kind": "noop", "pattern": "paced", "count": paced})
    with pytest.raises(ValueError, match=r'"count" must be between 1 and 32,000'):
        scheduler.check_params({"kind": "noop", "pattern": "paced", "count": paced + 1})
    # No kind goes past its own cap, whatever the workers.
    for kind in scheduler.KINDS.values():
        for workers in range(1, scheduler.MAX_WORKERS + 1):
            assert scheduler.max_count(kind.name, "fork", workers) <= kind.max_count


# -- submit-to-start with the pool idle -----------------------------------------------------


def assert_idle_latency(idle):
    """The idle-pool figures: both kinds of start seen, counts within their passes."""
    assert idle["hot_probes"] == scheduler.IDLE_HOT_PROBES
    assert idle["parked_probes"] == scheduler.IDLE_PARKED_PROBES
    assert idle["probes"] == idle["hot_probes"] + idle["parked_probes"]
    assert idle["hot_interval_us"] < idle["spin_us"] < idle["parked_interval_us"]
    for kind in ("hot", "parked"):
        figures = idle[kind]
        assert 0 < figures["count"] <= idle[f"{kind}_probes"], (kind, figures)
        assert 0 < figures["p50_ns"] <= figures["p99_ns"] <= figures["p999_ns"], (kind, figures)


def test_idle_latency_sends_single_jobs_to_idle_workers():
    with Scheduler(workers=2) as s:
        before = s.stats()["totals"]
        idle = scheduler.idle_latency(s)
        after = s.stats()["totals"]
    assert_idle_latency(idle)
    # Every probe ran, came from outside (the mailboxes), and the 1 ms gaps let workers park.
    assert after["executed"] - before["executed"] == idle["probes"]
    assert after["mailbox_pushes"] - before["mailbox_pushes"] == idle["probes"]
    assert after["parks"] - before["parks"] >= idle["parked"]["count"] // 2
    # Fixed, whatever the visitor asked for, and short beside the run's own cap.
    assert scheduler.IDLE_PROBE_SECONDS < scheduler.MAX_RUN_SECONDS / 10


# -- through the websocket ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_run_streams_workers_and_ends_with_the_comparison():
    communicator = await connect()
    params = {"workers": 2, "count": 60_000, "kind": "spin", "pattern": "fork"}
    items, done = await run(communicator, params)
    assert done["status"] == "finished", done

    [first] = by_kind(items, "start")
    assert first["workers"] == 2
    assert first["count"] == 60_000
    assert first["bucket_lower_ns"][:4] == [0, 1, 2, 3]
    samples = by_kind(items, "sample")
    assert samples
    for sample in samples:
        assert len(sample["workers"]) == 2
        for worker in sample["workers"]:
            assert worker.keys() >= {"deque", "mailbox", "executed", "stolen", "parks"}
        assert all(len(steal) == 3 for steal in sample["steals"])
    completed = [sample["completed"] for sample in samples]
    assert completed == sorted(completed)
    assert completed[-1] == 60_000
    assert by_kind(items, "phase") == [
        {"kind": "phase", "phase": "idle"},
        {"kind": "phase", "phase": "compare"},
    ]

    [summary] = by_kind(items, "summary")
    assert items[-1] == summary
    assert summary["ran"] == 60_000
    assert summary["cancelled"] == 0
    assert not summary["capped"]
    assert (summary["missing"], summary["duplicates"]) == (0, 0)
    assert sum(w["executed"] for w in summary["per_worker"]) == summary["totals"]["executed"]
    # "fork": one root job spawns every job onto its own deque, so the other worker's
    # only way in is to steal.
    assert summary["totals"]["stolen"] > 0
    assert sum(count for _, _, count in summary["steals"]) == summary["totals"]["stolen"]
    streamed = sum(count for sample in samples for _, _, count in sample["steals"])
    assert streamed <= summary["totals"]["stolen"]
    # The run's histogram holds the run's jobs (and the fork's root) and nothing else: the
    # idle-pool probes that follow on the same workers are counted apart.
    burst = summary["latency"]
    assert burst["hot"]["count"] + burst["parked"]["count"] == summary["totals"]["executed"]

    # Submit-to-start with the pool idle: hot (20 µs apart) and parked (1 ms apart) starts,
    # streamed before the comparison and repeated in the summary.
    ending = [(item["kind"], item.get("phase")) for item in items if item["kind"] != "sample"]
    assert ending[1:] == [
        ("phase", "idle"),
        ("idle", None),
        ("phase", "compare"),
        ("summary", None),
    ]
    [idle] = by_kind(items, "idle")
    assert summary["idle_latency"] == {k: v for k, v in idle.items() if k != "kind"}
    assert_idle_latency(summary["idle_latency"])
    # 60,000 jobs queued at once wait behind each other for a few hundred milliseconds; one
    # job sent to an idle worker starts in microseconds. Orders of magnitude apart, always.
    assert idle["hot"]["p50_ns"] * 10 < burst["hot"]["p50_ns"]
    assert idle["parked"]["p50_ns"] * 10 < burst["hot"]["p50_ns"]

    compare = summary["compare"]
    assert compare["jobs"] == scheduler.COMPARE_MAX
    assert compare["workers"] == 2
    assert compare["scheduler_jobs_per_s"] > 0
    assert compare["threadpool_jobs_per_s"] > 0
    assert compare["ratio"] == pytest.approx(
        compare["scheduler_jobs_per_s"] / compare["threadpool_jobs_per_s"]
    )
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_python_callables_and_paced_submissions():
    communicator = await connect()
    items, done = await run(
        communicator, {"workers": 3, "count": 5_000, "kind": "python", "pattern": "split"}
    )
    assert done["status"] == "finished", done
    [summary] = by_kind(items, "summary")
    assert summary["job_kind"] == "python"
    assert summary["ran"] == 5_000
    assert len(summary["per_worker"]) == 3
    assert summary["compare"]["jobs"] == 5_000

    # Paced from outside, slower than the workers spin: they park, and jobs wake them.
    items, done = await run(
        communicator, {"workers": 2, "count": 400, "kind": "noop", "pattern": "paced"}
    )
    assert done["status"] == "finished", done
    [summary] = by_kind(items, "summary")
    assert summary["ran"] == 400
    assert summary["totals"]["mailbox_pushes"] == 400
    assert summary["totals"]["parks"] > 0
    assert summary["latency"]["parked"]["count"] > 0
    assert any(parked for _, _, parked in summary["latency"]["buckets"])
    assert_idle_latency(summary["idle_latency"])
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_stop_mid_run_cancels_and_frees_the_server():
    communicator = await connect()
    job = await start(communicator, {"workers": 2, "count": 700_000, "kind": "spin"})
    while True:  # wait for the run to be going
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == "output" and by_kind(message["items"], "sample"):
            break
    await communicator.send_json_to({"type": "stop", "job": job})
    items = []
    while True:
        message = await communicator.receive_json_from(timeout=30)
        if message["type"] == "output":
            items.extend(message["items"])
        elif message["type"] == "done":
            break
    assert message["status"] == "stopped"
    assert not by_kind(items, "summary")
    # The slot is free at once: the next run starts and finishes.
    items, done = await run(communicator, {"workers": 1, "count": 1_000, "kind": "noop"})
    assert done["status"] == "finished", done
    assert by_kind(items, "summary")[0]["ran"] == 1_000
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_leaving_mid_run_cancels_it_for_the_next_visitor():
    leaving = await connect(("192.0.2.3", 3))
    await start(leaving, {"workers": 2, "count": 30_000, "kind": "python", "pattern": "paced"})
    message = await leaving.receive_json_from(timeout=10)
    assert message["type"] == "output"
    await leaving.disconnect()
    staying = await connect(("192.0.2.4", 4))
    items, done = await run(staying, {"workers": 2, "count": 2_000, "kind": "skew"})
    assert done["status"] == "finished", done
    assert by_kind(items, "summary")[0]["ran"] == 2_000
    await staying.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_junk_and_out_of_range_parameters_get_clear_errors():
    communicator = await connect()
    cases = [
        ({"workers": 0}, r'"workers" must be between 1 and 4, got 0'),
        ({"workers": 64}, r'"workers" must be between 1 and 4, got 64'),
        ({"workers": "lots"}, r'"workers" must be a whole number'),
        ({"workers": True}, r'"workers" must be a whole number'),
        ({"count": 1.5}, r'"count" must be a whole number'),
        ({"count": [1]}, r'"count" must be a whole number'),
        ({"count": 0}, r'"count" must be between 1 and'),
        ({"count": "-5"}, r'"count" must be a whole number'),
        ({"count": 10**400}, r"got a far larger number$"),
        ({"workers": -(10**30)}, r"got a far larger number$"),
        ({"count": 10**12, "kind": "noop"}, r'"count" must be between 1 and 5,000,000'),
        ({"kind": "bogus"}, r'"kind" must be one of noop, spin, skew, fib, python'),
        ({"pattern": 7}, r'"pattern" must be one of fork, split, outside, paced'),
        ({"threads": 9}, r"unknown parameter 'threads'"),
    ]
    for params, pattern in cases:
        await expect_error(communicator, params, "bad_params", pattern)
    # NaN is Python's extension, not JSON: the job framework refuses the message itself.
    await expect_error(communicator, {"count": float("nan")}, "bad_json", r"not valid JSON")
    await communicator.send_to(text_data="not json")
    junk = await communicator.receive_json_from()
    assert junk["code"] == "bad_json"
    # The socket is still good for a real run.
    items, done = await run(communicator, {"workers": 1, "count": 500, "kind": "fib"})
    assert done["status"] == "finished", done
    assert by_kind(items, "summary")[0]["ran"] == 500
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_one_run_per_process_at_a_time():
    first = await connect(("192.0.2.1", 1))
    second = await connect(("192.0.2.2", 2))
    await start(first, {"workers": 2, "count": 700_000, "kind": "spin"})
    message = await first.receive_json_from(timeout=10)
    assert message["type"] == "output"  # the run holds the slot
    await start(second, {"workers": 1, "count": 100, "kind": "noop"})
    items, done = await read_until_done(second)
    assert done["status"] == "failed"
    assert "another visitor's run is going" in done["message"]
    assert not by_kind(items, "summary")
    await first.send_json_to({"type": "stop"})
    await read_until_done(first)
    await first.disconnect()
    await second.disconnect()


async def test_a_run_past_the_wall_time_cap_is_cancelled():
    items = []
    params = scheduler.check_params({"workers": 2, "count": 700_000, "kind": "spin"})
    summary = await scheduler.run_demo(params, items.append, max_seconds=0.3)
    assert summary["capped"]
    assert summary["cancelled"] > 0
    assert summary["ran"] + summary["cancelled"] == 700_000
    assert (summary["missing"], summary["duplicates"]) == (0, 0)  # cancelled is not lost
    assert by_kind(items, "sample")
