"""Backup runs and restore tests (app label ``audit``; imported by ``audit.models``)."""

from __future__ import annotations

from django.db import models


class BackupRun(models.Model):
    """One backup (data or keys): where it is, what it holds, whether it succeeded.

    Written only by ``audit.backups.services``; the files themselves live under
    ``BACKUP_DIR`` (``path``), encrypted, beside their signed manifest.
    """

    class Kind(models.TextChoices):
        DATA = "data", "Database and media"
        KEYS = "keys", "Key material"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted by retention"

    name = models.CharField(max_length=100, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, editable=False)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.RUNNING, editable=False
    )
    path = models.CharField(max_length=500, editable=False)
    started_at = models.DateTimeField(editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    size_bytes = models.BigIntegerField(default=0, editable=False)
    manifest_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    recipients = models.JSONField(default=list, editable=False)
    error = models.CharField(max_length=1000, blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["kind", "status", "-started_at"], name="audit_backup_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class RestoreTest(models.Model):
    """One automatic restore of a backup into a scratch database, and what its checks found."""

    backup = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="restore_tests"
    )
    backup_name = models.CharField(max_length=100, blank=True, editable=False)
    started_at = models.DateTimeField(editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    passed = models.BooleanField(null=True, editable=False)
    checks = models.JSONField(
        default=list, editable=False, help_text="[{name, ok, detail}] in the order they ran."
    )
    keys_source = models.CharField(max_length=200, blank=True, editable=False)
    error = models.CharField(max_length=1000, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        outcome = {True: "passed", False: "failed", None: "running"}[self.passed]
        return f"restore test of {self.backup_name or '—'} ({outcome})"
