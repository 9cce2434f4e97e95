"""Sitemaps for the blog's posts and tags, plus a small generic one for fixed pages that the
project's URL configuration fills with its own page names."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.db.models import Max, QuerySet
from django.urls import reverse

from .models import Post, Tag


class SiteSitemap(Sitemap):
    """Absolute URLs on ``settings.SITE_URL`` when it is set, else on the request's host."""

    def get_protocol(self, protocol: str | None = None) -> str:
        if settings.SITE_URL:
            return settings.SITE_URL.split("://", 1)[0]
        return super().get_protocol(protocol)

    def get_domain(self, site=None) -> str:
        if settings.SITE_URL:
            return settings.SITE_URL.split("://", 1)[1]
        return super().get_domain(site)


class PostSitemap(SiteSitemap):
    changefreq = "monthly"
    priority = 0.8

    def items(self) -> QuerySet[Post]:
        return Post.objects.published()

    def lastmod(self, post: Post) -> datetime:
        return max(post.updated, post.publish_at)


class TagSitemap(SiteSitemap):
    changefreq = "weekly"
    priority = 0.4

    def items(self) -> QuerySet[Tag]:
        return (
            Tag.objects.filter(posts__in=Post.objects.published())
            .annotate(latest=Max("posts__publish_at"))
            .order_by("name")
        )

    def lastmod(self, tag: Tag) -> datetime:
        return tag.latest


class PagesSitemap(SiteSitemap):
    """Fixed pages given by URL name."""

    changefreq = "weekly"

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def items(self) -> list[str]:
        return self.names

    def location(self, name: str) -> str:
        return reverse(name)
