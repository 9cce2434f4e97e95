"""The work-stealing scheduler demo in a real browser: pick a small workload, run it, see
the workers, the steal arrows and the latency histogram drawn, and the comparison shown."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_run_a_small_workload_and_see_it_drawn(page):
    page.goto("/demos/scheduler/")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("[data-sd-connection]")).to_have_attribute("data-state", "up")

    page.get_by_label("Workers", exact=True).select_option("2")
    page.get_by_label("Job kind").select_option("spin")
    expect(page.locator("[data-sd-kind-help]")).to_contain_text("spin for 20 µs")
    page.get_by_label("Submission pattern").select_option("fork")
    expect(page.locator("[data-sd-pattern-help]")).to_contain_text("must steal")
    page.get_by_label("Jobs", exact=True).fill("40000")
    page.get_by_role("button", name="Run", exact=True).click()

    workers = page.locator("[data-sd-workers] svg[role=img]")
    expect(workers.locator(".sd-worker")).to_have_count(2)
    expect(workers.locator(".sd-arrow")).to_have_count(2)  # one each way
    result = page.locator("[data-sd-result]")
    expect(result).to_be_visible(timeout=60_000)
    expect(page.locator("[data-sd-live]")).to_have_attribute("data-state", "done")

    # After the run the arrows stand for all its steals: in "fork" the idle worker steals.
    stolen = workers.locator('.sd-arrow:not([data-total="0"])')
    expect(stolen).not_to_have_count(0)
    expect(workers.locator("desc")).to_contain_text("jobs stolen in all")
    expect(page.locator("[data-sd-latency] svg .sd-hist__bar").first).to_be_attached()
    expect(page.locator("[data-sd-latency] svg desc")).to_contain_text("Hot starts")
    expect(page.locator("[data-sd-throughput] svg .sd-spark__line")).to_be_attached()
    expect(page.locator("[data-sd-table-body] tr")).to_have_count(2)
    expect(page.locator("[data-sd-progress]")).to_have_attribute("value", "40000")

    expect(result.locator("[data-sd-result-line]")).to_contain_text(
        re.compile(r"^40,000 spin jobs \(fork\) on 2 workers in [\d.]+ s: .+/s\. Every job ran")
    )
    expect(result.locator(".sd-compare__bar")).to_have_count(2)
    expect(result.locator("[data-sd-ratio]")).to_contain_text(
        re.compile(r"20,000 Python jobs, 2 threads each: the scheduler (was|reached) [\d.]+\u00d7")
    )
    expect(page.locator("[data-sd-state]")).to_contain_text("ThreadPoolExecutor")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()

    # Junk from the form is refused on the page, before it is sent.
    page.get_by_label("Jobs", exact=True).fill("0")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("[data-sd-state]")).to_contain_text("Jobs must be a whole number")
