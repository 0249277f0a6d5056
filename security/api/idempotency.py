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

The rows are written by ``security.services.idempotency_keys``; a daily job deletes
expired ones (``delete_expired_idempotency_keys``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from security.api.errors import ApiError
from security.api.principal import principal_of
from security.models import IdempotencyKey
from security.services import idempotency_keys

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
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
        claimed = idempotency_keys.insert_key(
            owner=owner,
            key=key,
            method=method,
            endpoint=endpoint,
            fingerprint=fingerprint,
            expires_at=now + timedelta(hours=int(settings.API_IDEMPOTENCY_HOURS)),
        )
        if claimed is not None:
            return Claim(pk=claimed)
        existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if existing is None:
            continue  # released a moment ago: claim it again
        if existing.expires_at <= now:
            idempotency_keys.delete_expired_key(existing.pk, now=now)
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
        idempotency_keys.release_key(claimed.pk)
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    idempotency_keys.store_key_answer(
        claimed.pk,
        status_code=response.status_code,
        content_type=response.get("Content-Type", ""),
        body=bytes(response.content),
    )
