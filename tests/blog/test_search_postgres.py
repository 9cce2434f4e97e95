"""Search on PostgreSQL: full-text search over title (weight A), tags (B) and body (C),
ranked, with stemming and web-search syntax, run against a real PostgreSQL server.

The suite's own database is SQLite, so the queries run in a child process whose Django
points at a scratch database on the demo PostgreSQL instance (tests/conftest.py starts it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRATCH_DB = "blog_search_test"

SCRIPT = textwrap.dedent(
    """
    import json
    from datetime import timedelta

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from blog.models import Post, Tag

    call_command("migrate", verbosity=0)
    Post.objects.all().delete()
    hour_ago = timezone.now() - timedelta(hours=1)
    queues = Tag.objects.create(name="Queues", slug="queues")

    def post(slug, title, body, tags=(), status="published"):
        p = Post.objects.create(slug=slug, title=title, summary="s", body=body,
                                status=status, publish_at=hour_ago)
        p.tags.set(tags)

    post("in-body", "Scheduling notes", "Work stealing uses queues of tasks.")
    post("in-title", "Lock-free queues", "Nothing more to say.")
    post("in-tags", "Deques for schedulers", "About deques.", tags=[queues])
    post("elsewhere", "Garbage collection", "Marking roots.")
    post("draft", "Queues draft", "queues queues", status="draft")

    published = Post.objects.published()
    print(json.dumps({
        "vendor": connection.vendor,
        "queues": [p.slug for p in published.search("queues")],
        "stemmed": [p.slug for p in published.search("queue")],
        "websearch": [p.slug for p in published.search("queues -lock")],
        "phrase": [p.slug for p in published.search('"work stealing"')],
        "nothing": [p.slug for p in published.search("zymurgy")],
    }))
    """
)


@pytest.mark.slow
def test_postgres_search_weights_title_over_tags_over_body(demo_postgres):
    instance = demo_postgres["demo"]
    with psycopg.connect(instance.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        completed = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": instance.dsn(db=SCRATCH_DB)},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-3000:]
        result = json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect(instance.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")

    assert result["vendor"] == "postgresql"
    # Weighted: a title match (A) outranks a tag match (B), which outranks the body (C).
    assert result["queues"] == ["in-title", "in-tags", "in-body"]
    # English stemming: "queue" finds "queues", which icontains would only by luck.
    assert result["stemmed"] == ["in-title", "in-tags", "in-body"]
    # websearch_to_tsquery: "-lock" excludes the post with "Lock-free" in its title.
    # (ts_rank orders queries with a negation by its own rules: compare as sets.)
    assert sorted(result["websearch"]) == ["in-body", "in-tags"]
    assert result["phrase"] == ["in-body"]
    assert result["nothing"] == []
