"""``manage.py loadseed``: put the site's seed content in the database, idempotently."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from blog.seed import load_blog_seed
from portfolio.seed import load_seed


class Command(BaseCommand):
    help = (
        "Load the seed content (profile, arsenal, projects and their key features; the blog's "
        "posts, tags and series). Creates "
        "what is missing and leaves existing rows alone, so it is safe to run on every deploy. "
        "Profile links are not seeded: add them in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="Overwrite existing seeded rows with the seed values and replace seeded "
            "projects' key features. Edits made to those rows in the admin are lost.",
        )

    def handle(self, *args: Any, refresh: bool, **options: Any) -> None:
        created = load_seed(refresh=refresh) | load_blog_seed(refresh=refresh)
        counts = " ".join(f"{kind}={count}" for kind, count in created.items())
        mode = "refreshed" if refresh else "loaded"
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS(f"Seed {mode}; created {counts}"))
