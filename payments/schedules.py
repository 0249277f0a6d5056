"""The payments schedules (django-q2), registered idempotently after every migrate."""

from __future__ import annotations

from typing import Any

from audit.schedules import ensure_schedule

# name -> (task, schedule type, minutes between runs for MINUTES schedules)
PAYMENTS_SCHEDULES: dict[str, tuple[str, str, int | None]] = {
    "payments.reconcile": ("payments.tasks.reconcile_payments_task", "I", 1),
    "payments.purge_idempotency_keys": ("payments.tasks.purge_idempotency_keys_task", "H", None),
    "payments.purge_fraud_velocity": ("payments.tasks.purge_fraud_velocity_task", "H", None),
    "payments.train_fraud_model": ("payments.tasks.train_fraud_model_task", "W", None),
}


def register_payments_schedules(**_: Any) -> int:
    """Create or update the payments schedules; safe to run any number of times."""
    for name, (func, schedule_type, minutes) in PAYMENTS_SCHEDULES.items():
        ensure_schedule(name, func=func, schedule_type=schedule_type, minutes=minutes)
    return len(PAYMENTS_SCHEDULES)
