"""``db.inserts.insert_unless_exists`` and ``db.counters.count_hits`` on the real database:
the second insert of a unique key is skipped (no error, no second row), and counters start
again in a new window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from db.counters import count_hits
from db.inserts import insert_unless_exists
from security.models import ApiRateCounter, IdempotencyKey

pytestmark = pytest.mark.django_db


def _key(owner: str, key: str) -> IdempotencyKey:
    now = timezone.now()
    return IdempotencyKey(
        owner=owner,
        key=key,
        method="POST",
        endpoint="invoices",
        fingerprint="f" * 64,
        created_at=now,
        expires_at=now + timedelta(days=1),
    )


def test_a_unique_key_is_inserted_once() -> None:
    first = _key("1:2", "k")
    assert insert_unless_exists(first, unique=("owner", "key")) is True
    assert first.pk is not None and not first._state.adding
    again = _key("1:2", "k")
    assert insert_unless_exists(again, unique=("owner", "key")) is False
    assert again.pk is None
    assert insert_unless_exists(_key("1:3", "k"), unique=("owner", "key")) is True
    assert IdempotencyKey.objects.filter(key="k").count() == 2


def test_counters_count_per_key_and_restart_in_a_new_window() -> None:
    table = ApiRateCounter._meta.db_table
    assert count_hits(table, [("a", 60), ("b", 60)]) == {"a": 1, "b": 1}
    assert count_hits(table, [("a", 60)]) == {"a": 2}
    assert count_hits(table, [("a", 120), ("b", 60)]) == {"a": 1, "b": 2}
    assert count_hits(table, []) == {}
