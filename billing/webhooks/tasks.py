"""Background jobs (django-q2) of webhooks: one attempt of a delivery; the safety net."""

from __future__ import annotations

from billing.webhooks import services


def attempt_webhook_delivery_job(delivery_id: int) -> str:
    """One attempt; a failure schedules the next one itself (backoff, up to three days)."""
    return str(services.attempt_webhook_delivery(delivery_id).status)


def send_due_webhook_deliveries_job() -> int:
    return services.send_due_webhook_deliveries()
