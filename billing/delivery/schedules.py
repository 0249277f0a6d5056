"""Delivery's django-q2 schedules, registered idempotently after every migrate."""

from __future__ import annotations

from typing import Any

from audit.schedules import ensure_schedule

DELIVERY_SCHEDULES = {
    # Overdue reminders once a day (each invoice at most every DELIVERY_REMINDER_DAYS).
    "delivery.send_overdue_reminders": ("billing.delivery.tasks.send_overdue_reminders_job", "D"),
    # Safety net for retries whose one-off schedule was lost (e.g. a restored database).
    "delivery.send_due_deliveries": ("billing.delivery.tasks.send_due_deliveries_job", "H"),
}


def register_delivery_schedules(**_: Any) -> int:
    """Create or update delivery's schedules; safe to run any number of times."""
    for name, (func, kind) in DELIVERY_SCHEDULES.items():
        ensure_schedule(name, func=func, schedule_type=kind)
    return len(DELIVERY_SCHEDULES)
