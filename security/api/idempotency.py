"""Idempotent POSTs (docs/api.md, "Idempotency"): a client sends ``Idempotency-Key: <key>``
and may retry the same request safely.

The first request with a key claims it by inserting its row (``security.IdempotencyKey``,
unique on owner and key, committed at once); the view runs; its answer (status, body) is
stored on the row and replayed to every retry for ``API_IDEMPOTENCY_HOURS`` (at least 24)
with the header ``Idempotent-Replayed: true``. The owner is the token's application and
user, so two clients never see each other's keys.

* the same key with another body or path: 422 ``idempotency_key_reused``;
* the same key on another endpoint or method: 422 ``idempotency_key_other_endpoint``;
* the same key while the first request still runs: 409 ``idempotency_key_in_use`` (the
  unique insert lets exactly one of concurrent duplicates run, whatever the timing);
* a first request that failed on our side (5xx) releases its key, so a retry runs anew
  (the failure rolled its transaction back: nothing happened).

Expired keys are deleted by a daily job (``delete_expired_idempotency_keys``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from audit import SYSTEM, record
from security.actors import Actor
from security.api.errors import ApiError
from security.api.principal import principal_of
from security.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
SCHEDULE_NAME = "security.delete_expired_idempotency_keys"
TASK = "security.tasks.delete_expired_idempotency_keys_job"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class Replay(Exception):
    """Raised by ``claim`` when a stored answer is to be given again."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("replay")
        self.response = response


@dataclass(frozen=True)
class Claim:
    """A key this request claimed: its answer is stored by ``store_answer``."""

    pk: int


def _fingerprint(request: Any) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    digest.update(request._request.body)
    return digest.hexdigest()


def _replay(row: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(
        bytes(row.body), status=row.status_code, content_type=row.content_type or None
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _check_stored(row: IdempotencyKey, *, method: str, endpoint: str, fingerprint: str) -> None:
    if row.method != method or row.endpoint != endpoint:
        raise ApiError(
            "this Idempotency-Key was used on another endpoint; use a new key for each request",
            status_code=422,
            code="idempotency_key_other_endpoint",
            field=HEADER,
        )
    if row.fingerprint != fingerprint:
        raise ApiError(
            "this Idempotency-Key was used with other parameters; use a new key for a new request",
            status_code=422,
            code="idempotency_key_reused",
            field=HEADER,
        )
    if row.status_code is None:
        raise ApiError(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            status_code=409,
            code="idempotency_key_in_use",
            field=HEADER,
        )
    raise Replay(_replay(row))


def claim(request: Any, *, endpoint: str) -> Claim | None:
    """Claim the request's ``Idempotency-Key`` (None without one); raise ``Replay`` with the
    stored answer for a retry, ``ApiError`` for a misuse (see the module's docstring)."""
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return None
    if not _SANE_KEY.fullmatch(key):
        raise ApiError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
            status_code=400,
            code="invalid_idempotency_key",
            field=HEADER,
        )
    principal = principal_of(request)
    owner = f"{principal.application.pk}:{principal.user.pk}"
    method = request.method
    fingerprint = _fingerprint(request)
    now = timezone.now()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    owner=owner,
                    key=key,
                    method=method,
                    endpoint=endpoint,
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + timedelta(hours=int(settings.API_IDEMPOTENCY_HOURS)),
                )
            return Claim(pk=row.pk)
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if existing is None:
            continue  # released a moment ago: claim it again
        if existing.expires_at <= now:
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        _check_stored(existing, method=method, endpoint=endpoint, fingerprint=fingerprint)
    raise ApiError(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        status_code=409,
        code="idempotency_key_in_use",
        field=HEADER,
    )


def store_answer(claimed: Claim, response: Any) -> None:
    """Keep the answer for retries; a failure on our side (5xx) releases the key instead."""
    if response.status_code >= 500:
        IdempotencyKey.objects.filter(pk=claimed.pk).delete()
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    IdempotencyKey.objects.filter(pk=claimed.pk).update(
        status_code=response.status_code,
        content_type=response.get("Content-Type", ""),
        body=bytes(response.content),
    )


def register_idempotency_schedule() -> None:
    """Exactly one daily django-q2 schedule deletes expired keys (idempotent)."""
    from django_q.models import Schedule

    from audit.schedules import ensure_schedule

    ensure_schedule(SCHEDULE_NAME, func=TASK, schedule_type=Schedule.DAILY)


def delete_expired_idempotency_keys(*, by: Actor = SYSTEM, now: Any = None) -> int:
    """Delete the keys past their expiry (their answers are no longer replayed); how many."""
    now = now or timezone.now()
    with transaction.atomic():
        count, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
        if count:
            record("security.idempotency_keys_purged", actor=by, count=count)
    return count
