"""Webhook errors: each names its field or rule (billing's hierarchy)."""

from __future__ import annotations

from billing.exceptions import BillingError


class WebhookError(BillingError):
    """Base of every webhook error."""


class InvalidEndpointUrl(WebhookError):
    """A URL that is malformed, not HTTPS where HTTPS is required, or that points at a
    private, loopback or otherwise internal address (server-side request forgery)."""

    field = "url"


class UnknownEventType(WebhookError):
    """An event type that Tillit does not emit."""

    field = "events"


class WebhookRefused(WebhookError):
    """The actor lacks the permission (or a fresh second factor) for this change."""

    field = "user"
