"""Every page of the portfolio answers, carries exactly one <h1> and its meta tags, and shows
the seed content; unknown things get a 404 or, for the arsenal, everything with a notice."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.template.loader import render_to_string
from django.utils.html import strip_tags

from portfolio.models import Project, SkillCategory

pytestmark = pytest.mark.django_db


class Outline(HTMLParser):
    """Counts <h1> elements and collects meta tags and elements with the hidden attribute."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.h1 = 0
        self.meta: dict[str, str] = {}
        self.canonical = ""
        self.hidden_categories: set[str] = set()
        self.shown_categories: set[str] = set()
        self.current: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h1":
            self.h1 += 1
        elif tag == "meta" and ("name" in attrs or "property" in attrs):
            self.meta[attrs.get("name") or attrs["property"]] = attrs.get("content", "")
        elif tag == "link" and attrs.get("rel") == "canonical":
            self.canonical = attrs["href"]
        if "data-arsenal-group" in attrs:
            group = self.hidden_categories if "hidden" in attrs else self.shown_categories
            group.add(attrs["data-category"])
        if tag == "a" and attrs.get("aria-current"):
            self.current.append(attrs.get("data-category", attrs.get("href")))


def text_of(response) -> str:
    """The page as a reader sees it: tags gone, entities decoded, whitespace collapsed."""
    import html

    return " ".join(html.unescape(strip_tags(response.content.decode())).split())


def page_urls() -> list[str]:
    urls = ["/", "/arsenal/", "/arsenal/?category=databases", "/about/", "/demos/"]
    return urls + [p.get_absolute_url() for p in Project.objects.listed()]


def test_every_page_has_one_h1_and_its_meta(client):
    for url in page_urls():
        response = client.get(url)
        assert response.status_code == 200, url
        outline = Outline(response.content.decode())
        assert outline.h1 == 1, f"{url} has {outline.h1} <h1>"
        assert outline.meta.get("description"), url
        assert outline.meta.get("og:title"), url
        assert outline.canonical == "http://testserver" + url.split("?")[0], url
        assert outline.meta.get("og:url") == outline.canonical, url


def test_home_shows_profile_featured_building_and_arsenal(client):
    html = text_of(client.get("/"))
    assert "Aryan Mishra" in html
    assert "Backend • Systems • Full Stack Web Applications" in html
    raw = client.get("/").content.decode()
    for project in Project.objects.featured():
        assert project.title in html
        assert f'href="{project.get_absolute_url()}"' in raw
        for feature in project.features.all():
            assert feature.text in html
    assert "Conduit" in html
    assert "Currently building" in html
    for category in SkillCategory.objects.all():
        assert category.name in html


def test_featured_figures_are_on_the_home_page(client):
    html = text_of(client.get("/"))
    for figure in ["0.2–0.5 s", "< 5 µs", "1M+", "4,000+"]:  # noqa: RUF001 - the owner's en dash
        assert figure in html


def test_project_page_shows_features_body_and_demo(client):
    project = Project.objects.get(slug="sql-firewall")
    response = client.get(project.get_absolute_url())
    assert project.body_html in response.content.decode()
    for feature in project.features.all():
        assert feature.text in text_of(response)


def test_unknown_project_is_a_404_with_the_site_template(client):
    response = client.get("/projects/no-such-project/")
    assert response.status_code == 404
    outline = Outline(response.content.decode())
    assert outline.h1 == 1
    assert "Page not found" in response.content.decode()


def test_archived_project_has_no_page(client):
    project = Project.objects.first()
    project.status = Project.Status.ARCHIVED
    project.save()
    assert client.get(project.get_absolute_url()).status_code == 404


def test_arsenal_filter_without_javascript(client):
    outline = Outline(client.get("/arsenal/?category=databases").content.decode())
    others = set(SkillCategory.objects.exclude(slug="databases").values_list("slug", flat=True))
    assert outline.shown_categories == {"databases"}
    assert outline.hidden_categories == others
    assert "databases" in outline.current


def test_unknown_arsenal_category_shows_everything_with_a_notice(client):
    html = client.get("/arsenal/?category=quantum-basketweaving").content.decode()
    outline = Outline(html)
    assert outline.hidden_categories == set()
    assert outline.shown_categories == set(SkillCategory.objects.values_list("slug", flat=True))
    assert 'class="notice"' in html
    assert "quantum-basketweaving" in html


def test_arsenal_notice_escapes_the_category(client):
    html = client.get("/arsenal/", {"category": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_about_and_footer_show_contact_only_when_there_is_some(client):
    """Links and contact details are the owner's to add in the admin; until then the about
    page and the footer show no empty contact block. Once added, both show them."""
    from portfolio.models import Profile, ProfileLink

    profile = Profile.objects.first()  # as seeded: no location, email or links
    profile.links.all().delete()
    profile.location = profile.email = ""
    profile.save()
    html = client.get("/about/").content.decode()
    assert 'aria-label="Contact"' not in html
    assert "profile-links" not in html
    assert "about--contact" not in html  # no empty column kept for it either

    ProfileLink.objects.create(profile=profile, label="GitHub", url="https://github.com/example")
    html = client.get("/about/").content.decode()
    assert 'aria-label="Contact"' in html
    assert html.count('href="https://github.com/example"') == 2  # the block and the footer

    profile.links.all().delete()
    profile.email = "owner@example.com"
    profile.save()
    html = client.get("/about/").content.decode()
    assert 'aria-label="Contact"' in html
    assert 'href="mailto:owner@example.com"' in html
    assert "profile-links" not in html


def test_500_page_stands_alone():
    html = render_to_string("500.html")
    assert Outline(html).h1 == 1
    assert "{%" not in html


def test_healthz(client):
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_demos_index_lists_every_demo(client):
    from demos.registry import DEMOS

    html = client.get("/demos/").content.decode()
    for demo in DEMOS.values():
        assert demo.title in html
    assert 'data-ws="/ws/demos/status/"' in html


class DemoCards(HTMLParser):
    """Per demo card on the demos index: its status pill's state and its process badges."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.status: dict[str, str] = {}
        self.badges: dict[str, list[str]] = {}
        self.card = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article" and "data-demo" in attrs:
            self.card = attrs["data-demo"]
            self.badges[self.card] = []
        elif "data-demo-status" in attrs:
            self.status[self.card] = attrs["data-demo-status"]
        elif "data-process" in attrs:
            self.badges[self.card].append(attrs["data-process"])


def test_demos_index_shows_coming_demos_without_live_badges(client, monkeypatch):
    """A demo not built yet is plainly "coming": no process badges, whose state would stay
    "unknown" forever. A demo that runs shows a badge for every process it needs."""
    from demos.registry import DEMOS, Demo

    # One coming demo for certain, however many of the real ones are built by now.
    unbuilt = Demo("unbuilt", "Not built yet", "Coming later.", ("web", "router"))
    monkeypatch.setitem(DEMOS, unbuilt.slug, unbuilt)

    cards = DemoCards(client.get("/demos/").content.decode())
    assert set(cards.status) == set(DEMOS)
    for demo in DEMOS.values():
        if demo.available:
            assert cards.status[demo.slug] != "coming", demo.slug
            assert cards.badges[demo.slug] == list(demo.processes), demo.slug
        else:
            assert cards.status[demo.slug] == "coming", demo.slug
            assert cards.badges[demo.slug] == [], demo.slug


def test_pages_forbid_inline_scripts(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode()
