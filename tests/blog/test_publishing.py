"""Drafts and scheduled posts stay private everywhere a reader or a crawler looks (pages,
feeds, sitemap, search, home page) and are visible to staff through the preview URL; a
scheduled post appears by itself once its time has come."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from blog.models import Post

pytestmark = pytest.mark.django_db

PUBLIC_LISTINGS = ["/", "/blog/", "/blog/feed/", "/blog/feed/rss/", "/sitemap.xml"]


@pytest.fixture
def hidden_posts(make_post, tag):
    draft = make_post(title="Unfinished draft zebrafish", status=Post.Status.DRAFT, tags=[tag])
    scheduled = make_post(
        title="Scheduled announcement quokka",
        publish_at=timezone.now() + timedelta(days=2),
        tags=[tag],
    )
    return draft, scheduled


def test_published_queryset_holds_only_live_posts(make_post, hidden_posts):
    live = make_post(title="Live one")
    published = set(Post.objects.published())
    assert live in published
    assert not set(hidden_posts) & published
    assert live.is_live
    assert not any(post.is_live for post in hidden_posts)


@pytest.mark.parametrize("url", PUBLIC_LISTINGS)
def test_hidden_posts_appear_in_no_public_listing(client, hidden_posts, url):
    content = client.get(url).content.decode()
    for post in hidden_posts:
        assert post.title not in content
        assert post.get_absolute_url() not in content


def test_hidden_posts_are_404_and_absent_from_tag_pages_feeds_and_search(client, hidden_posts, tag):
    for post in hidden_posts:
        assert client.get(post.get_absolute_url()).status_code == 404
    for url in (
        tag.get_absolute_url(),
        "/blog/tag/testing/feed/",
        "/blog/tag/testing/feed/rss/",
        "/blog/search/?q=zebrafish",
        "/blog/search/?q=quokka",
        f"/blog/archive/{timezone.now().year}/",
    ):
        content = client.get(url).content.decode()
        for post in hidden_posts:
            assert post.title not in content
            assert post.get_absolute_url() not in content


def test_staff_preview_shows_drafts_and_scheduled_posts_noindex_and_uncached(
    staff_client, hidden_posts
):
    for post in hidden_posts:
        response = staff_client.get(post.get_preview_url())
        assert response.status_code == 200
        assert post.title in response.content.decode()
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()
        assert "no-cache" in response.headers["Cache-Control"]
        assert "private" in response.headers["Cache-Control"]
    draft, scheduled = hidden_posts
    assert "a draft, visible only to staff" in staff_client.get(draft.get_preview_url()).text
    assert "scheduled for" in staff_client.get(scheduled.get_preview_url()).text


def test_preview_is_refused_to_visitors_and_non_staff(client, django_user_model, hidden_posts):
    draft, _ = hidden_posts
    response = client.get(draft.get_preview_url())
    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]
    client.force_login(django_user_model.objects.create_user("reader", password="x-y-z-w-1"))
    response = client.get(draft.get_preview_url())
    assert response.status_code == 302
    assert draft.title not in response.content.decode()


def test_public_post_pages_are_indexable(client, make_post):
    post = make_post()
    response = client.get(post.get_absolute_url())
    assert "X-Robots-Tag" not in response.headers
    assert 'name="robots"' not in response.content.decode()


def test_scheduled_post_appears_once_its_time_passes(client, make_post, monkeypatch):
    publish_at = timezone.now() + timedelta(days=2)
    post = make_post(title="Time travelling post", publish_at=publish_at)
    assert client.get(post.get_absolute_url()).status_code == 404
    assert post.title not in client.get("/blog/feed/").content.decode()

    later = publish_at + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert client.get(post.get_absolute_url()).status_code == 200
    assert post.title in client.get("/blog/").content.decode()
    assert post.title in client.get("/blog/feed/").content.decode()
    assert post.get_absolute_url() in client.get("/sitemap.xml").content.decode()
    assert post.title in client.get("/").content.decode()
