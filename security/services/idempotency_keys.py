"""The API's Idempotency-Key rows (``security.IdempotencyKey``; security.api.idempotency
decides what a request with a key gets): the claim by a unique insert committed at once,
the stored answer, the release after a failure, and the daily deletion of expired keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import SYSTEM, record
from audit.schedules import ensure_schedule
from db.compiled import update_sql
from db.inserts import insert_unless_exists
from security.actors import Actor
from security.models import IdempotencyKey

SCHEDULE_NAME = "security.delete_expired_idempotency_keys"
TASK = "security.tasks.delete_expired_idempotency_keys_job"


def insert_key(
    *, owner: str, key: str, method: str, endpoint: str, fingerprint: str, expires_at: datetime
) -> int | None:
    """Claim a key: its new row's id, or None when the owner already holds this key (the
    unique constraint decides, so of concurrent duplicates exactly one gets a row). One
    statement (``db.inserts``): every API POST claims one."""
    row = IdempotencyKey(
        owner=owner,
        key=key,
        method=method,
        endpoint=endpoint,
        fingerprint=fingerprint,
        created_at=timezone.now(),
        expires_at=expires_at,
    )
    if not insert_unless_exists(row, unique=("owner", "key")):
        return None
    return int(row.pk)


def store_key_answer(pk: int, *, status_code: int, content_type: str, body: bytes) -> None:
    """Keep the first answer for the key's retries (an UPDATE built once, ``db.compiled``;
    a row deleted meanwhile, as ``QuerySet.update`` would, changes nothing)."""
    answer = IdempotencyKey(pk=pk, status_code=status_code, content_type=content_type, body=body)
    sql, params = update_sql(answer, ("status_code", "content_type", "body"))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def release_key(pk: int) -> None:
    """Forget a claim whose request failed on our side (nothing happened: it rolled back)."""
    IdempotencyKey.objects.filter(pk=pk).delete()


def delete_expired_key(pk: int, *, now: datetime) -> None:
    """Delete one key past its expiry (a retry after that is a new request)."""
    IdempotencyKey.objects.filter(pk=pk, expires_at__lte=now).delete()


def register_idempotency_schedule() -> None:
    """Exactly one daily django-q2 schedule deletes expired keys (idempotent)."""
    from django_q.models import Schedule

    ensure_schedule(SCHEDULE_NAME, func=TASK, schedule_type=Schedule.DAILY)


def delete_expired_idempotency_keys(*, by: Actor = SYSTEM, now: Any = None) -> int:
    """Delete the keys past their expiry (their answers are no longer replayed); how many."""
    now = now or timezone.now()
    with transaction.atomic():
        count, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
        if count:
            record("security.idempotency_keys_purged", actor=by, count=count)
    return count
