"""The blog's seed posts, tags and series, loaded by ``manage.py loadseed``.

The posts are markdown files in ``blog/seed/`` with a small front matter, so they read and
diff like the prose they are. Loading follows the site's seed rules
(:mod:`portfolio.seed`): rows are matched on their slug, missing ones are created, existing
ones are left alone unless ``refresh`` is true, in which case they are overwritten.

Tags whose slug is a project's slug (``sql-firewall``, ...) link the posts from that
project's page.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from .models import Post, Series, Tag

logger = logging.getLogger(__name__)

SEED_DIR = Path(__file__).resolve().parent / "seed"

TAGS: dict[str, tuple[str, str]] = {
    # slug: (name, description)
    "sql-firewall": (
        "SQL firewall",
        "The PostgreSQL SQL firewall and connection pooler that runs live on this site.",
    ),
    "work-stealing-scheduler": (
        "Work-stealing scheduler",
        "The work-stealing job scheduler: Chase-Lev deques in C, driven from Python.",
    ),
    "mark-sweep-gc": (
        "Garbage collector",
        "The mark-and-sweep garbage collector and the small VM it collects for.",
    ),
    "postgresql": ("PostgreSQL", "Posts that go inside PostgreSQL: its protocol and parser."),
    "parsing": ("Parsing", "Parse trees, and what can be read from them."),
    "concurrency": ("Concurrency", "Threads, atomics and the algorithms that share work."),
    "memory-model": ("Memory model", "What the hardware and C11 promise about ordering."),
    "c": ("C", "Code in C, close to the machine."),
    "garbage-collection": ("Garbage collection", "Finding what is alive, freeing the rest."),
    "security": ("Security", "Keeping dangerous things out."),
}

SERIES: dict[str, tuple[str, str]] = {
    "inside-the-engines": (
        "Inside the engines",
        "How the systems behind this site's live demos work, one hard part at a time.",
    ),
}


class SeedError(ValueError):
    """A seed post file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class PostSeed:
    slug: str
    title: str
    summary: str
    publish_at: dt.datetime
    tags: tuple[str, ...]
    series: str
    series_order: int | None
    body: str


def parse_post(path: Path) -> PostSeed:
    """Read one seed file: ``---`` front matter of ``key: value`` lines, then markdown."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise SeedError(f"{path.name}: no front matter (the file must start with ---)")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise SeedError(f"{path.name}: the front matter is not closed by ---")
    meta: dict[str, str] = {}
    for line in head.splitlines():
        if line.strip():
            key, colon, value = line.partition(":")
            if not colon:
                raise SeedError(f"{path.name}: front matter line without a colon: {line!r}")
            meta[key.strip()] = value.strip()
    missing = {"title", "slug", "summary", "date"} - meta.keys()
    if missing:
        raise SeedError(f"{path.name}: front matter lacks {', '.join(sorted(missing))}")
    tags = tuple(t.strip() for t in meta.get("tags", "").split(",") if t.strip())
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise SeedError(f"{path.name}: unknown tags {unknown}; add them to blog.seed.TAGS")
    series = meta.get("series", "")
    if series and series not in SERIES:
        raise SeedError(f"{path.name}: unknown series {series!r}")
    publish_at = dt.datetime.fromisoformat(meta["date"])
    if publish_at.tzinfo is None:
        publish_at = publish_at.replace(tzinfo=dt.UTC)
    return PostSeed(
        slug=meta["slug"],
        title=meta["title"],
        summary=meta["summary"],
        publish_at=publish_at,
        tags=tags,
        series=series,
        series_order=int(meta["series_order"]) if meta.get("series_order") else None,
        body=body.strip() + "\n",
    )


def seed_posts() -> list[PostSeed]:
    return [parse_post(path) for path in sorted(SEED_DIR.glob("*.md"))]


def _upsert(model: type[Tag] | type[Series], slug: str, fields: dict[str, str], refresh: bool):
    """The row with ``slug``, created with ``fields`` if missing, overwritten if ``refresh``."""
    row, was_created = model.objects.get_or_create(slug=slug, defaults=fields)
    if refresh and any(getattr(row, name) != value for name, value in fields.items()):
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
    return row, was_created


def load_blog_seed(refresh: bool = False) -> dict[str, int]:
    """Create the missing seed tags, series and posts; with ``refresh``, overwrite them.
    Returns how many rows of each kind were created."""
    posts = seed_posts()
    created = {"tags": 0, "series": 0, "posts": 0}
    with transaction.atomic():
        tags: dict[str, Tag] = {}
        for slug, (name, description) in TAGS.items():
            tags[slug], was_created = _upsert(
                Tag, slug, {"name": name, "description": description}, refresh
            )
            created["tags"] += was_created
        series_rows: dict[str, Series] = {}
        for slug, (title, description) in SERIES.items():
            series_rows[slug], was_created = _upsert(
                Series, slug, {"title": title, "description": description}, refresh
            )
            created["series"] += was_created

        for seed in posts:
            values = {
                "title": seed.title,
                "summary": seed.summary,
                "body": seed.body,
                "publish_at": seed.publish_at,
                "status": Post.Status.PUBLISHED,
                "series": series_rows.get(seed.series),
                "series_order": seed.series_order,
            }
            post = Post.objects.filter(slug=seed.slug).first()
            if post is None:
                post = Post.objects.create(slug=seed.slug, **values)
                created["posts"] += 1
            elif refresh:
                for field, value in values.items():
                    setattr(post, field, value)
                post.save()
            else:
                continue
            post.tags.set([tags[slug] for slug in seed.tags])
    logger.info(
        "blog seed loaded refresh=%s %s",
        refresh,
        " ".join(f"{kind}_created={count}" for kind, count in created.items()),
    )
    return created
