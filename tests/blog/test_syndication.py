"""Feeds parse as Atom and RSS and carry only published posts; sitemap.xml lists posts,
tags, projects and pages; robots.txt points at the sitemap and keeps crawlers out of the
admin and the previews."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from blog.models import Post, Tag
from portfolio.models import Project

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def parse(response) -> ET.Element:
    assert response.status_code == 200
    return ET.fromstring(response.content)  # noqa: S314 - our own feed, under test


def test_atom_feed_is_valid_atom_with_full_content(client, make_post, tag):
    post = make_post(title="Atom entry", body="## A\n\n```python\nx = 1\n```\n", tags=[tag])
    response = client.get("/blog/feed/")
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    feed = parse(response)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{required}") is not None, required
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == "http://testserver/blog/feed/"
    entries = {e.findtext(f"{ATOM}title"): e for e in feed.findall(f"{ATOM}entry")}
    entry = entries["Atom entry"]
    assert entry.find(f"{ATOM}link").get("href") == f"http://testserver{post.get_absolute_url()}"
    for required in ("id", "updated", "published"):
        assert entry.findtext(f"{ATOM}{required}"), required
    assert entry.findtext(f"{ATOM}summary") == post.summary
    content = entry.find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert '<div class="highlight">' in content.text
    assert [c.get("term") for c in entry.findall(f"{ATOM}category")] == ["Testing"]


def test_rss_feed_is_valid_rss(client, make_post):
    post = make_post(title="RSS item")
    response = client.get("/blog/feed/rss/")
    assert response.headers["Content-Type"].startswith("application/rss+xml")
    rss = parse(response)
    assert rss.tag == "rss"
    assert rss.get("version") == "2.0"
    channel = rss.find("channel")
    for required in ("title", "link", "description"):
        assert channel.findtext(required), required
    items = {i.findtext("title"): i for i in channel.findall("item")}
    item = items["RSS item"]
    assert item.findtext("link") == f"http://testserver{post.get_absolute_url()}"
    assert item.findtext("pubDate")
    assert item.findtext("description") == post.body_html


def test_tag_feeds_hold_only_that_tags_published_posts(client, make_post, tag):
    tagged = make_post(title="In the tag", tags=[tag])
    make_post(title="Not in the tag")
    make_post(title="Draft in the tag", tags=[tag], status=Post.Status.DRAFT)
    atom = parse(client.get("/blog/tag/testing/feed/"))
    assert [e.findtext(f"{ATOM}title") for e in atom.findall(f"{ATOM}entry")] == [tagged.title]
    rss = parse(client.get("/blog/tag/testing/feed/rss/"))
    assert [i.findtext("title") for i in rss.iter("item")] == [tagged.title]
    assert client.get("/blog/tag/nope/feed/").status_code == 404


def test_sitemap_covers_posts_tags_projects_and_pages(client, make_post, tag):
    post = make_post(tags=[tag])
    draft = make_post(status=Post.Status.DRAFT)
    Tag.objects.create(name="Empty", slug="empty")
    urlset = parse(client.get("/sitemap.xml"))
    locs = {u.findtext(f"{SITEMAP}loc") for u in urlset.findall(f"{SITEMAP}url")}
    base = "http://testserver"
    assert base + post.get_absolute_url() in locs
    assert base + draft.get_absolute_url() not in locs
    assert base + tag.get_absolute_url() in locs
    assert base + "/blog/tag/empty/" not in locs  # no published posts: nothing to index
    for project in Project.objects.listed():
        assert base + project.get_absolute_url() in locs
    for page in ("/", "/arsenal/", "/about/", "/demos/", "/blog/"):
        assert base + page in locs


def test_sitemap_and_feeds_use_site_url_when_set(client, make_post, settings):
    settings.SITE_URL = "https://aryan.example"
    post = make_post()
    locs = {
        u.findtext(f"{SITEMAP}loc") for u in parse(client.get("/sitemap.xml")).iter(f"{SITEMAP}url")
    }
    assert f"https://aryan.example{post.get_absolute_url()}" in locs
    feed = parse(client.get("/blog/feed/"))
    links = [e.find(f"{ATOM}link").get("href") for e in feed.findall(f"{ATOM}entry")]
    assert f"https://aryan.example{post.get_absolute_url()}" in links


def test_robots_txt(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert "User-agent: *" in lines
    assert "Disallow: /admin/" in lines
    assert "Disallow: /blog/preview/" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines
