"""The seed content and its loader: idempotent, refreshable, and saying what the site needs.

The suite's conftest seeds the test database once per session, so tests that need to see rows
being created start by emptying the portfolio tables (rolled back after each test).
"""

# The figures are typeset: their en dashes (as in 0.2-0.5 s) are meant.
# ruff: noqa: RUF001

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from demos.registry import DEMOS
from portfolio import seed
from portfolio.models import KeyFeature, Profile, ProfileLink, Project, Skill, SkillCategory

HEADLINE = "Backend • Systems • Full Stack Web Applications"
FEATURED_SLUGS = ["sql-firewall", "work-stealing-scheduler", "clip-worker", "mark-sweep-gc"]
FIGURES = ["0.2–0.5 s", "2,000 queries", "20 connections", "< 5 µs", "1M+", "4,000+"]


def db_counts() -> dict[str, int]:
    return {
        "profiles": Profile.objects.count(),
        "links": ProfileLink.objects.count(),
        "categories": SkillCategory.objects.count(),
        "skills": Skill.objects.count(),
        "projects": Project.objects.count(),
        "features": KeyFeature.objects.count(),
        "tech": Project.tech.through.objects.count(),
    }


def empty_portfolio() -> None:
    """Delete every portfolio row, children first (skills protect their categories)."""
    Project.objects.all().delete()
    Skill.objects.all().delete()
    SkillCategory.objects.all().delete()
    Profile.objects.all().delete()
    assert not any(db_counts().values())


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("loadseed", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_loader_is_idempotent():
    empty_portfolio()
    first = seed.load_seed()
    after_first = db_counts()
    assert all(first.values()), first
    for kind, count in first.items():
        assert after_first[kind] == count

    second = seed.load_seed()

    assert second == dict.fromkeys(first, 0)
    assert db_counts() == after_first


@pytest.mark.django_db
def test_no_profile_links_are_seeded():
    empty_portfolio()
    seed.load_seed()
    assert ProfileLink.objects.count() == 0


@pytest.mark.django_db
def test_rerun_keeps_admin_edits_and_refresh_restores_them():
    seed.load_seed()
    profile = Profile.objects.get(name="Aryan Mishra")
    profile.headline = "Edited in the admin"
    profile.save()
    feature = KeyFeature.objects.get(project__slug="sql-firewall", order=1)
    feature.text = "Edited feature"
    feature.save()
    KeyFeature.objects.create(project=feature.project, order=99, text="Added in the admin")

    run_command()
    assert Profile.objects.get(pk=profile.pk).headline == "Edited in the admin"
    assert KeyFeature.objects.get(pk=feature.pk).text == "Edited feature"

    output = run_command("--refresh")

    assert Profile.objects.get(pk=profile.pk).headline == HEADLINE
    firewall = seed.PROJECTS[0]
    assert list(
        Project.objects.get(slug="sql-firewall").features.values_list("order", "text", "metric")
    ) == [(n, f.text, f.metric) for n, f in enumerate(firewall.features, start=1)]
    assert Profile.objects.count() == 1
    assert output.startswith("Seed refreshed; created profiles=0")
    assert len(output.strip().splitlines()) == 1
    assert run_command("--verbosity", "0") == ""


@pytest.mark.django_db
def test_refresh_restores_tech_and_recreates_deleted_rows():
    seed.load_seed()
    Project.objects.get(slug="clip-worker").tech.clear()
    Project.objects.get(slug="conduit").delete()

    created = seed.load_seed(refresh=True)

    assert created["projects"] == 1
    assert created["features"] == len(seed.PROJECTS[-1].features)
    assert set(Project.objects.get(slug="clip-worker").tech.values_list("name", flat=True)) == {
        "Python",
        "Django",
        "Celery",
        "Redis",
        "WebSockets",
        "FFmpeg",
        "yt-dlp",
    }


@pytest.mark.django_db
def test_profile_content():
    seed.load_seed()
    profile = Profile.objects.get()
    assert profile.name == "Aryan Mishra"
    assert profile.headline == HEADLINE
    assert profile.bio_html.count("<p>") == 2
    assert profile.email == ""
    assert profile.location == ""


@pytest.mark.django_db
def test_projects_content():
    seed.load_seed()
    featured = list(Project.objects.featured())
    assert [p.slug for p in featured] == FEATURED_SLUGS
    assert [p.order for p in featured] == [1, 2, 3, 4]
    assert [p.slug for p in Project.objects.building()] == ["conduit"]

    for project in Project.objects.all():
        assert project.demo_slug in DEMOS, project.slug
        assert project.summary, project.slug
        assert project.tagline, project.slug
        assert project.body_html, project.slug
        assert "\n" not in project.summary.strip(), project.slug
        assert project.tech.exists(), project.slug
    for project in featured:
        assert project.features.count() >= 3, project.slug
        assert "<h2" in project.body_html, project.slug

    features = " ".join(f"{f.text} {f.metric}" for f in KeyFeature.objects.all())
    for figure in FIGURES:
        assert figure in features, figure
    metrics = set(KeyFeature.objects.exclude(metric="").values_list("metric", flat=True))
    assert {"0.2–0.5 s", "< 5 µs P50", "1M+ jobs/s", "4,000+ jobs"} <= metrics


@pytest.mark.django_db
def test_arsenal_content():
    seed.load_seed()
    categories = list(SkillCategory.objects.all())
    assert [c.slug for c in categories] == [
        "languages",
        "databases",
        "backend-distributed",
        "systems",
        "tools",
    ]
    assert categories[2].name == "Backend & Distributed Systems"
    for category in categories:
        assert 5 <= category.skills.count() <= 9, category.slug
        assert not category.skills.filter(note=""), category.slug


def test_every_tech_tag_is_in_the_arsenal():
    seed.check_content()  # raises on an unknown tag
    arsenal = {skill.name for category in seed.ARSENAL for skill in category.skills}
    assert all(set(project.tech) <= arsenal for project in seed.PROJECTS)


@pytest.mark.django_db
def test_seeded_rows_pass_model_validation():
    seed.load_seed()
    for model in (Profile, SkillCategory, Skill, Project, KeyFeature):
        for obj in model.objects.all():
            obj.full_clean()
