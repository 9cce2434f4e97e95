"""The seed posts: real deep dives with code, tables and headings, loaded idempotently by
`manage.py loadseed` (with `--refresh` overwriting edits), tagged so project pages link them."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from blog import seed
from blog.models import Post, Tag
from portfolio.models import Project

pytestmark = pytest.mark.django_db


def test_seed_posts_are_loaded_and_published(client):
    # The suite's database was seeded by loadseed (tests/conftest.py).
    slugs = {s.slug for s in seed.seed_posts()}
    assert len(slugs) >= 3
    assert set(Post.objects.published().values_list("slug", flat=True)) >= slugs
    for post in Post.objects.filter(slug__in=slugs):
        assert client.get(post.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("path", sorted(seed.SEED_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_each_seed_post_is_a_deep_dive(path: Path):
    post_seed = seed.parse_post(path)
    words = len(re.findall(r"\w+", post_seed.body))
    assert 1000 <= words <= 2600, words
    post = Post.objects.get(slug=post_seed.slug)
    assert post.body_html.count('<div class="highlight">') >= 3
    assert "<table>" in post.body_html
    assert post.body_html.count("<h2") >= 4
    assert post.toc_html
    assert post.reading_time >= 5


def test_project_pages_link_their_seed_posts(client):
    for project_slug in ("sql-firewall", "work-stealing-scheduler", "mark-sweep-gc"):
        project = Project.objects.get(slug=project_slug)
        posts = Post.objects.published().filter(tags__slug=project_slug)
        assert posts, project_slug
        page = client.get(project.get_absolute_url()).content.decode()
        for post in posts:
            assert f'href="{post.get_absolute_url()}"' in page


def test_seed_posts_link_the_live_demos_of_their_projects(client):
    """A reader of a post about a project that runs live on the site ("try it on the live
    demo") gets a link to that demo's page, and the link leads somewhere."""
    from demos.registry import DEMOS

    checked = 0
    for post_seed in seed.seed_posts():
        post = Post.objects.get(slug=post_seed.slug)
        page = client.get(post.get_absolute_url()).content.decode()
        for project in Project.objects.filter(slug__in=post_seed.tags):
            demo = DEMOS.get(project.demo_slug)
            if demo is None or not demo.available:
                continue
            url = demo.get_absolute_url()
            assert f'href="{url}"' in post.body_html, f"{post.slug} does not link {url}"
            assert f'href="{url}"' in page, f"{post.slug}'s page lost the link to {url}"
            assert client.get(url).status_code == 200, url
            checked += 1
    assert checked >= 2  # the firewall's and the scheduler's posts, at least


def test_loadseed_is_idempotent_and_refresh_restores_edits():
    post = Post.objects.get(slug="chase-lev-weak-memory")
    post.body = "Edited in the admin."
    post.save()
    post.tags.clear()

    out = StringIO()
    call_command("loadseed", stdout=out)
    assert "tags=0 series=0 posts=0" in out.getvalue()
    post.refresh_from_db()
    assert post.body == "Edited in the admin."

    call_command("loadseed", "--refresh", stdout=StringIO())
    post.refresh_from_db()
    assert "seq_cst" in post.body
    assert "seq_cst" in post.body_html
    assert set(post.tags.values_list("slug", flat=True)) == {
        "work-stealing-scheduler", "concurrency", "memory-model", "c",
    }  # fmt: skip


def test_loadseed_creates_missing_seed_posts():
    Post.objects.filter(slug="mark-sweep-roots").delete()
    Tag.objects.filter(slug="garbage-collection").delete()
    created = seed.load_blog_seed()
    assert created == {"tags": 1, "series": 0, "posts": 1}
    assert Post.objects.get(slug="mark-sweep-roots").tags.filter(slug="garbage-collection")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter", "no front matter"),
        ("---\ntitle: x\n", "not closed"),
        ("---\ntitle: x\n---\nbody", "lacks date, slug, summary"),
        (
            "---\ntitle: x\nslug: x\nsummary: x\ndate: 2026-01-01\ntags: nope\n---\nb",
            "unknown tags",
        ),
        ("---\njust words\n---\nbody", "without a colon"),
    ],
)
def test_malformed_seed_files_are_named_in_the_error(tmp_path, text, problem):
    path = tmp_path / "broken.md"
    path.write_text(text)
    with pytest.raises(seed.SeedError, match=problem) as excinfo:
        seed.parse_post(path)
    assert "broken.md" in str(excinfo.value)
