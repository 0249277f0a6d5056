"""The engine reads ``timestamptz`` values with psycopg's own loader (in C with
psycopg-binary): the same aware UTC datetimes as Django's Python loader gave."""

from __future__ import annotations

import datetime

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import pq

from audit import SYSTEM, record
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

_OID = psycopg.adapters.types["timestamptz"].oid


def _loader_in_use() -> object:
    """The loader a cursor of Django's connection builds for a timestamptz column."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.cursor._tx.get_loader(_OID, pq.Format.TEXT)


def test_a_utc_session_uses_psycopgs_own_loader() -> None:
    native = psycopg.adapters.get_loader(_OID, pq.Format.TEXT)

    loader = _loader_in_use()

    assert type(loader) is native
    assert not isinstance(loader, BaseTzLoader)


def test_values_are_aware_utc_and_exact() -> None:
    written = datetime.datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=datetime.UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::timestamptz, '2026-10-25 02:30:00.5+02'::timestamptz, NULL::timestamptz",
            [written],
        )
        same, summer_time, missing = cursor.fetchone()

    assert same == written
    assert same.tzinfo is datetime.UTC
    assert summer_time == datetime.datetime(2026, 10, 25, 0, 30, 0, 500000, tzinfo=datetime.UTC)
    assert summer_time.tzinfo is datetime.UTC
    assert missing is None


def test_models_read_back_what_was_written() -> None:
    event = record("test.loaded", actor=SYSTEM)

    stored = AuditEvent.objects.get(pk=event.pk)

    assert stored.created_at == event.created_at
    assert stored.created_at.tzinfo is datetime.UTC


def test_a_session_in_another_time_zone_gets_djangos_loader() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Europe/Stockholm'")
    try:
        assert isinstance(_loader_in_use(), BaseTzLoader)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
