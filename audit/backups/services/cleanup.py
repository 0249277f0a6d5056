"""Retention of backups: daily, weekly, monthly; never the newest good one."""

from __future__ import annotations

import shutil

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import SYSTEM, record
from audit.backups.models import BackupRun, RestoreTest
from audit.backups.retention import RetentionPolicy, backups_to_keep
from audit.backups.services import runs


def retention_policy() -> RetentionPolicy:
    return RetentionPolicy(
        daily=settings.BACKUP_KEEP_DAILY,
        weekly=settings.BACKUP_KEEP_WEEKLY,
        monthly=settings.BACKUP_KEEP_MONTHLY,
    )


def _newest_good(kind: str) -> set[int]:
    """The newest succeeded backup and the newest one a restore test passed: never deleted."""
    keep: set[int] = set()
    newest = runs.latest_succeeded(kind)
    if newest is not None:
        keep.add(newest.pk)
    tested = (
        RestoreTest.objects.filter(
            passed=True, backup__status=BackupRun.Status.SUCCEEDED, backup__kind=kind
        )
        .order_by("-started_at")
        .values_list("backup_id", flat=True)
        .first()
    )
    if tested is not None:
        keep.add(tested)
    return keep


def apply_retention(
    *, by: runs.Actor = SYSTEM, progress: runs.Progress = runs.quiet
) -> list[BackupRun]:
    """Delete the backups the policy no longer keeps (files and all); the newest good backup
    of each kind always stays. Audited per deleted backup. Returns what was deleted."""
    policy = retention_policy()
    deleted: list[BackupRun] = []
    for kind in BackupRun.Kind.values:
        runs = list(
            BackupRun.objects.filter(kind=kind, status=BackupRun.Status.SUCCEEDED).values_list(
                "pk", "started_at"
            )
        )
        keep = backups_to_keep(runs, policy=policy) | _newest_good(kind)
        for pk, _started in runs:
            if pk in keep:
                continue
            with transaction.atomic():
                run = BackupRun.objects.select_for_update().get(pk=pk)
                if run.status != BackupRun.Status.SUCCEEDED:
                    continue
                shutil.rmtree(run.path, ignore_errors=True)
                run.status = BackupRun.Status.DELETED
                run.deleted_at = timezone.now()
                run.save(update_fields=["status", "deleted_at"])
                record("backup.deleted", actor=by, obj=run, name=run.name, kind=run.kind)
            progress(f"deleted {run.name}")
            deleted.append(run)
    return deleted
