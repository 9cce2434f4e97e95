"""The site's starting content, read from ``portfolio/seed/``, and the loader that puts it in
the database.

A fresh database (a new deployment, a developer's laptop, the test suite) would otherwise
show an empty site until someone typed everything into the admin. The content lives in data
files, reviewed like code, and :func:`load_seed` writes it idempotently: it creates what is
missing and leaves every existing row alone, so it is safe to run on every deploy without
undoing edits made in the admin. ``refresh=True`` is the deliberate opposite: seeded rows are
overwritten with the files' values.

The files, as the blog keeps its posts (:mod:`blog.seed`), except that front matter is TOML
between ``+++`` lines:

- ``profile.md``: ``name`` and ``headline``; the markdown below the front matter is the bio.
- ``arsenal.toml``: ``[[categories]]`` with ``name``, ``slug``, ``description`` and
  ``skills = [{ name = ..., note = ... }, ...]``. A category's and a skill's order on the page
  is its position in the file.
- ``projects/<slug>.md``: one file per project, its slug the file's name. Front matter:
  ``title``, ``status`` (featured, building or archived), ``order``, ``summary``, and
  optionally ``tagline``, ``demo_slug`` (a demo of :data:`demos.registry.DEMOS`), ``tech``
  (skill names from the arsenal) and ``[[features]]`` tables of ``text`` and optional
  ``metric``, numbered from 1 in the order given. The markdown below is the project page.

One-line fields stay one line: wrap a long one as a TOML multi-line string whose lines end
with a backslash, which joins them. Everything is checked before anything is written: a
missing or unknown key, a wrong type, a bad status, an unknown demo or skill, or a value
longer than its column raises :class:`SeedError` naming the file and the field.

Rows are matched on natural keys, never on primary keys: the profile by name, categories and
projects by slug, skills by name, key features by (project, order).

No :class:`~portfolio.models.ProfileLink` rows are seeded, and the profile's location and
email stay blank: links and contact details are the owner's to add in the admin, and a
made-up URL on a public page is worse than none.
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.core.validators import slug_re
from django.db import models, transaction

from demos.registry import DEMOS

from .models import KeyFeature, Profile, Project, Skill, SkillCategory

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=models.Model)

SEED_DIR = Path(__file__).resolve().parent / "seed"


class SeedError(ValueError):
    """The seed data is malformed; the message names the file and the field."""


# ---------------------------------------------------------------------------
# The shape of the content
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileSeed:
    name: str
    headline: str
    bio: str


@dataclass(frozen=True)
class SkillSeed:
    name: str
    note: str


@dataclass(frozen=True)
class CategorySeed:
    """A category of the arsenal; its order on the page is its position in ``arsenal.toml``."""

    name: str
    slug: str
    description: str
    skills: tuple[SkillSeed, ...]


@dataclass(frozen=True)
class FeatureSeed:
    text: str
    metric: str = ""


@dataclass(frozen=True)
class ProjectSeed:
    """A project; ``tech`` names skills of the arsenal, features are ordered from 1."""

    title: str
    slug: str
    status: str
    order: int
    tagline: str
    summary: str
    body: str
    demo_slug: str
    tech: tuple[str, ...]
    features: tuple[FeatureSeed, ...]


@dataclass(frozen=True)
class Content:
    profile: ProfileSeed
    arsenal: tuple[CategorySeed, ...]
    projects: tuple[ProjectSeed, ...]


def __getattr__(name: str) -> Any:
    """``PROFILE``, ``ARSENAL`` and ``PROJECTS``: the content as the files hold it now."""
    fields = {"PROFILE": "profile", "ARSENAL": "arsenal", "PROJECTS": "projects"}
    if name in fields:
        return getattr(read_content(), fields[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------
# Reading and checking the files
# ---------------------------------------------------------------------------


class _Table:
    """One TOML table being read: every value is checked, and errors say ``where`` it is.

    Text fields are checked against the model column they fill (``model``), so a value too
    long for its column fails here rather than in the admin.
    """

    def __init__(self, where: str, data: Any, model: type[models.Model], keys: set[str]):
        if not isinstance(data, dict):
            raise SeedError(f"{where}: expected a table, not {type(data).__name__}")
        for key in data:
            if key not in keys:
                raise SeedError(f'{where}: unknown key "{key}"{_did_you_mean(key, keys)}')
        self.where, self.data, self.model = where, data, model

    def get(self, key: str, kind: type, default: Any = None) -> Any:
        if key not in self.data:
            if default is None:
                raise SeedError(f'{self.where}: missing key "{key}"')
            return default
        value = self.data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SeedError(f'{self.where}: "{key}" must be {_KINDS[kind]}, not {value!r}')
        return value

    def line(self, key: str, default: str | None = None) -> str:
        """A one-line text value for the model's column of the same name."""
        value = self.get(key, str, default)
        if "\n" in value:
            raise SeedError(
                f'{self.where}: "{key}" must be one line (end each wrapped line with a '
                "backslash inside a multi-line string)"
            )
        if default is None and not value.strip():
            raise SeedError(f'{self.where}: "{key}" is empty')
        limit = self.model._meta.get_field(key).max_length
        if limit and len(value) > limit:
            raise SeedError(
                f'{self.where}: "{key}" is {len(value)} characters long, at most {limit} fit'
            )
        return value

    def tables(self, key: str) -> list[Any]:
        return self.get(key, list, [])

    def lines(self, key: str) -> tuple[str, ...]:
        values = self.tables(key)
        for value in values:
            if not isinstance(value, str):
                raise SeedError(f'{self.where}: "{key}" must list strings, not {value!r}')
        return tuple(values)


