"""The SQL firewall demo against the real thing: the demo PostgreSQL, the firewall process in
front of it, and the consumer through the full ASGI application."""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest
from channels.testing import WebsocketCommunicator

from demos import firewall, firewall_load
from demos.sandbox import demo_dsn
from portfolio.asgi import application

from .wsjobs import read_until_done

pytestmark = [pytest.mark.timeout(120)]

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
PATH = "/ws/demos/firewall/"


async def connect():
    communicator = WebsocketCommunicator(application, PATH, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def run_job(communicator, params, wait=30):
    """Start a job and read until it is done; return (output items, the done message)."""
    await communicator.send_json_to({"type": "start", "params": params})
    return await read_until_done(communicator, wait)


async def query(communicator, sql):
    items, done = await run_job(communicator, {"action": "query", "sql": sql})
    assert done["status"] == "finished", done
    [result] = items
    assert result["kind"] == "result"
    assert result["sql"] == sql
    return result


async def table_exists(name):
    async with await psycopg.AsyncConnection.connect(demo_dsn()) as conn:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"app.{name}"])
        return (await cur.fetchone())[0]


@pytest.fixture
async def sandbox(demo_firewall):
    """A freshly reset sample schema behind a running firewall."""
    await firewall.reset_sandbox()
    return demo_firewall


# -- straight calls ---------------------------------------------------------------------


async def test_reset_then_select_through_the_firewall(sandbox):
    result = await firewall.run_statement("SELECT * FROM customers ORDER BY id")
    assert result["ok"], result
    assert result["columns"] == ["id", "name", "email", "city", "signed_up"]
    assert result["row_count"] == len(result["rows"]) == 20
    assert result["rows"][0] == ["1", "Ada Lovelace", "ada@example.com", "London", "2023-01-14"]
    assert result["status"] == "SELECT 20"
    assert not result["truncated"]
    assert result["ms"] > 0
    orders = await firewall.run_statement("SELECT count(*) AS n FROM orders")
    assert orders["rows"] == [["30"]]


async def test_reset_restores_rows_and_removes_what_visitors_made(sandbox):
    # A WHERE that names a column passes the guard: the firewall is not a backup.
    wiped = await firewall.run_statement("DELETE FROM orders WHERE id > 0")
    assert wiped["ok"], wiped
    assert wiped["status"] == "DELETE 30"
    made = await firewall.run_statement(
        "CREATE TABLE scratch (x int); CREATE VIEW big_spenders AS SELECT * FROM orders"
    )
    assert made["ok"], made
    assert made["statuses"] == ["CREATE TABLE", "CREATE VIEW"]
    assert await table_exists("scratch")

    summary = await firewall.reset_sandbox()
    assert summary["tables"] == {"customers": 20, "orders": 30}
    assert summary["dropped"] >= 4
    assert not await table_exists("scratch")
    assert not await table_exists("big_spenders")
    again = await firewall.run_statement("SELECT count(*) FROM orders")
    assert again["rows"] == [["30"]]


async def test_the_last_result_with_rows_is_shown_and_every_status_listed(sandbox):
    result = await firewall.run_statement(
        "SELECT 1 AS one; SELECT name FROM customers WHERE id <= 2 ORDER BY id; ANALYZE customers"
    )
    assert result["ok"], result
    assert result["columns"] == ["name"]
    assert result["rows"] == [["Ada Lovelace"], ["Grace Hopper"]]
    assert result["statuses"] == ["SELECT 1", "SELECT 2", "ANALYZE"]
    assert result["status"] == "ANALYZE"


async def test_a_huge_result_is_cut_and_cancelled(sandbox):
    result = await firewall.run_statement(
        # In the select list the series streams row by row (ProjectSet); in FROM it would be
        # materialised first, which can outlast the 5 s statement timeout on a busy machine.
        "SELECT generate_series(1, 10000000) AS g, repeat('x', 50)"
    )
    assert result["ok"], result
    assert len(result["rows"]) == firewall.MAX_ROWS
    assert result["truncated"]
    assert result["row_count"] == firewall.MAX_SCAN_ROWS
    assert "stopped reading" in result["note"]
    assert result["ms"] < 5000  # cancelled, not left to the 5 s statement timeout
    # The firewall and its pool are fine afterwards.
    assert (await firewall.run_statement("SELECT 1"))["rows"] == [["1"]]


