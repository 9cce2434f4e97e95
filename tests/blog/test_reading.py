"""What a reader gets: the post list and its pages, the post page (contents, series,
related posts, meta tags), tag pages, the year archive, search, the home page's latest
posts and the posts linked from a project's page."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from blog.models import Post, Series, Tag
from blog.views import PAGE_SIZE

pytestmark = pytest.mark.django_db


class Page(HTMLParser):
    """The parts of a page the tests look at: <h1> count, meta tags, links."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.h1 = 0
        self.meta: dict[str, list[str]] = {}
        self.links: list[dict[str, str]] = []
        self.hrefs: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "h1":
            self.h1 += 1
        elif tag == "meta" and ("name" in attrs or "property" in attrs):
            key = attrs.get("name") or attrs["property"]
            self.meta.setdefault(key, []).append(attrs.get("content", ""))
        elif tag == "link":
            self.links.append(attrs)
        elif tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])


def test_every_blog_page_has_one_h1(client, make_post, tag):
    post = make_post(tags=[tag])
    urls = [
        "/blog/", post.get_absolute_url(), tag.get_absolute_url(), "/blog/tags/",
        "/blog/archive/", f"/blog/archive/{post.publish_at.year}/", "/blog/search/",
        "/blog/search/?q=post",
    ]  # fmt: skip
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert Page(response.content.decode()).h1 == 1, url


def test_post_page_meta_tags_canonical_and_feeds(client, make_post, tag):
    post = make_post(title="Meta tags post", summary="What the card says.", tags=[tag])
    page = Page(client.get(post.get_absolute_url()).content.decode())
    assert page.meta["og:title"] == ["Meta tags post"]
    assert page.meta["og:description"] == ["What the card says."]
    assert page.meta["og:type"] == ["article"]
    assert page.meta["og:url"] == [f"http://testserver{post.get_absolute_url()}"]
    assert page.meta["twitter:card"] == ["summary"]
    assert page.meta["article:tag"] == ["Testing"]
    assert page.meta["description"] == ["What the card says."]
    canonical = [link["href"] for link in page.links if link.get("rel") == "canonical"]
    assert canonical == [f"http://testserver{post.get_absolute_url()}"]
    feeds = {link["type"]: link["href"] for link in page.links if link.get("rel") == "alternate"}
    assert feeds == {
        "application/atom+xml": "/blog/feed/",
        "application/rss+xml": "/blog/feed/rss/",
    }


def test_post_page_has_contents_and_highlighted_code(client, make_post):
    post = make_post(body="## Setup\n\n```c\nint x = 1;\n```\n\n## Result\n\nDone.\n")
    content = client.get(post.get_absolute_url()).content.decode()
    assert 'class="post__toc"' in content
    assert 'href="#setup"' in content
    assert 'id="setup"' in content
    assert '<div class="highlight">' in content
    assert f"{post.reading_time} min read" in content


def test_list_is_paginated_newest_first(client, make_post):
    now = timezone.now()
    for i in range(PAGE_SIZE + 2):
        make_post(title=f"Numbered {i:02d}", publish_at=now - timedelta(minutes=i + 1))
    first = client.get("/blog/").content.decode()
    assert "Numbered 00" in first
    assert f"Numbered {PAGE_SIZE - 1:02d}" in first
    assert first.index("Numbered 00") < first.index("Numbered 01")
    assert f"Numbered {PAGE_SIZE:02d}" not in first
    assert 'rel="next" href="?page=2"' in first
    second = client.get("/blog/?page=2").content.decode()
    assert f"Numbered {PAGE_SIZE:02d}" in second
    assert '<link rel="canonical" href="http://testserver/blog/?page=2">' in second
    assert '<link rel="canonical" href="http://testserver/blog/">' in first
    assert client.get("/blog/?page=99").status_code == 404
    assert client.get("/blog/?page=abc").status_code == 404