_KINDS = {str: "a string", int: "a whole number", list: "a list"}


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def _front_matter(path: Path, where: str) -> tuple[dict[str, Any], str]:
    """A markdown file's ``+++`` TOML front matter, and the markdown after it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedError(f"{where}: no such file") from None
    if not text.startswith("+++\n"):
        raise SeedError(f"{where}: no front matter (the file must start with a +++ line)")
    head, sep, body = text[4:].partition("\n+++\n")
    if not sep:
        raise SeedError(f"{where}: the front matter is not closed by a +++ line")
    body = body.strip("\n").rstrip()
    # Parsed with a blank line for the opening +++, so the parser's line numbers are the file's.
    return _parse_toml("\n" + head, where), (body + "\n" if body else "")


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message gives the line in the file
        raise SeedError(f"{where}: not valid TOML: {exc}") from None


def _read_arsenal(seed_dir: Path) -> tuple[CategorySeed, ...]:
    where = "arsenal.toml"
    try:
        text = (seed_dir / where).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedError(f"{where}: no such file") from None
    top = _Table(where, _parse_toml(text, where), SkillCategory, {"categories"})
    categories: list[CategorySeed] = []
    seen: dict[str, str] = {}
    for number, data in enumerate(top.tables("categories"), start=1):
        table = _Table(
            f"{where}, category {number}",
            data,
            SkillCategory,
            {"name", "slug", "description", "skills"},
        )
        slug = table.line("slug")
        if not slug_re.match(slug):
            raise SeedError(
                f'{table.where}: slug "{slug}" is not a slug (letters, digits, - and _)'
            )
        skills: list[SkillSeed] = []
        for skill_number, skill_data in enumerate(table.tables("skills"), start=1):
            skill = _Table(
                f'{where}, category "{slug}", skill {skill_number}',
                skill_data,
                Skill,
                {"name", "note"},
            )
            name = skill.line("name")
            if name in seen:
                raise SeedError(f'{skill.where}: skill "{name}" is already in "{seen[name]}"')
            seen[name] = slug
            skills.append(SkillSeed(name=name, note=skill.line("note", default="")))
        categories.append(
            CategorySeed(
                name=table.line("name"),
                slug=slug,
                description=table.line("description", default=""),
                skills=tuple(skills),
            )
        )
    for field in ("name", "slug"):
        values = [getattr(category, field) for category in categories]
        twice = sorted({value for value in values if values.count(value) > 1})
        if twice:
            raise SeedError(f'{where}: more than one category with the {field} "{twice[0]}"')
    return tuple(categories)


def _read_project(path: Path, skills: set[str]) -> ProjectSeed:
    where = f"projects/{path.name}"
    meta, body = _front_matter(path, where)
    slug = path.stem
    if not slug_re.match(slug):
        raise SeedError(
            f"{where}: the file name must be the project's slug (letters, digits, - and _)"
        )
    table = _Table(
        where,
        meta,
        Project,
        {"title", "status", "order", "tagline", "summary", "demo_slug", "tech", "features"},
    )
    status = table.get("status", str)
    if status not in Project.Status.values:
        raise SeedError(
            f'{where}: status "{status}" is not one of {", ".join(Project.Status.values)}'
            f"{_did_you_mean(status, Project.Status.values)}"
        )
    order = table.get("order", int)
    if not 0 <= order <= 32767:
        raise SeedError(f"{where}: order {order} is not between 0 and 32767")
    demo_slug = table.line("demo_slug", default="")
    if demo_slug and demo_slug not in DEMOS:
        raise SeedError(
            f'{where}: demo_slug "{demo_slug}" is not a demo of demos.registry'
            f"{_did_you_mean(demo_slug, DEMOS)}"
        )
    tech = table.lines("tech")
    for name in tech:
        if name not in skills:
            raise SeedError(
                f'{where}: tech "{name}" is not a skill in arsenal.toml'
                f"{_did_you_mean(name, skills)}"
            )
    features = []
    for number, data in enumerate(table.tables("features"), start=1):
        feature = _Table(f"{where}, feature {number}", data, KeyFeature, {"text", "metric"})
        features.append(
            FeatureSeed(text=feature.line("text"), metric=feature.line("metric", default=""))
        )
    return ProjectSeed(
        title=table.line("title"),
        slug=slug,
        status=status,
        order=order,
        tagline=table.line("tagline", default=""),
        summary=table.line("summary"),
        body=body,
        demo_slug=demo_slug,
        tech=tech,
        features=tuple(features),
    )


def read_content(seed_dir: Path = SEED_DIR) -> Content:
    """Read and check every seed file; raise :class:`SeedError` at the first problem."""
    meta, bio = _front_matter(seed_dir / "profile.md", "profile.md")
    profile = _Table("profile.md", meta, Profile, {"name", "headline"})
    arsenal = _read_arsenal(seed_dir)
    skills = {skill.name for category in arsenal for skill in category.skills}
    projects = [_read_project(path, skills) for path in sorted(seed_dir.glob("projects/*.md"))]
    return Content(
        profile=ProfileSeed(name=profile.line("name"), headline=profile.line("headline"), bio=bio),
        arsenal=arsenal,
        projects=tuple(sorted(projects, key=lambda project: (project.order, project.slug))),
    )


# ---------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------


def load_seed(refresh: bool = False, seed_dir: Path = SEED_DIR) -> dict[str, int]:
    """Write the seed content; return how many rows of each kind were created.

    Missing rows are created; existing ones are left as they are, unless ``refresh`` is true,
    in which case they are overwritten with the seed values and a seeded project's key
    features are replaced by the seed's. Running it twice creates nothing the second time.
    All or nothing: the files are checked first, and the rows are written in one transaction.
    """
    content = read_content(seed_dir)
    created = {"profiles": 0, "categories": 0, "skills": 0, "projects": 0, "features": 0}
    with transaction.atomic():
        _, was_created = _upsert(
            Profile,
            {"name": content.profile.name},
            {"headline": content.profile.headline, "bio": content.profile.bio},
            refresh,
        )
        created["profiles"] += was_created

        skills: dict[str, Skill] = {}
        for category_order, category_seed in enumerate(content.arsenal, start=1):
            category, was_created = _upsert(
                SkillCategory,
                {"slug": category_seed.slug},
                {
                    "name": category_seed.name,
                    "description": category_seed.description,
                    "order": category_order,
                },
                refresh,
            )
            created["categories"] += was_created
            for skill_order, skill_seed in enumerate(category_seed.skills, start=1):
                skill, was_created = _upsert(
                    Skill,
                    {"name": skill_seed.name},
                    {"category": category, "note": skill_seed.note, "order": skill_order},
                    refresh,
                )
                created["skills"] += was_created
                skills[skill.name] = skill

        for project_seed in content.projects:
            project, was_created = _upsert(
                Project,
                {"slug": project_seed.slug},
                {
                    "title": project_seed.title,
                    "status": project_seed.status,
                    "order": project_seed.order,
                    "tagline": project_seed.tagline,
                    "summary": project_seed.summary,
                    "body": project_seed.body,
                    "demo_slug": project_seed.demo_slug,
                },
                refresh,
            )
            created["projects"] += was_created
            if was_created or refresh:
                project.tech.set([skills[name] for name in project_seed.tech])
            created["features"] += _sync_features(project, project_seed.features, refresh)

    logger.info(
        "seed loaded refresh=%s %s",
        refresh,
        " ".join(f"{kind}_created={count}" for kind, count in created.items()),
    )
    return created


def _upsert(
    model: type[ModelT], lookup: dict[str, Any], values: dict[str, Any], refresh: bool
) -> tuple[ModelT, bool]:
    """Find the row by its natural key or create it; with ``refresh``, overwrite its values.

    Saves through ``save()`` (not ``update()``) so models that render markdown on save keep
    their HTML in step, and only when a value actually differs.
    """
    obj = model._default_manager.filter(**lookup).order_by("pk").first()
    if obj is None:
        return model._default_manager.create(**lookup, **values), True
    if refresh:
        changed = [field for field, value in values.items() if getattr(obj, field) != value]
        if changed:
            for field in changed:
                setattr(obj, field, values[field])
            obj.save()
    return obj, False


def _sync_features(project: Project, seeds: tuple[FeatureSeed, ...], refresh: bool) -> int:
    """Create the project's missing key features, keyed by order; return how many.

    With ``refresh`` the project's features become exactly the seed's: rows at a seeded order
    are overwritten, and any others (extra orders, duplicates) are deleted.
    """
    existing: dict[int, KeyFeature] = {}
    strays: list[int] = []
    for feature in project.features.order_by("order", "pk"):
        if feature.order in existing:
            strays.append(feature.pk)
        else:
            existing[feature.order] = feature

    created = 0
    for order, seed in enumerate(seeds, start=1):
        feature = existing.pop(order, None)
        if feature is None:
            KeyFeature.objects.create(
                project=project, order=order, text=seed.text, metric=seed.metric
            )
            created += 1
        elif refresh and (feature.text, feature.metric) != (seed.text, seed.metric):
            feature.text, feature.metric = seed.text, seed.metric
            feature.save(update_fields=["text", "metric"])

    if refresh:
        strays.extend(feature.pk for feature in existing.values())
        if strays:
            KeyFeature.objects.filter(pk__in=strays).delete()
    return created
