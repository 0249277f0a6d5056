"""Webhooks' django-q2 schedule, registered idempotently after every migrate."""

from __future__ import annotations

from typing import Any

from audit.schedules import ensure_schedule

WEBHOOK_SCHEDULES = {
    # Safety net: deliveries whose retry time has come (a lost one-off schedule, a restart,
    # the "sync" mode that has no queue), and sends whose worker died.
    "webhooks.send_due_deliveries": ("billing.webhooks.tasks.send_due_webhook_deliveries_job", 5),
}


def register_webhook_schedules(**_: Any) -> int:
    """Create or update webhooks' schedules; safe to run any number of times."""
    for name, (func, minutes) in WEBHOOK_SCHEDULES.items():
        ensure_schedule(name, func=func, schedule_type="I", minutes=minutes)
    return len(WEBHOOK_SCHEDULES)
