"""Changing a published post's slug leaves a permanent redirect from every old address."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from blog.models import Post, SlugRedirect

pytestmark = pytest.mark.django_db


def test_slug_change_redirects_with_301(client, make_post):
    post = make_post(slug="first-name")
    post.slug = "second-name"
    post.save()
    response = client.get("/blog/first-name/")
    assert response.status_code == 301
    assert response.headers["Location"] == "/blog/second-name/"
    assert client.get("/blog/second-name/").status_code == 200


def test_every_old_slug_redirects_straight_to_the_current_one(client, make_post):
    post = make_post(slug="one")
    for slug in ("two", "three"):
        post.slug = slug
        post.save()
    for old in ("one", "two"):
        response = client.get(f"/blog/{old}/")
        assert response.status_code == 301
        assert response.headers["Location"] == "/blog/three/"


def test_renaming_back_drops_the_redirect(client, make_post):
    post = make_post(slug="original")
    post.slug = "renamed"
    post.save()
    post.slug = "original"
    post.save()
    assert client.get("/blog/original/").status_code == 200
    assert client.get("/blog/renamed/").status_code == 301
    assert not SlugRedirect.objects.filter(old_slug="original").exists()


def test_draft_slug_changes_leave_no_redirect(client, make_post):
    post = make_post(slug="draft-name", status=Post.Status.DRAFT)
    post.slug = "better-draft-name"
    post.save()
    assert not SlugRedirect.objects.exists()
    assert client.get("/blog/draft-name/").status_code == 404


def test_redirect_to_a_post_no_longer_public_is_404(client, make_post):
    post = make_post(slug="was-public")
    post.slug = "now-elsewhere"
    post.status = Post.Status.DRAFT
    post.save()
    assert client.get("/blog/was-public/").status_code == 404


def test_slugs_of_blog_pages_are_refused():
    post = Post(title="Search", slug="search", summary="s", body="b")
    with pytest.raises(ValidationError) as excinfo:
        post.full_clean()
    assert "slug" in excinfo.value.message_dict
