"""Backups, restores, restore tests, key exports and retention: every write of backups.

- ``dump``: ``create_backup``, the data backup;
- ``keys``: ``export_keys``, the key backup;
- ``restore``: ``restore_backup``, ``restore_keys``;
- ``restore_test``: ``run_restore_test``;
- ``cleanup``: ``apply_retention``;
- ``runs``: what they share (the run record, its folder, the manifest check).

Each records what it did in the audit log; a backup or restore test that fails also
raises a security alert (the admin banner and an email to the security officers).
"""

from __future__ import annotations

from django.conf import settings

from audit.backups.services.cleanup import apply_retention, retention_policy
from audit.backups.services.dump import create_backup
from audit.backups.services.keys import export_keys
from audit.backups.services.restore import restore_backup, restore_keys
from audit.backups.services.restore_test import run_restore_test
from audit.backups.services.runs import BACKUP_FAILED_ALERT, RESTORE_TEST_FAILED_ALERT

__all__ = [
    "BACKUP_FAILED_ALERT",
    "RESTORE_TEST_FAILED_ALERT",
    "apply_retention",
    "create_backup",
    "export_keys",
    "register_backup_schedules",
    "restore_backup",
    "restore_keys",
    "retention_policy",
    "run_restore_test",
]


def register_backup_schedules() -> None:
    """The daily backup (then retention) and the daily restore test (django-q2)."""
    from django_q.models import Schedule

    from audit.schedules import ensure_schedule

    ensure_schedule(
        "audit.backup",
        func="audit.backups.tasks.scheduled_backup",
        schedule_type=Schedule.MINUTES,
        minutes=settings.BACKUP_SCHEDULE_MINUTES,
        timeout=settings.Q_LONG_TIMEOUT,
    )
    ensure_schedule(
        "audit.restore_test",
        func="audit.backups.tasks.scheduled_restore_test",
        schedule_type=Schedule.MINUTES,
        minutes=settings.BACKUP_RESTORE_TEST_MINUTES,
        timeout=settings.Q_LONG_TIMEOUT,
    )
