"""The seed content and its loader: idempotent, refreshable, and saying what the site needs;
the seed files checked on reading, with errors naming the file and the field.

The suite's conftest seeds the test database once per session, so tests that need to see rows
being created start by emptying the portfolio tables (rolled back after each test).
"""

# The figures are typeset: their en dashes (as in 0.2-0.5 s) are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

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
    content = seed.read_content()  # raises on an unknown tag
    arsenal = {skill.name for category in content.arsenal for skill in category.skills}
    assert all(set(project.tech) <= arsenal for project in content.projects)


@pytest.mark.django_db
def test_seeded_rows_pass_model_validation():
    seed.load_seed()
    for model in (Profile, SkillCategory, Skill, Project, KeyFeature):
        for obj in model.objects.all():
            obj.full_clean()


# -- the seed files -------------------------------------------------------------------------


def test_the_content_is_read_from_the_data_files():
    content = seed.read_content()
    assert [p.slug for p in content.projects] == [*FEATURED_SLUGS, "conduit"]
    assert {p.stem for p in (seed.SEED_DIR / "projects").glob("*.md")} == {
        p.slug for p in content.projects
    }
    firewall = content.projects[0]
    assert firewall.body.startswith("## The problem\n")
    assert firewall.body.endswith("`bench/`.\n")
    assert firewall.features[0].metric == "0.2–0.5 s"
    # A wrapped one-line value is joined with single spaces, typeset characters kept.
    assert firewall.features[0].text.startswith(
        "0.2–0.5 s for 2,000 queries over 20 connections through the proxy, 1.7–3 ms per query"
    )
    assert content.profile.bio.startswith("I'm a backend and systems engineer.")
    assert content.profile.bio.endswith("the numbers.\n")


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """A copy of the seed files to break."""
    return shutil.copytree(seed.SEED_DIR, tmp_path / "seed")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


CONDUIT = "projects/conduit.md"
BAD_SEEDS = {
    "missing title": (
        CONDUIT,
        'title = "Conduit"\n',
        "",
        'projects/conduit.md: missing key "title"',
    ),
    "unknown demo": (
        CONDUIT,
        'demo_slug = "router"',
        'demo_slug = "routr"',
        'projects/conduit.md: demo_slug "routr" is not a demo of demos.registry; '
        'did you mean "router"?',
    ),
    "bad status": (
        CONDUIT,
        'status = "building"',
        'status = "wip"',
        'projects/conduit.md: status "wip" is not one of featured, building, archived',
    ),
    "misspelt status": (
        CONDUIT,
        'status = "building"',
        'status = "buildng"',
        'projects/conduit.md: status "buildng" is not one of featured, building, archived; '
        'did you mean "building"?',
    ),
    "unknown key": (
        CONDUIT,
        "tagline =",
        "tagilne =",
        'projects/conduit.md: unknown key "tagilne"; did you mean "tagline"?',
    ),
    "unknown tech": (
        CONDUIT,
        '"Sharding"',
        '"Shardng"',
        'projects/conduit.md: tech "Shardng" is not a skill in arsenal.toml; '
        'did you mean "Sharding"?',
    ),
    "order as text": (
        CONDUIT,
        "order = 5",
        'order = "5"',
        "projects/conduit.md: \"order\" must be a whole number, not '5'",
    ),
    "misspelt feature key": (
        CONDUIT,
        'text = "Parses each statement',
        'txt = "Parses each statement',
        'projects/conduit.md, feature 1: unknown key "txt"; did you mean "text"?',
    ),
    "feature without text": (
        CONDUIT,
        'text = "Parses each statement to find its shard key before routing it."',
        'metric = "1 key"',
        'projects/conduit.md, feature 1: missing key "text"',
    ),
    "metric too long": (
        "projects/work-stealing-scheduler.md",
        'metric = "< 5 µs P50"',
        f'metric = "{"µ" * 61}"',
        'projects/work-stealing-scheduler.md, feature 1: "metric" is 61 characters long, '
        "at most 60 fit",
    ),
    "wrapped line without backslashes": (
        CONDUIT,
        "moves only the keys that \\\n",
        "moves only the keys that\n",
        'projects/conduit.md, feature 2: "text" must be one line',
    ),
    "front matter not closed": (
        CONDUIT,
        "\n+++\n",
        "\n++\n",
        "projects/conduit.md: the front matter is not closed by a +++ line",
    ),
    "broken TOML": (
        CONDUIT,
        'title = "Conduit"',
        "title = Conduit",
        "projects/conduit.md: not valid TOML: Invalid value (at line 2, column 9)",
    ),
    "profile without headline": (
        "profile.md",
        "headline =",
        "headlines =",
        'profile.md: unknown key "headlines"; did you mean "headline"?',
    ),
    "skill without name": (
        "arsenal.toml",
        '{ name = "Git", note',
        "{ note",
        'arsenal.toml, category "tools", skill 1: missing key "name"',
    ),
    "skill listed twice": (
        "arsenal.toml",
        '{ name = "Git",',
        '{ name = "Python",',
        'arsenal.toml, category "tools", skill 1: skill "Python" is already in "languages"',
    ),
    "category slug": (
        "arsenal.toml",
        'slug = "tools"',
        'slug = "the tools"',
        'arsenal.toml, category 5: slug "the tools" is not a slug',
    ),
}


@pytest.mark.parametrize(("name", "old", "new", "message"), BAD_SEEDS.values(), ids=BAD_SEEDS)
def test_bad_seed_files_are_named_with_the_field(seed_dir, name, old, new, message):
    edit(seed_dir / name, old, new)
    with pytest.raises(seed.SeedError) as excinfo:
        seed.read_content(seed_dir)
    assert str(excinfo.value).startswith(message)


@pytest.mark.django_db
def test_bad_seed_files_write_nothing(seed_dir):
    empty_portfolio()
    edit(seed_dir / CONDUIT, 'status = "building"', 'status = "wip"')
    with pytest.raises(seed.SeedError, match=r"^projects/conduit\.md: status"):
        seed.load_seed(seed_dir=seed_dir)
    assert not any(db_counts().values())
