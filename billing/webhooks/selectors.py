"""Reads of webhooks: the secrets that sign now, the backoff schedule, a customer's events."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from billing.models import Customer
from billing.selectors import customer_for_user
from billing.webhooks import keys
from billing.webhooks.models import Event, WebhookEndpoint


def signing_secrets(endpoint: WebhookEndpoint, now: datetime.datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, then the previous one
    while a roll's overlap lasts."""
    found = [
        keys.open_sealed(
            endpoint.secret_sealed,
            version=endpoint.secret_kek_version,
            public_id=endpoint.public_id,
        )
    ]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed is not None and expires is not None and expires > now:
        assert endpoint.previous_secret_kek_version is not None
        found.append(
            keys.open_sealed(
                endpoint.previous_secret_sealed,
                version=endpoint.previous_secret_kek_version,
                public_id=endpoint.public_id,
                slot="previous",
            )
        )
    return found


def retry_delays() -> list[int]:
    """Seconds to wait after failed attempt 1, 2, ...: WEBHOOKS_RETRY_SECONDS doubled each
    time, at most WEBHOOKS_RETRY_MAX_SECONDS, as many as fit in WEBHOOKS_RETRY_HOURS.
    After the last, the delivery is given up."""
    delay, cap = int(settings.WEBHOOKS_RETRY_SECONDS), int(settings.WEBHOOKS_RETRY_MAX_SECONDS)
    budget = int(settings.WEBHOOKS_RETRY_HOURS) * 3600
    delays: list[int] = []
    while sum(delays) + min(delay, cap) <= budget:
        delays.append(min(delay, cap))
        delay *= 2
    return delays


def payload(event: Event) -> bytes:
    """The body every delivery of the event POSTs (the same bytes for every attempt)."""
    document: dict[str, Any] = {
        "id": event.public_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "customer": event.customer_id,
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def events_of_customer(customer: Customer) -> QuerySet[Event]:
    """A customer's events, newest first."""
    return Event.objects.filter(customer=customer).order_by("-id")


def endpoint_deliveries_summary(endpoint: WebhookEndpoint) -> dict[str, int]:
    """How many of the endpoint's deliveries are in each state."""
    from django.db.models import Count

    rows = endpoint.deliveries.values("status").annotate(count=Count("id"))
    return {row["status"]: row["count"] for row in rows}


def kek_versions_in_use() -> set[int]:
    """The keyring's KEK versions some endpoint's secret is sealed under: retiring one of
    them would make the secret unreadable (the vault's KEK retirement spares them)."""
    current = set(WebhookEndpoint.objects.values_list("secret_kek_version", flat=True))
    previous = WebhookEndpoint.objects.filter(previous_secret_sealed__isnull=False)
    earlier = set(previous.values_list("previous_secret_kek_version", flat=True))
    return {version for version in current | earlier if version is not None}


VIEW_EVENTS_PERMISSION = "webhooks.view_event"


def events_visible_to(user: Any) -> QuerySet[Event]:
    """The events an API principal may read, newest first: a customer user's own
    customer's; every customer's for an account holding ``webhooks.view_event`` (an
    integration whose client holds ``events:read``); none otherwise."""
    customer = customer_for_user(user)
    if customer is not None:
        return events_of_customer(customer)
    if getattr(user, "is_active", False) and user.has_perm(VIEW_EVENTS_PERMISSION):
        return Event.objects.order_by("-id")
    return Event.objects.none()
