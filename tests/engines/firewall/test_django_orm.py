"""The Django ORM through the firewall: a real Django database connection (psycopg 3, the
postgresql backend) to the proxy, doing what an application does — and being refused what
the guard refuses, as an ordinary database error the application can handle."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import DatabaseError, connections, models, transaction

ALIAS = "through_firewall"


class Note(models.Model):
    """A table the test creates itself (not managed by migrations)."""

    body = models.TextField()
    done = models.BooleanField(default=False)

    class Meta:
        app_label = "demos"
        managed = False
        db_table = "orm_notes"

    def __str__(self) -> str:
        return self.body


@pytest.fixture
def orm(firewall, postgres, django_db_blocker) -> Iterator[str]:
    """A Django connection alias that reaches PostgreSQL through the proxy."""
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as admin:
        admin.execute("DROP TABLE IF EXISTS orm_notes")
        admin.execute(
            "CREATE TABLE orm_notes (id bigserial PRIMARY KEY, body text NOT NULL, "
            "done boolean NOT NULL DEFAULT false)"
        )
    dsn = urlsplit(firewall.dsn())
    connections.settings[ALIAS] = connections.configure_settings(
        {
            "default": connections.settings["default"],
            ALIAS: {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": dsn.path.lstrip("/"),
                "USER": dsn.username,
                "PASSWORD": dsn.password,
                "HOST": dsn.hostname,
                "PORT": dsn.port,
                "OPTIONS": {"sslmode": "disable"},
            },
        }
    )[ALIAS]
    with django_db_blocker.unblock():
        try:
            yield ALIAS
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]


def test_orm_reads_writes_and_rolls_back_through_the_proxy(orm):
    notes = Note.objects.using(orm)
    notes.bulk_create([Note(body=f"note {n}") for n in range(5)])
    assert notes.count() == 5
    assert notes.filter(body__endswith="3").update(done=True) == 1
    assert list(notes.filter(done=True).values_list("body", flat=True)) == ["note 3"]
    try:
        with transaction.atomic(using=orm):
            notes.create(body="rolled back")
            raise LookupError("abandon the transaction")
    except LookupError:
        pass
    assert not notes.filter(body="rolled back").exists()
    notes.filter(pk__in=notes.filter(done=True).values("pk")).delete()
    assert notes.count() == 4


def test_orm_is_refused_what_the_guard_blocks_and_carries_on(orm):
    notes = Note.objects.using(orm)
    notes.create(body="keep me")
    with pytest.raises(DatabaseError, match='rule "update_without_where"'):
        notes.update(done=True)  # UPDATE orm_notes SET done = true: every row
    with pytest.raises(DatabaseError, match='rule "delete_without_where"'):
        notes.all().delete()  # DELETE FROM orm_notes: every row
    with transaction.atomic(using=orm):  # a block inside a transaction aborts only it
        with pytest.raises(DatabaseError, match='rule "drop"'), transaction.atomic(using=orm):
            connections[orm].cursor().execute("DROP TABLE orm_notes")
        notes.create(body="after the savepoint")
    assert sorted(notes.values_list("body", flat=True)) == ["after the savepoint", "keep me"]
    assert not notes.filter(done=True).exists()