async def test_copy_to_the_client_is_refused_plainly(sandbox):
    result = await firewall.run_statement("COPY customers TO STDOUT")
    assert result["ok"] is False
    assert result["blocked"] is False
    assert result["source"] == "console"
    assert result["sqlstate"] == "0A000"
    assert "COPY" in result["message"]
    assert (await firewall.run_statement("SELECT 1"))["rows"] == [["1"]]


async def test_nulls_and_long_values(sandbox):
    result = await firewall.run_statement("SELECT NULL AS nothing, repeat('y', 2000) AS long")
    nothing, long = result["rows"][0]
    assert nothing is None
    assert len(long) == firewall.MAX_CELL_CHARS + 1
    assert long.endswith("…")


async def test_load_test_small_direct_then_through_the_firewall(sandbox):
    reports = []
    before = (await firewall.firewall_stats())["latency"]["count"]
    result = await firewall_load.load_test(queries=200, connections=5, progress=reports.append)
    for figures in (result, result["direct"]):
        assert figures["queries"] == 200
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["p99_ms"] <= figures["max_ms"]
        assert figures["qps"] > 0
        assert figures["seconds"] > 0
        assert sum(count for _, count in figures["histogram"]) == 200
        bounds = [bound for bound, _ in figures["histogram"]]
        assert bounds == sorted(bounds)
    assert result["connections"] == 5
    assert result["added_ms"]["p50"] == pytest.approx(
        result["p50_ms"] - result["direct"]["p50_ms"], abs=0.002
    )
    # Only the firewall's half went through the proxy (200 queries and 5 warm-ups).
    round_trips = (await firewall.firewall_stats())["latency"]["count"] - before
    assert 205 <= round_trips < 300
    assert [r["target"] for r in reports] == sorted(
        (r["target"] for r in reports), key=firewall_load.LOAD_TARGETS.index
    )
    assert [r["done"] for r in reports] == sorted(r["done"] for r in reports)
    assert reports[-1]["done"] == reports[-1]["total"] == 400


async def test_a_second_load_test_waits_for_the_first(sandbox):
    first = asyncio.create_task(firewall_load.load_test(queries=400, connections=4))
    await asyncio.sleep(0)  # let it claim the slot
    reports = []

    def note(item):
        reports.append({**item, "first_done": first.done()})

    second = await firewall_load.load_test(queries=10, connections=1, progress=note)
    assert second["queries"] == 10
    assert reports[0] == {"queued": True, "first_done": False}
    # Its own queries started only once the first test had finished.
    assert all(r["first_done"] for r in reports[1:])
    assert (await first)["queries"] == 400


async def test_a_load_test_waits_only_so_long(sandbox, monkeypatch):
    monkeypatch.setattr(firewall_load, "LOAD_QUEUE_WAIT", 0.2)
    first = asyncio.create_task(firewall_load.load_test(queries=2000, connections=4))
    await asyncio.sleep(0)
    with pytest.raises(firewall_load.LoadTestBusy, match="try again in a minute"):
        await firewall_load.load_test(queries=10, connections=1)
    await first


async def test_missing_sample_tables_are_created_before_the_first_statement(demo_firewall):
    async with await psycopg.AsyncConnection.connect(demo_dsn(), autocommit=True) as conn:
        await conn.execute("DROP TABLE IF EXISTS app.orders, app.customers CASCADE")
    firewall._sandbox_seen_at = float("-inf")  # as in a process that has not looked yet
    result = await firewall.run_statement("SELECT * FROM customers LIMIT 5")
    assert result["ok"], result
    assert len(result["rows"]) == 5
    # Present tables are left alone: what visitors changed stays until a Reset.
    await firewall.run_statement("DELETE FROM orders WHERE status = 'cancelled'")
    firewall._sandbox_seen_at = float("-inf")
    assert await firewall.ensure_sandbox() is None
    left = await firewall.run_statement("SELECT count(*) FROM orders WHERE status = 'cancelled'")
    assert left["rows"] == [["0"]]


async def test_stats_unreachable_is_none(settings):
    from engines.procs import free_port

    settings.FIREWALL_METRICS_PORT = free_port()
    assert await firewall.firewall_stats() is None


