"""The SQL firewall demo in a real browser: reset, a blocked DROP with its rule, a SELECT's
rows, the live counters, and the load test's chart."""

from __future__ import annotations

import itertools
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
    expect(verdict).to_contain_text("DROP of anything but the session")
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
    expect(page.locator("[data-fw-progress]")).to_have_attribute("value", "4000")
    svg = chart.locator("svg[role=img]")
    expect(svg.locator(".fw-chart__bars--firewall rect").first).to_be_attached()
    expect(svg.locator(".fw-chart__bars--direct rect").first).to_be_attached()
    for name in ("p50", "p95", "p99"):
        expect(svg.locator(f".fw-chart__marker--{name} text")).to_contain_text(f"{name} ")
    expect(chart.locator("figcaption")).to_contain_text(re.compile(r"p50 [\d.]+ ms, p95"))
    expect(page.get_by_role("button", name=re.compile(r"^Run 2,000 queries"))).to_be_enabled()

    # The percentile labels follow their lines left to right and do not overlap.
    boxes = {
        name: svg.locator(f".fw-chart__marker--{name} text").bounding_box()
        for name in ("p50", "p95", "p99")
    }
    lines = {
        name: float(svg.locator(f".fw-chart__marker--{name} line").get_attribute("x1"))
        for name in ("p50", "p95", "p99")
    }
    order = sorted(boxes, key=lambda name: (lines[name], name))
    for left, right in itertools.pairwise(order):
        assert boxes[left]["x"] + boxes[left]["width"] <= boxes[right]["x"] + 0.5, boxes

    # The owner's figure, as the project card words it: total time and per-query latency,
    # through the proxy and direct.
    compare = page.locator("[data-fw-compare]")
    expect(compare).to_be_visible()
    expect(compare.locator(".fw-compare__caption")).to_contain_text(
        "2,000 queries over 20 connections"
    )
    for row in ("direct", "firewall", "added"):
        cells = compare.locator(f'[data-fw-compare-row="{row}"]')
        expect(cells.locator('[data-k="seconds"]')).to_have_text(
            re.compile(r"^[+\u2212]?[\d.]+ s$")
        )
        expect(cells.locator('[data-k="p50"]')).to_have_text(re.compile(r"^[+\u2212]?[\d.]+ ms$"))


def drop_sample_tables():
    import psycopg

    from demos.sandbox import demo_dsn

    with psycopg.connect(demo_dsn(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS app.orders, app.customers CASCADE")


def test_the_suggested_query_works_on_a_fresh_start(firewall_page):
    page = firewall_page
    drop_sample_tables()  # as a freshly made demo database has them: not at all
    page.get_by_role("button", name="Run", exact=True).click()  # the pre-filled query
    result = page.locator("[data-fw-results] .fw-result").first
    expect(result).to_have_attribute("data-fw-result", "rows")
    expect(result.locator("tbody tr")).to_have_count(5)
    expect(result).to_contain_text("Ada Lovelace")


def test_other_open_tabs_do_not_lock_the_visitor_out(browser, live_site, demo_firewall):
    # On a phone, where the load test's results must also fit the screen's width.
    context = browser.new_context(base_url=live_site, viewport={"width": 390, "height": 844})
    errors: list[str] = []
    tabs = []
    for path in ("/", "/blog/", "/about/"):
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(path)
        tabs.append(tab)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/demos/firewall/")
    expect(page.locator("[data-fw-connection]")).to_have_attribute("data-state", "up")
    expect(page.locator("[data-fw-panel]")).to_have_attribute("data-state", "up", timeout=10_000)

    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("[data-fw-results] .fw-result").first).to_have_attribute(
        "data-fw-result", "rows"
    )
    page.get_by_role("button", name=re.compile(r"^Run 2,000 queries")).click()
    expect(page.locator("[data-fw-compare]")).to_be_visible(timeout=60_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # wide tables scroll
    # Every tab's footer still shows the stack, live.
    for tab in [*tabs, page]:
        footer = tab.locator("footer [data-stack-status]")
        expect(footer).to_have_attribute("data-connection", "live", timeout=10_000)
        expect(footer.locator('[data-process-row="web"]')).to_have_attribute("data-state", "up")
    context.close()
    assert not errors


# Resolves once the page has stopped scrolling (a smooth scroll takes a few frames).
SETTLED = """() => new Promise((done) => {
  let last = -1;
  const tick = () => {
    if (window.scrollY === last) done(true);
    else { last = window.scrollY; setTimeout(tick, 150); }
  };
  tick();
})"""


def settle_scrolling(page) -> None:
    page.evaluate(SETTLED)


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and 0 <= box["y"] < height - 40


@pytest.mark.parametrize(
    "viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}], ids=str
)
def test_results_are_brought_into_view(browser, live_site, demo_firewall, viewport):
    context = browser.new_context(base_url=live_site, viewport=viewport)
    page = context.new_page()
    page.goto("/demos/firewall/")
    expect(page.locator("[data-fw-connection]")).to_have_attribute("data-state", "up")
    run = page.get_by_role("button", name="Run", exact=True)
    run.scroll_into_view_if_needed()
    run.click()
    first = page.locator("[data-fw-results] .fw-result").first
    expect(first).to_have_attribute("data-fw-result", "rows")
    settle_scrolling(page)
    assert in_view(page, first), first.bounding_box()

    # An example: the page does not jump up to the console; the verdict comes into view.
    chip = page.get_by_role("button", name=re.compile(r"^DROP TABLE customers"))
    chip.scroll_into_view_if_needed()
    before = page.evaluate("window.scrollY")
    chip.click()
    verdict = page.locator('[data-fw-results] .fw-result[data-fw-result="blocked"]').first
    expect(verdict).to_be_attached()
    settle_scrolling(page)
    assert page.evaluate("window.scrollY") >= before
    assert in_view(page, verdict), verdict.bounding_box()
    context.close()
