"""The work-stealing scheduler demo in a real browser: pick a small workload, run it, see
the workers, the steal arrows and the latency histogram drawn, and the comparison shown;
after Run the live picture is on screen, on a phone as on a desktop; and the figures on the
project's card are measured on the page, under the same names."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Locator, Page, expect

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# The card's figures, and what the demo page calls the same quantities.
IDLE_POOL = "Submit-to-start, idle pool"
THROUGHPUT = "Throughput, empty native jobs"
DURATION = r"[\d.]+ (ns|µs|ms|s)"


@contextmanager
def page_at(browser, live_site: str, viewport: dict, **options) -> Iterator[Page]:
    """A page of the given size (the ``page`` fixture's, with its check for script errors)."""
    context = browser.new_context(base_url=live_site, viewport=viewport, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_demo(page: Page) -> None:
    page.goto("/demos/scheduler/")
    expect(page.locator("[data-sd-connection]")).to_have_attribute("data-state", "up")


def in_view(page: Page, locator: Locator, timeout: float = 10) -> dict:
    """Wait until ``locator``'s box lies wholly inside the viewport (a smooth scroll takes a
    moment); return the box, as last seen, for the caller's assertion."""
    height = page.viewport_size["height"]
    deadline = time.monotonic() + timeout
    while True:
        box = locator.bounding_box()
        inside = box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height
        if inside or time.monotonic() > deadline:
            return box
        time.sleep(0.1)


def assert_inside(page: Page, box: dict | None, what: str) -> None:
    height = page.viewport_size["height"]
    assert box is not None, f"{what} is not on the page"
    top, bottom = box["y"], box["y"] + box["height"]
    assert 0 <= top <= bottom <= height, (
        f"{what} is off screen: top {top:.0f}, bottom {bottom:.0f}, viewport 0-{height}"
    )


def stop_run(page: Page) -> None:
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled(timeout=30_000)


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
    expect(page.locator("[data-sd-latency-title]")).to_have_text("Queueing delay under this burst")
    expect(page.locator("[data-sd-throughput] svg .sd-spark__line")).to_be_attached()
    expect(page.locator("[data-sd-table-body] tr")).to_have_count(2)
    expect(page.locator("[data-sd-progress]")).to_have_attribute("value", "40000")

    expect(result.locator("[data-sd-result-line]")).to_contain_text(
        re.compile(
            r"^40,000 native 20 µs jobs \(fork\) on 2 workers in [\d.]+ s: "
            r"throughput .+ jobs/s\. Every job ran"
        )
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


def test_on_a_phone_run_brings_the_live_picture_beside_the_controls(browser, live_site):
    # Reduced motion: the page jumps instead of gliding, and must still land right.
    with page_at(browser, live_site, PHONE, reduced_motion="reduce") as page:
        open_demo(page)
        page.get_by_role("button", name="Run", exact=True).click()  # the default workload
        live = page.locator("[data-sd-live]")
        expect(live).to_have_attribute("data-state", "running")
        picture = page.locator(".sd-figure--workers")
        assert_inside(page, in_view(page, picture), "the workers' picture")
        # The controls stay at hand: Stop is on screen with the picture.
        assert_inside(page, page.get_by_role("button", name="Stop").bounding_box(), "Stop")
        stop_run(page)

        # One column: the live section comes right after the controls, nothing between.
        controls = page.locator(".sd-controls").bounding_box()
        gap = live.bounding_box()["y"] - (controls["y"] + controls["height"])
        assert 0 <= gap < 40, f"{gap:.0f} px between the controls and the live picture"


# One test for the desktop's view and the card's figures: the live site allows a visitor
# three runs in a row (DEMO_HEAVY_RUNS_BURST), and this module makes three.
def test_on_a_desktop_run_is_in_view_and_measures_the_cards_figures(browser, live_site):
    with page_at(browser, live_site, DESKTOP) as page:
        page.goto("/")
        card = page.locator('[data-project="work-stealing-scheduler"]')
        latency = card.locator(".feature", has=page.locator("[data-metric]", has_text="µs"))
        throughput = card.locator(".feature", has=page.locator("[data-metric]", has_text="jobs/s"))
        expect(latency).to_contain_text(re.compile(rf"P50.*{IDLE_POOL}", re.IGNORECASE))
        expect(throughput).to_contain_text(re.compile(THROUGHPUT, re.IGNORECASE))

        open_demo(page)
        # The throughput figure's workload is set up by one button; latency comes with any run.
        page.get_by_role("button", name=re.compile("^Set up .* empty native jobs")).click()
        expect(page.get_by_label("Job kind")).to_have_value("noop")
        expect(page.get_by_label("Submission pattern")).to_have_value("fork")
        page.get_by_role("button", name="Run", exact=True).click()
        # The whole live section comes into view: the picture, the run's histogram and the
        # idle-pool figure beside it, and it stays there as the result appears below.
        live = page.locator("[data-sd-live]")
        assert_inside(page, in_view(page, live), "the live section")
        result = page.locator("[data-sd-result]")
        expect(result).to_be_visible(timeout=60_000)
        for part in (".sd-figure--workers", ".sd-figure--latency", "[data-sd-idle]"):
            assert_inside(page, page.locator(part).bounding_box(), part)

        idle = page.locator("[data-sd-idle]")
        expect(idle.locator("[data-sd-idle-title]")).to_have_text(IDLE_POOL)
        expect(idle.locator("[data-sd-idle-value]")).to_have_text(
            re.compile(rf"^P50 {DURATION} \(hot\) / {DURATION} \(parked\)$")
        )
        expect(idle.locator("[data-sd-idle-detail]")).to_contain_text("hot starts of 2,000 jobs")
        counters = result.locator(".sd-counter")
        expect(counters.filter(has_text=IDLE_POOL).locator("dd")).to_have_text(
            re.compile(rf"^P50 {DURATION} \(hot\)")
        )
        expect(counters.filter(has_text=THROUGHPUT).locator("dd")).to_have_text(
            re.compile(r"^[\d.]+ [kM]? ?jobs/s$")
        )
        expect(result.locator("[data-sd-result-line]")).to_contain_text(
            re.compile(
                r"^1,000,000 empty native jobs \(fork\) on 2 workers in [\d.]+ s: throughput"
            )
        )