def test_tag_page_lists_only_its_posts_and_links_its_feeds(client, make_post, tag):
    tagged = make_post(title="Tagged post", tags=[tag])
    other = make_post(title="Untagged post")
    page = client.get(tag.get_absolute_url()).content.decode()
    assert tagged.title in page
    assert other.title not in page
    assert tag.description in page
    assert 'href="/blog/tag/testing/feed/"' in page
    assert client.get("/blog/tag/no-such-tag/").status_code == 404
    assert "Testing" in client.get("/blog/tags/").content.decode()


def test_year_archive(client, make_post):
    old = make_post(title="From long ago", publish_at=timezone.now().replace(year=2019))
    new = make_post(title="From now")
    assert old.title in client.get("/blog/archive/2019/").content.decode()
    assert new.title not in client.get("/blog/archive/2019/").content.decode()
    archive = client.get("/blog/archive/").content.decode()
    assert 'href="/blog/archive/2019/"' in archive
    assert client.get("/blog/archive/1999/").status_code == 404


def test_related_posts_share_tags_most_shared_first(client, make_post):
    a, b, c = (Tag.objects.create(name=n, slug=n) for n in ("alpha", "beta", "gamma"))
    post = make_post(title="Subject", tags=[a, b, c])
    one = make_post(title="Shares one", tags=[a])
    two = make_post(title="Shares two", tags=[a, b])
    make_post(title="Shares none")
    make_post(title="Draft sharing all", tags=[a, b, c], status=Post.Status.DRAFT)
    assert list(post.related()) == [two, one]
    page = client.get(post.get_absolute_url()).content.decode()
    related = page[page.index("Related posts") :]
    assert related.index("Shares two") < related.index("Shares one")
    assert "Shares none" not in related
    assert "Draft sharing all" not in related


def test_series_navigation(client, make_post):
    series = Series.objects.create(title="A trilogy", slug="a-trilogy")
    first = make_post(title="Part one", series=series, series_order=1)
    second = make_post(title="Part two", series=series, series_order=2)
    third = make_post(title="Part three", series=series, series_order=3)
    page = client.get(second.get_absolute_url()).content.decode()
    nav = page[page.index('class="section post__series"') :]
    assert f'rel="prev" href="{first.get_absolute_url()}"' in nav
    assert f'rel="next" href="{third.get_absolute_url()}"' in nav
    assert '<strong aria-current="page">Part two</strong>' in nav
    assert nav.index("Part one") < nav.index("Part two") < nav.index("Part three")


def test_search_finds_by_title_body_and_tag(client, make_post, tag):
    by_title = make_post(title="Quasar-scale pooling", body="Nothing to see.")
    by_body = make_post(title="Plain title", body="The word xylophonic appears once here.")
    by_tag = make_post(title="Tagged for search", body="no match", tags=[tag])
    assert list(Post.objects.published().search("quasar")) == [by_title]
    assert list(Post.objects.published().search("XYLOPHONIC")) == [by_body]
    assert by_tag in Post.objects.published().search("testing")
    assert not Post.objects.published().search("")
    # Every word must match.
    assert not Post.objects.published().search("quasar xylophonic")

    page = client.get("/blog/search/?q=xylophonic").content.decode()
    assert by_body.title in page
    assert by_title.title not in page
    assert 'data-search-count="1"' in page
    assert client.get("/blog/search/?q=").status_code == 200


def test_home_page_shows_the_latest_posts(client, make_post):
    newest = make_post(title="Brand new post", publish_at=timezone.now() - timedelta(seconds=5))
    page = client.get("/").content.decode()
    latest = page[page.index('id="latest-posts"') :]
    assert newest.title in latest
    assert f'href="{newest.get_absolute_url()}"' in latest


def test_project_page_links_posts_tagged_with_the_project(client, make_post):
    from portfolio.models import Project

    project = Project.objects.get(slug="sql-firewall")
    project_tag = Tag.objects.get(slug=project.slug)
    post = make_post(title="More about the firewall", tags=[project_tag])
    unrelated = make_post(title="Not about the firewall")
    page = client.get(project.get_absolute_url()).content.decode()
    posts = page[page.index("Writing about it") :]
    assert f'href="{post.get_absolute_url()}"' in posts
    assert unrelated.title not in posts
