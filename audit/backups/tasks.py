"""Background jobs (django-q2) of backups: thin wrappers around services."""

from __future__ import annotations

from audit import SYSTEM
from audit.backups.services import apply_retention, create_backup, run_restore_test


def scheduled_backup() -> str:
    """The scheduled backup, then retention (only after a backup succeeded)."""
    run = create_backup(by=SYSTEM)
    deleted = apply_retention(by=SYSTEM)
    return f"{run.name}; {len(deleted)} old backups deleted"


def scheduled_restore_test() -> str:
    test = run_restore_test(by=SYSTEM)
    return f"{test.backup_name}: {'passed' if test.passed else 'FAILED'}"
