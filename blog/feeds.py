"""Atom and RSS feeds of the published posts, site-wide and per tag, full content included.

Only :meth:`PostQuerySet.published` posts appear, so a scheduled post enters the feeds
when its time comes, and a draft never does.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from .models import Post, Tag

FEED_SIZE = 20


def site_title() -> str:
    from django.apps import apps

    # The blog does not depend on the portfolio app; it uses its profile when present.
    if apps.is_installed("portfolio"):
        profile = apps.get_model("portfolio", "Profile").objects.first()
        if profile:
            return profile.name
    return "Blog"


class _PostFeed(Feed):
    feed_type = Atom1Feed

    def _absolute(self, path: str) -> str:
        if settings.SITE_URL:
            return settings.SITE_URL + path
        # Relative: the syndication framework prefixes the request's host.
        return path

    def item_title(self, item: Post) -> str:
        return item.title

    def item_description(self, item: Post) -> str:
        return item.body_html

    def item_link(self, item: Post) -> str:
        return self._absolute(item.get_absolute_url())

    def item_pubdate(self, item: Post) -> datetime:
        return item.publish_at

    def item_updateddate(self, item: Post) -> datetime:
        return max(item.updated, item.publish_at)

    def item_categories(self, item: Post) -> list[str]:
        return [tag.name for tag in item.tags.all()]

    def item_extra_kwargs(self, item: Post) -> dict:
        return {"summary": item.summary}


class _Atom(Atom1Feed):
    """Atom with the post's summary in <summary> and the full HTML in <content>."""

    def add_item_elements(self, handler, item) -> None:
        summary, item["description"] = item["description"], item.get("summary")
        super().add_item_elements(handler, item)
        handler.addQuickElement("content", summary, {"type": "html"})


class _Rss(Rss201rev2Feed):
    pass


class LatestPostsAtom(_PostFeed):
    """The newest published posts."""

    feed_type = _Atom

    def title(self) -> str:
        return f"{site_title()} — blog"

    def subtitle(self) -> str:
        return "Posts on databases, concurrency and the systems behind this site."

    description = subtitle

    def link(self) -> str:
        return self._absolute(reverse("blog:list"))

    def feed_url(self) -> str:
        return self._absolute(reverse("blog:feed"))

    def items(self) -> QuerySet[Post]:
        return Post.objects.published().prefetch_related("tags")[:FEED_SIZE]


class LatestPostsRss(LatestPostsAtom):
    feed_type = _Rss

    def feed_url(self) -> str:
        return self._absolute(reverse("blog:feed_rss"))


class TagPostsAtom(_PostFeed):
    """The newest published posts with one tag."""

    feed_type = _Atom

    def get_object(self, request: HttpRequest, slug: str) -> Tag:
        return get_object_or_404(Tag, slug=slug)

    def title(self, tag: Tag) -> str:
        return f"{site_title()} — posts tagged {tag.name}"

    def subtitle(self, tag: Tag) -> str:
        return tag.description or f"Posts tagged {tag.name}."

    description = subtitle

    def link(self, tag: Tag) -> str:
        return self._absolute(tag.get_absolute_url())

    def feed_url(self, tag: Tag) -> str:
        return self._absolute(reverse("blog:tag_feed", kwargs={"slug": tag.slug}))

    def items(self, tag: Tag) -> QuerySet[Post]:
        return Post.objects.published().filter(tags=tag).prefetch_related("tags")[:FEED_SIZE]


class TagPostsRss(TagPostsAtom):
    feed_type = _Rss

    def feed_url(self, tag: Tag) -> str:
        return self._absolute(reverse("blog:tag_feed_rss", kwargs={"slug": tag.slug}))