def test_sql_checks():
    assert firewall.check_sql("SELECT 1") == "SELECT 1"
    for bad, message in [
        (None, "must be a string"),
        ("   ", "type a statement"),
        ("SELECT 1 --" + "x" * 11_000, "up to 10 KB"),
        ("SELECT '\x00'", "NUL"),
    ]:
        with pytest.raises(ValueError, match=message):
            firewall.check_sql(bad)


# -- through the websocket ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_drop_is_blocked_naming_the_rule_and_the_table_survives(sandbox):
    communicator = await connect()
    result = await query(communicator, "DROP TABLE customers")
    assert result["ok"] is False
    assert result["blocked"] is True
    assert result["sqlstate"] == "42501"
    assert result["rule"] == "drop"
    assert result["source"] == "firewall"
    assert result["message"].startswith('firewall: blocked by rule "drop" (DROP of anything but')
    assert result["message"].endswith("DROP TABLE customers is not allowed")
    assert result["hint"] == "The statement never reached the database."
    assert await table_exists("customers")
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_delete_without_where_is_blocked_even_in_a_cte(sandbox):
    communicator = await connect()
    for sql in [
        "DELETE FROM orders",
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
        "SELECT 1; DELETE FROM orders WHERE 1 = 1",
    ]:
        result = await query(communicator, sql)
        assert result["blocked"], sql
        assert result["rule"] == "delete_without_where", sql
    update = await query(communicator, "UPDATE customers SET email = NULL")
    assert update["rule"] == "update_without_where"
    count = await query(communicator, "SELECT count(*) FROM orders")
    assert count["rows"] == [["30"]]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_drop_inside_a_string_is_just_text(sandbox):
    communicator = await connect()
    result = await query(communicator, "SELECT 'DROP TABLE customers' AS harmless_text")
    assert result["ok"] is True
    assert result["columns"] == ["harmless_text"]
    assert result["rows"] == [["DROP TABLE customers"]]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_postgres_errors_come_back_plainly(sandbox):
    communicator = await connect()
    missing = await query(communicator, "SELECT * FROM no_such_table")
    assert missing["ok"] is False
    assert missing["blocked"] is False
    assert missing["rule"] is None
    assert missing["sqlstate"] == "42P01"
    assert missing["source"] == "postgres"
    assert missing["message"] == 'relation "no_such_table" does not exist'
    assert missing["position"] == 15

    # The guard parses first and fails closed: a syntax error is answered by the proxy,
    # with PostgreSQL's SQLSTATE, and is not a block.
    typo = await query(communicator, "SELEC * FROM customers")
    assert typo["ok"] is False
    assert typo["blocked"] is False
    assert typo["sqlstate"] == "42601"
    assert "syntax error" in typo["message"]

    slow = await query(communicator, "SELECT pg_sleep(10)")
    assert slow["sqlstate"] == "57014"  # the demo role's 5 s statement_timeout
    assert slow["source"] == "postgres"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_bad_params_are_refused_and_the_socket_stays_open(demo_firewall):
    communicator = await connect()
    for params, needle in [
        ({"action": "query"}, 'needs "sql"'),
        ({"action": "query", "sql": "SELECT 1 -- " + "x" * 20_000}, "up to 10 KB"),
        ({"action": "query", "sql": ""}, "type a statement"),
        ({"action": "query", "sql": 42}, "must be a string"),
        ({"action": "rm -rf"}, '"action" must be one of'),
        ({}, '"action" must be one of'),
        ({"action": "load", "queries": 1_000_000}, "takes no queries"),
    ]:
        await communicator.send_json_to({"type": "start", "params": params})
        message = await communicator.receive_json_from(timeout=5)
        assert message["type"] == "error", params
        assert message["code"] == "bad_params", params
        assert needle in message["message"], (params, message)
    result = await query(communicator, "SELECT 1 AS still_here")
    assert result["rows"] == [["1"]]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_reset_through_the_socket(sandbox):
    communicator = await connect()
    items, done = await run_job(communicator, {"action": "reset"})
    assert done["status"] == "finished", done
    [item] = items
    assert item["kind"] == "reset"
    assert item["tables"] == {"customers": 20, "orders": 30}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_watch_streams_the_proxys_counters(sandbox):
    before = await firewall.firewall_stats()
    assert before is not None
    dropped_before = before["guard"]["blocked"].get("drop", 0)
    communicator = await connect()
    await query(communicator, "DROP TABLE orders")
    await query(communicator, "DROP TABLE customers")

    await communicator.send_json_to({"type": "start", "params": {"action": "watch"}})
    snapshots = []
    job = None
    while len(snapshots) < 2:
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == "started":
            job = message["job"]
        elif message["type"] == "output":
            snapshots.extend(message["items"])
    await communicator.send_json_to({"type": "stop", "job": job})
    while (await communicator.receive_json_from(timeout=5))["type"] != "done":
        pass

    first, second = snapshots[:2]
    assert first["kind"] == "stats"
    assert first["at"] < second["at"]
    stats = second["stats"]
    assert stats["guard"]["blocked"]["drop"] >= dropped_before + 2
    assert stats["guard"]["checked"] > before["guard"]["checked"]
    [pool] = stats["pools"]
    assert pool["database"] == "demo"
    assert pool["mode"] == "transaction"
    assert {"active", "idle", "waiting_clients"} <= set(pool)
    assert stats["latency"]["count"] > 0
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_load_through_the_socket_streams_progress_then_percentiles(sandbox):
    communicator = await connect()
    items, done = await run_job(communicator, {"action": "load"}, wait=60)
    assert done["status"] == "finished", done
    progress = [item for item in items if item["kind"] == "progress"]
    [final] = [item for item in items if item["kind"] == "load"]
    assert items[-1] is final
    assert len(progress) >= 2
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    assert progress[-1]["done"] == progress[-1]["total"] == 4000
    assert {p["target"] for p in progress} == {"direct", "firewall"}
    assert final["queries"] == final["direct"]["queries"] == 2000
    assert final["connections"] == 20
    assert 0 < final["p50_ms"] <= final["p95_ms"] <= final["p99_ms"] <= final["max_ms"]
    assert sum(count for _, count in final["histogram"]) == 2000
    assert set(final["added_ms"]) == {"p50", "p95", "p99", "mean"}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_second_load_while_one_runs_is_queued_and_says_so(sandbox):
    running = asyncio.create_task(firewall_load.load_test(queries=2000, connections=10))
    await asyncio.sleep(0)
    communicator = await connect()
    items, done = await run_job(communicator, {"action": "load"}, wait=60)
    assert done["status"] == "finished", done
    assert items[0] == {"kind": "progress", "queued": True}
    assert items[-1]["kind"] == "load"
    await running
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_without_a_sandbox_the_job_fails_with_the_reason(settings, tmp_path):
    settings.PGCLUSTER_DATA_DIR = tmp_path / "never-started"
    communicator = await connect()
    for action in ("query", "reset", "load"):
        params = {"action": action, **({"sql": "SELECT 1"} if action == "query" else {})}
        _, done = await run_job(communicator, params)
        assert done["status"] == "failed", action
        assert "is `make run` running?" in done["message"], action
    await communicator.disconnect()


