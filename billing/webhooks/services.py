"""Webhook state changes: endpoints registered, changed and their secrets rolled (security
officers, with a fresh second factor, audited); deliveries attempted, retried with
backoff, given up (audited, alerted) and replayed (audited).

A delivery is claimed ("sending", committed) before its POST, so one worker posts it;
the POST happens outside any transaction (a receiver can be slow); the attempt is then
recorded in one short transaction. Receivers dedupe by ``Tillit-Event-Id``: a send whose
worker died is attempted again (docs/webhooks.md).
"""

from __future__ import annotations

import datetime
import http.client
import logging
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM, record
from billing.webhooks import dispatch, keys, selectors, transport
from billing.webhooks.events import EVENT_TYPES, new_id
from billing.webhooks.exceptions import (
    InvalidEndpointUrl,
    UnknownEventType,
    WebhookError,
    WebhookRefused,
)
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.webhooks.signing import HEADER, signature_header
from security.actors import Person, user_of
from security.keyring import get_keyring
from security.services import raise_security_alert, require_step_up

logger = logging.getLogger(__name__)

ADD_PERMISSION = "webhooks.add_webhookendpoint"
CHANGE_PERMISSION = "webhooks.change_webhookendpoint"
ROLL_PERMISSION = "webhooks.roll_webhook_secret"
REPLAY_PERMISSION = "webhooks.replay_webhook_delivery"
GIVEN_UP_ALERT = "webhooks.delivery_given_up"


def _allow(by: Person, permission: str, request: HttpRequest | None, *, step_up: bool) -> None:
    if not (getattr(by, "is_active", False) and by.has_perm(permission)):
        raise WebhookRefused(f"this needs the permission {permission}")
    if step_up:
        require_step_up(request, by)


