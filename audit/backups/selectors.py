"""Reads of backups and restore tests (the quarterly review's Backups section uses these)."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.backups.models import BackupRun, RestoreTest


def latest_backup_runs(*, kind: str | None = None, limit: int = 10) -> QuerySet[BackupRun]:
    """The newest backup runs (every status), newest first; of one kind when given."""
    runs = BackupRun.objects.all()
    if kind is not None:
        runs = runs.filter(kind=kind)
    return runs.order_by("-started_at", "-pk")[:limit]


def latest_restore_test() -> RestoreTest | None:
    """The newest finished restore test, or None."""
    return (
        RestoreTest.objects.filter(passed__isnull=False)
        .select_related("backup")
        .order_by("-started_at", "-pk")
        .first()
    )