# -- the page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_renders_and_the_demos_index_links_to_it(client):
    response = client.get("/demos/firewall/")
    assert response.status_code == 200
    html = response.content.decode()
    assert len(re.findall(r"<h1[\s>]", html)) == 1
    assert re.search(r'<meta name="description" content="[^"]{40,}">', html)
    assert 'data-ws="/ws/demos/firewall/"' in html
    assert "DROP TABLE customers" in html
    assert "js/firewall-demo" in html
    assert "<script>" not in html.replace("<script src=", "").lower()  # no inline script
    for rule in ("drop", "delete_without_where", "update_without_where"):
        assert rule in html

    index = client.get("/demos/").content.decode()
    assert 'href="/demos/firewall/"' in index


@pytest.mark.django_db
def test_the_cards_figure_is_the_quantity_the_load_test_shows(client):
    """The project card's load-test figure names the same test and quantities the demo page
    measures: total time for 2,000 queries over 20 connections, and per-query P50, through
    the proxy and direct."""
    from portfolio.models import KeyFeature

    [feature] = KeyFeature.objects.filter(
        project__slug="sql-firewall", text__contains="2,000 queries"
    )
    assert "2,000 queries over 20 connections through the proxy" in feature.text
    assert "P50" in feature.text
    assert "direct" in feature.text
    assert feature.text.startswith(feature.metric)
    assert feature.metric.endswith(" s")
    html = client.get("/demos/firewall/").content.decode()
    assert "2,000 queries over 20 connections, measured on this server" in html
    for label in ("Total time", "p50", "Direct to PostgreSQL", "Through the firewall"):
        assert f">{label}<" in html, label