def _events(chosen: Sequence[str]) -> list[str]:
    if isinstance(chosen, str) or not chosen:
        raise UnknownEventType("choose at least one event type")
    unknown = sorted(set(chosen) - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(f"unknown event type(s): {', '.join(unknown)}")
    return sorted(set(chosen))


def _description(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > 200 or any(ord(c) < 32 for c in text):
        raise WebhookError(
            "the description is one line of at most 200 characters", field="description"
        )
    return text


def create_webhook_endpoint(
    *,
    url: str,
    events: Sequence[str],
    description: str = "",
    by: Person,
    request: HttpRequest | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register a receiver (URL checked against SSRF, events known): returns the endpoint
    and its new secret, which the caller shows once and never stores."""
    _allow(by, ADD_PERMISSION, request, step_up=True)
    transport.check_url(url)
    chosen, text = _events(events), _description(description)
    secret = keys.new_secret()
    public_id = new_id("we")
    sealed = keys.seal(secret, public_id=public_id)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            public_id=public_id,
            url=url,
            description=text,
            events=chosen,
            secret_kek_version=sealed.version,
            secret_sealed=sealed.blob,
            secret_created_at=timezone.now(),
            created_by=user_of(by),
        )
        record(
            "webhooks.endpoint_created",
            actor=by,
            obj=endpoint,
            request=request,
            endpoint=public_id,
            url=url,
            events=chosen,
        )
    return endpoint, secret


def update_webhook_endpoint(
    endpoint: WebhookEndpoint, *, by: Person, request: HttpRequest | None = None, **changes: Any
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, description or active flag (each checked)."""
    _allow(by, CHANGE_PERMISSION, request, step_up=True)
    unknown = set(changes) - {"url", "events", "description", "active"}
    if unknown:
        raise WebhookError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    if "url" in changes:
        transport.check_url(changes["url"])
    if "events" in changes:
        changes["events"] = _events(changes["events"])
    if "description" in changes:
        changes["description"] = _description(changes["description"])
    if "active" in changes and not isinstance(changes["active"], bool):
        raise WebhookError("active is true or false", field="active")
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = {name: getattr(locked, name) for name in changes}
        changed = {name: value for name, value in changes.items() if before[name] != value}
        if not changed:
            return locked
        for name, value in changed.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*changed, "updated_at"])
        record(
            "webhooks.endpoint_updated",
            actor=by,
            obj=locked,
            request=request,
            endpoint=locked.public_id,
            changes={name: [before[name], value] for name, value in changed.items()},
        )
    return locked


def roll_webhook_secret(
    endpoint: WebhookEndpoint,
    *,
    overlap_hours: int | None = None,
    by: Person,
    request: HttpRequest | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the old one keeps signing beside it for
    ``overlap_hours`` (default WEBHOOKS_ROLL_OVERLAP_HOURS; 0 ends it now). Returns the
    endpoint and the new secret, shown once."""
    _allow(by, ROLL_PERMISSION, request, step_up=True)
    hours = settings.WEBHOOKS_ROLL_OVERLAP_HOURS if overlap_hours is None else overlap_hours
    if not isinstance(hours, int) or isinstance(hours, bool) or not 0 <= hours <= 24 * 7:
        raise WebhookError("the overlap is 0 to 168 hours", field="overlap_hours")
    secret = keys.new_secret()
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        old = keys.open_sealed(
            locked.secret_sealed, version=locked.secret_kek_version, public_id=locked.public_id
        )
        previous = keys.seal(old, public_id=locked.public_id, slot="previous")
        current = keys.seal(secret, public_id=locked.public_id)
        locked.previous_secret_kek_version, locked.previous_secret_sealed = (
            previous.version,
            previous.blob,
        )
        locked.previous_secret_expires_at = now + datetime.timedelta(hours=hours)
        locked.secret_kek_version, locked.secret_sealed = current.version, current.blob
        locked.secret_created_at = now
        locked.save()
        record(
            "webhooks.secret_rolled",
            actor=by,
            obj=locked,
            request=request,
            endpoint=locked.public_id,
            previous_valid_until=locked.previous_secret_expires_at.isoformat(),
        )
    return locked, secret


def reseal_webhook_secrets() -> int:
    """Seal every endpoint's secrets (the current one, and the previous one while it is
    kept) again under the keyring's current KEK version, in the caller's transaction (a
    KEK rotation's): the secrets do not change, and the old KEK version is then needed by
    none of them. Returns how many endpoints were sealed again."""
    version = get_keyring().current_version()
    resealed = 0
    for endpoint in WebhookEndpoint.objects.select_for_update().order_by("pk"):
        fields = []
        if endpoint.secret_kek_version != version:
            sealed = keys.reseal(
                endpoint.secret_sealed,
                version=endpoint.secret_kek_version,
                public_id=endpoint.public_id,
            )
            endpoint.secret_kek_version, endpoint.secret_sealed = sealed.version, sealed.blob
            fields += ["secret_kek_version", "secret_sealed"]
        previous = endpoint.previous_secret_sealed
        if previous is not None and endpoint.previous_secret_kek_version != version:
            assert endpoint.previous_secret_kek_version is not None
            sealed = keys.reseal(
                previous,
                version=endpoint.previous_secret_kek_version,
                public_id=endpoint.public_id,
                slot="previous",
            )
            endpoint.previous_secret_kek_version = sealed.version
            endpoint.previous_secret_sealed = sealed.blob
            fields += ["previous_secret_kek_version", "previous_secret_sealed"]
        if fields:
            endpoint.save(update_fields=fields)
            resealed += 1
    return resealed


# --- deliveries ----------------------------------------------------------------------


def _claim(delivery_id: int, now: datetime.datetime) -> bool:
    """Take a pending delivery for posting: one conditional UPDATE, committed before the
    POST, so that of the workers racing for it exactly one sees the row change."""
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.PENDING
        ).update(status=WebhookDelivery.Status.SENDING, claimed_at=now)
    )


def _error_of(exc: Exception) -> str:
    """What an attempt records: the kind of failure, never a header or a secret."""
    if isinstance(exc, WebhookError):
        return exc.message[:500]
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:500]


def _post(delivery: WebhookDelivery, now: datetime.datetime) -> tuple[int | None, str, str]:
    """POST the delivery once: (status code or None, error, start of the answer)."""
    endpoint = delivery.endpoint
    if not endpoint.active:
        return None, "the endpoint is disabled", ""
    body = selectors.payload(delivery.event)
    try:
        header = signature_header(
            selectors.signing_secrets(endpoint, now), int(now.timestamp()), body
        )
        answer = transport.post(
            endpoint.url,
            body,
            {
                HEADER: header,
                "Tillit-Event-Id": delivery.event.public_id,
                "Tillit-Delivery-Id": delivery.public_id,
            },
        )
    except (WebhookError, OSError, http.client.HTTPException, ValueError) as exc:
        return None, _error_of(exc), ""
    if 200 <= answer.status < 300:
        return answer.status, "", answer.body
    return answer.status, f"the receiver answered {answer.status}", answer.body


def attempt_webhook_delivery(delivery_id: int) -> WebhookDelivery:
    """Claim a pending delivery (one worker posts it), POST it once, record the attempt;
    on a 2xx it is delivered, else retried after the next of ``retry_delays`` or, after
    the last, given up (audited, and a security alert is raised)."""
    claimed_at = timezone.now()
    if not _claim(delivery_id, claimed_at):
        return WebhookDelivery.objects.get(pk=delivery_id)
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    started = time.monotonic()
    status_code, error, answer = _post(delivery, claimed_at)
    duration = int((time.monotonic() - started) * 1000)
    if error:
        logger.warning("webhook delivery %s attempt failed: %s", delivery.public_id, error)
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        WebhookAttempt.objects.create(
            delivery=locked,
            number=WebhookAttempt.objects.filter(delivery=locked).count() + 1,
            started_at=claimed_at,
            duration_ms=duration,
            status_code=status_code,
            error=error,
            response_body=answer[: transport.RESPONSE_KEEP_BYTES],
            succeeded=not error,
        )
        if locked.status != WebhookDelivery.Status.SENDING or locked.claimed_at != claimed_at:
            return locked  # released meanwhile (judged interrupted): the attempt is kept
        locked.attempts += 1
        locked.claimed_at = None
        locked.last_status_code = status_code
        locked.last_error = error
        delays = selectors.retry_delays()
        if not error:
            locked.status = WebhookDelivery.Status.SUCCEEDED
            locked.delivered_at = timezone.now()
            locked.next_attempt_at = None
        elif error == "the endpoint is disabled" or locked.attempts > len(delays):
            locked.status = WebhookDelivery.Status.FAILED
            locked.next_attempt_at = None
        else:
            locked.status = WebhookDelivery.Status.PENDING
            locked.next_attempt_at = timezone.now() + datetime.timedelta(
                seconds=delays[locked.attempts - 1]
            )
            dispatch.enqueue(locked.pk, eta=locked.next_attempt_at)
        locked.save()
        if locked.status == WebhookDelivery.Status.FAILED:
            _give_up(locked, delivery.endpoint, error)
    return locked


def _give_up(delivery: WebhookDelivery, endpoint: WebhookEndpoint, error: str) -> None:
    record(
        "webhooks.delivery_given_up",
        actor=SYSTEM,
        obj=endpoint,
        delivery=delivery.public_id,
        event=delivery.event.public_id,
        attempts=delivery.attempts,
        error=error,
    )
    if endpoint.active:
        raise_security_alert(
            kind=GIVEN_UP_ALERT,
            summary="A webhook delivery was given up after its last retry",
            detail=f"delivery {delivery.public_id} to endpoint {endpoint.public_id}: {error}",
            by=SYSTEM,
        )


def replay_webhook_delivery(
    delivery: WebhookDelivery, *, by: Person, request: HttpRequest | None = None
) -> WebhookDelivery:
    """Send a delivered or given-up delivery again, now (its retries start again); never
    one that is still on its way, nor to a disabled endpoint."""
    _allow(by, REPLAY_PERMISSION, request, step_up=False)
    with transaction.atomic():
        locked = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "event")
            .get(pk=delivery.pk)
        )
        if locked.status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING):
            raise WebhookError(
                f"delivery {locked.public_id} is still {locked.status}", field="status"
            )
        if not locked.endpoint.active:
            raise WebhookError("the endpoint is disabled; enable it first", field="endpoint")
        previous = locked.status
        locked.status = WebhookDelivery.Status.PENDING
        locked.attempts = 0
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "attempts", "next_attempt_at"])
        record(
            "webhooks.delivery_replayed",
            actor=by,
            obj=locked.endpoint,
            request=request,
            delivery=locked.public_id,
            event=locked.event.public_id,
            previous_status=previous,
        )
        dispatch.enqueue(locked.pk)
    return locked


def send_due_webhook_deliveries(*, now: datetime.datetime | None = None) -> int:
    """The schedule's safety net: a send claimed longer than WEBHOOKS_SENDING_TIMEOUT_SECONDS
    ago with no outcome (its worker died) goes back to pending; then every pending
    delivery whose time has come is attempted. The number attempted."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=int(settings.WEBHOOKS_SENDING_TIMEOUT_SECONDS))
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lte=stale
    ).update(status=WebhookDelivery.Status.PENDING, claimed_at=None, next_attempt_at=now)
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).order_by("next_attempt_at")
    count = 0
    for delivery_id in due.values_list("pk", flat=True)[:500]:
        attempt_webhook_delivery(delivery_id)
        count += 1
    return count


__all__ = [
    "InvalidEndpointUrl",
    "attempt_webhook_delivery",
    "create_webhook_endpoint",
    "replay_webhook_delivery",
    "roll_webhook_secret",
    "send_due_webhook_deliveries",
    "update_webhook_endpoint",
]
