"""The SQL firewall demo in a real browser: reset, a blocked DROP with its rule, a SELECT's
rows, the live counters, and the load test's chart."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect


@pytest.fixture
def firewall_page(page, demo_firewall):
    page.goto("/demos/firewall/")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("[data-fw-connection]")).to_have_attribute("data-state", "up")
    return page


def run(page, sql):
    page.get_by_label("SQL statement").fill(sql)
    page.get_by_role("button", name="Run", exact=True).click()


def test_reset_block_select_and_live_counters(firewall_page):
    page = firewall_page
    results = page.locator("[data-fw-results]")

    page.get_by_role("button", name="Reset sample data").click()
    expect(results.locator(".fw-result").first).to_contain_text("Sample data restored")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()

    run(page, "DROP TABLE customers")
    verdict = results.locator('[data-fw-result="blocked"]').first
    expect(verdict).to_contain_text("Blocked by the firewall")
    expect(verdict.locator(".fw-verdict__rule")).to_have_text("drop")
    expect(verdict).to_contain_text("DROP of any object")
    expect(verdict).to_contain_text("42501")

    # Keyboard only: Ctrl+Enter in the console runs it.
    page.get_by_label("SQL statement").fill("SELECT id, name FROM customers ORDER BY id LIMIT 5")
    page.get_by_label("SQL statement").press("Control+Enter")
    table = results.locator('[data-fw-result="rows"]').first.locator("table")
    expect(table.locator("thead th")).to_have_text(["id", "name"])
    expect(table.locator("tbody tr")).to_have_count(5)
    expect(table.locator("tbody tr").first).to_contain_text("Ada Lovelace")

    # The live panel counts the block (the counters arrive once a second).
    panel = page.locator("[data-fw-panel]")
    expect(panel).to_have_attribute("data-state", "up", timeout=10_000)
    drop_count = panel.locator('tr[data-fw-rule="drop"] [data-fw-rule-count]')
    expect(drop_count).to_have_text(re.compile(r"^[1-9][\d,]*$"), timeout=10_000)
    expect(panel.locator('[data-fw-stat="blocked"]')).to_have_text(re.compile(r"^[1-9]"))
    expect(panel.locator('[data-fw-stat="checked"]')).to_have_text(re.compile(r"^[1-9]"))
    expect(panel.locator('[data-fw-stat="active"]')).to_have_text(re.compile(r"^\d+ / \d+$"))


def test_example_chips_and_a_postgres_error(firewall_page):
    page = firewall_page
    results = page.locator("[data-fw-results]")
    page.get_by_role("button", name=re.compile(r"^SELECT 'DROP TABLE customers'")).click()
    allowed = results.locator('[data-fw-result="rows"]').first
    expect(allowed).to_contain_text("DROP TABLE customers")
    expect(allowed.locator("thead th")).to_have_text(["harmless_text"])

    page.get_by_role("button", name=re.compile(r"^WITH gone AS")).click()
    expect(
        results.locator('[data-fw-result="blocked"]').first.locator(".fw-verdict__rule")
    ).to_have_text("delete_without_where")

    run(page, "SELECT * FROM no_such_table")
    error = results.locator('[data-fw-result="error"]').first
    expect(error).to_contain_text("PostgreSQL answered with an error")
    expect(error).to_contain_text("42P01")
    expect(error).to_contain_text('relation "no_such_table" does not exist')


def test_load_test_draws_the_latency_chart(firewall_page):
    page = firewall_page
    page.get_by_role("button", name="Reset sample data").click()
    expect(page.locator("[data-fw-results] .fw-result").first).to_contain_text("restored")
    page.get_by_role("button", name=re.compile(r"^Run 2,000 queries")).click()
    chart = page.locator("[data-fw-chart]")
    expect(chart).to_be_visible(timeout=60_000)
    expect(page.locator("[data-fw-progress]")).to_have_attribute("value", "2000")
    svg = chart.locator("svg[role=img]")
    expect(svg.locator(".fw-chart__bars rect").first).to_be_attached()
    for name in ("p50", "p95", "p99"):
        expect(svg.locator(f".fw-chart__marker--{name} text")).to_contain_text(f"{name} ")
    expect(chart.locator("figcaption")).to_contain_text(re.compile(r"p50 [\d.]+ ms, p95"))
    expect(page.get_by_role("button", name=re.compile(r"^Run 2,000 queries"))).to_be_enabled()
