"""The blog in a real browser: an editor logs in to the admin, writes a post with a code
block, watches the live preview render it, publishes, and finds the post on the home page
and in the feed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "editor"
PASSWORD = "browser-test-password-8d1f"


@pytest.fixture(scope="module")
def editor(live_site, tmp_path_factory) -> tuple[str, str]:
    """A superuser in the live site's database (the one tests/conftest.py's live_site made)."""
    # pytest also links "sitecurrent" to the newest "siteN": count real files once.
    databases = sorted(
        {p.resolve() for p in tmp_path_factory.getbasetemp().glob("site*/site.sqlite3")}
    )
    assert len(databases) == 1, f"expected the live site's one database, found {databases}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{databases[0]}",
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "editor@example.com",
    }
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    return USERNAME, PASSWORD


def test_write_preview_publish_then_read_on_home_page_and_feed(page, editor):
    username, password = editor
    page.goto("/admin/login/?next=/admin/blog/post/add/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page).to_have_url("/admin/blog/post/add/")

    title = "Ring buffers in practice"
    # Typed key by key: the admin fills the slug in on keyup, as for a person typing.
    page.locator("#id_title").press_sequentially(title)
    expect(page.locator("#id_slug")).to_have_value("ring-buffers-in-practice")
    page.fill("#id_summary", "What a ring buffer costs and when it pays.")
    page.fill(
        "#id_body",
        "## The layout\n\nIndices wrap with a mask.\n\n"
        "```c\nsize_t next(size_t i) { return (i + 1) & (SIZE - 1); }\n```\n\n"
        "## The cost\n\nOne AND per step.\n",
    )

    preview = page.frame_locator("iframe.blog-preview__frame")
    expect(preview.locator("h1")).to_have_text(title, timeout=15_000)
    expect(preview.locator(".post__body .highlight")).to_contain_text("return (i + 1)")
    # Highlighted by Pygments: the keyword is its own token.
    expect(preview.locator(".post__body .highlight .k").first).to_have_text("return")
    expect(preview.locator(".post__toc")).to_contain_text("The layout")

    page.select_option("#id_status", "published")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    page.goto("/")
    latest = page.locator("#latest-posts")
    expect(latest.get_by_role("link", name=title)).to_be_visible()
    latest.get_by_role("link", name=title).click()
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator(".post__body .highlight")).to_be_visible()

    feed = page.request.get("/blog/feed/")
    assert feed.ok
    assert f"<title>{title}</title>" in feed.text()
    assert "/blog/ring-buffers-in-practice/" in feed.text()
