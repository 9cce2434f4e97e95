"""Helpers for the blog tests: posts in each state of their life."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from blog.models import Post, Tag


@pytest.fixture
def make_post(db):
    """Create a post; published and dated an hour ago unless told otherwise."""
    counter = iter(range(1, 10_000))

    def make(**fields) -> Post:
        n = next(counter)
        tags = fields.pop("tags", [])
        fields.setdefault("title", f"Test post {n}")
        fields.setdefault("slug", f"test-post-{n}")
        fields.setdefault("summary", f"Summary of test post {n}.")
        fields.setdefault("body", f"## First\n\nBody of test post {n}.\n\n## Second\n\nMore.\n")
        fields.setdefault("status", Post.Status.PUBLISHED)
        fields.setdefault("publish_at", timezone.now() - timedelta(hours=1))
        post = Post.objects.create(**fields)
        post.tags.set(tags)
        return post

    return make


@pytest.fixture
def tag(db) -> Tag:
    return Tag.objects.create(name="Testing", slug="testing", description="Posts about tests.")


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        "editor", password="correct horse battery", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client
