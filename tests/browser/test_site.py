"""The site in a real browser: home page, the arsenal's in-place filter, the live status."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_home_then_filter_the_arsenal_in_place(page):
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Aryan Mishra")
    expect(page.get_by_text("Currently building")).to_be_visible()

    page.goto("/arsenal/")
    groups = page.locator("[data-arsenal-group]")
    expect(groups).to_have_count(5)
    page.evaluate("window.__sameDocument = true")  # lost if the click reloaded the page
    page.locator('[data-arsenal-selector] a[data-category="databases"]').click()
    expect(page.locator('[data-arsenal-group][data-category="databases"]')).to_be_visible()
    expect(page.locator('[data-arsenal-group][data-category="languages"]')).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/arsenal/\?category=databases$"))
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator('[data-arsenal-selector] a[data-category="databases"]')).to_have_attribute(
        "aria-current", "true"
    )

    page.locator('[data-arsenal-selector] a[data-category=""]').click()
    expect(page.locator("[data-arsenal-group]:visible")).to_have_count(5)


def test_theme_toggle_persists_across_pages(page):
    page.emulate_media(color_scheme="light")
    page.goto("/about/")
    page.locator("[data-theme-toggle], .theme-toggle").first.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_demos_index_shows_the_stack_status_over_the_websocket(page):
    page.goto("/demos/")
    panel = page.locator("main [data-stack-status]")
    for name in ("web", "worker", "redis"):
        row = panel.locator(f'[data-process-row="{name}"]')
        expect(row).to_have_attribute("data-state", "up", timeout=15_000)
        expect(row).to_contain_text("up")
        expect(row).to_contain_text(re.compile(r"\d+(\.\d+)? ?ms"))
    # The demo whose processes are all up is marked up; demos not built yet stay "coming".
    expect(page.locator("[data-demo-status]").first).to_have_attribute("data-demo-status", "up")
