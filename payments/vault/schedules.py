"""The vault's django-q2 schedules, registered idempotently after every migrate."""

from __future__ import annotations

from typing import Any

from audit.schedules import ensure_schedule

VAULT_SCHEDULES = {
    # Checks hourly; rotates when the active key's cryptoperiod
    # (VAULT_DEK_ROTATION_HOURS, VAULT_ENTRY_KEY_ROTATION_HOURS) has run out, so a
    # stopped cluster catches up at once instead of drifting a whole period.
    "vault.rotate_due_keys": "payments.vault.tasks.rotate_due_keys_task",
}


def register_vault_schedules(**_: Any) -> int:
    """Create or update the vault's schedules; safe to run any number of times."""
    from django.conf import settings
    from django_q.models import Schedule

    for name, func in VAULT_SCHEDULES.items():
        # It re-encrypts every record of a retired key: a long job.
        ensure_schedule(
            name, func=func, schedule_type=Schedule.HOURLY, timeout=settings.Q_LONG_TIMEOUT
        )
    return len(VAULT_SCHEDULES)
