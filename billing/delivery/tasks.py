"""Background jobs (django-q2) of delivery: one attempt per job; reminders on schedule."""

from __future__ import annotations

from audit import SYSTEM
from billing.delivery import services


def attempt_delivery_job(delivery_id: int) -> str:
    """One attempt; a failure schedules the next one itself (exponential backoff)."""
    return str(services.attempt_delivery(delivery_id, by=SYSTEM).status)


def send_due_deliveries_job() -> int:
    """Safety net: attempt queued deliveries whose time has come (e.g. after a restart)."""
    return services.send_due_deliveries(by=SYSTEM)


def send_overdue_reminders_job() -> int:
    return services.send_overdue_reminders(by=SYSTEM)
