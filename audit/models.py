"""The audit event table (append-only, hash-chained) and its signed checkpoints."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One entry of the chain. Rows are written only by ``audit.record``.

    On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on this table.
    ``created_at`` carries a B-tree index: the admin opens on the last three
    months and every time filter and the archive's period scan use it.
    """

    seq = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=64)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    # Text, not inet: the chain hashes the address exactly as stored.
    ip = models.CharField(max_length=45, null=True, blank=True)  # noqa: DJ001
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            models.Index(fields=["action"], name="audit_action_idx"),
        ]
        # Plain B-tree indexes, without Django's second varchar_pattern_ops index
        # for LIKE 'prefix%' (nothing searches these by prefix), and none on ``hash``
        # (nothing looks an event up by it; the chain's links, checked by the
        # verifier, are what make a hash trustworthy): each index costs every append
        # (docs/decisions.md 18).

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def hashed_fields(self) -> dict[str, object]:
        """The values the chain hashes, in the form ``audit.chain`` expects."""
        return {
            "seq": self.seq,
            "created_at": self.created_at,
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }


class AuditCheckpoint(models.Model):
    """An Ed25519 signature over the chain's head (seq and hash) at one moment.

    Written only by ``audit.services.create_checkpoint``; append-only like the
    events (same trigger). The private key never enters the database: the row
    holds the public key so a verifier can tell which key signed it.
    """

    seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    key_id = models.CharField(max_length=64, db_index=True)
    public_key = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


class ChainVerification(models.Model):
    """One verification of the whole chain, whichever path ran it: asked for from the admin
    ("Verify the chain now", queued, then run by a background job that records its progress
    here), ``manage.py verify_audit``, the scheduled detector, or a quarterly review being
    generated. The one source of "the last chain verification" for the dashboards, the
    review and the detectors (``audit.selectors.last_chain_verification``); each finished
    one is also recorded in the chain as an ``audit.chain_verified`` event. Written only by
    ``audit.verification``."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        PASSED = "passed", _("Chain intact")
        FAILED = "failed", _("Chain broken")
        ERROR = "error", _("Could not finish")

    class Source(models.TextChoices):
        ADMIN = "admin", _("Admin")
        COMMAND = "command", _("manage.py verify_audit")
        SCHEDULE = "schedule", _("Scheduled check")
        REVIEW = "review", _("Quarterly review")

    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    requested_by = models.CharField(max_length=200)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    events_total = models.BigIntegerField(default=0)
    events_checked = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    checkpoints = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    first_problem = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"chain verification #{self.pk} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.PASSED, self.Status.FAILED, self.Status.ERROR)

    @property
    def percent(self) -> int:
        """How far the job has read, 0-100."""
        if self.is_finished:
            return 100
        if not self.events_total:
            return 0
        return min(100, self.events_checked * 100 // self.events_total)


# Registered with the app here: the backups and governance sub-packages keep their models
# next to their code; Django finds them here.
from audit.backups.models import BackupRun, RestoreTest  # noqa: E402
from audit.incidents.models import Incident, IncidentEntry  # noqa: E402
from audit.reviews.models import ReviewFinding, SecurityReview  # noqa: E402

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "BackupRun",
    "ChainVerification",
    "Incident",
    "IncidentEntry",
    "RestoreTest",
    "ReviewFinding",
    "SecurityReview",
]
