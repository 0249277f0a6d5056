"""Privacy records: policy acceptances, data exports, erasure requests.

Written only by ``billing.privacy.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from billing.models import Customer


class PolicyAcceptance(models.Model):
    """A portal user accepted one version of the privacy policy (kept after erasure, by
    customer, without the user)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="policy_acceptances"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.CharField(max_length=20)
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="privacy_accept_once")
        ]

    def __str__(self) -> str:
        return f"policy {self.version} accepted {self.accepted_at:%Y-%m-%d}"


class DataExport(models.Model):
    """A customer's export: built by a job, downloadable once through an expiring link.

    Only the link token's SHA-256 is kept; the ZIP is erased once downloaded or expired.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Being prepared"
        READY = "ready", "Ready to download"
        DOWNLOADED = "downloaded", "Downloaded"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="data_exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    content = models.BinaryField(null=True, editable=False)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # NULL until the export is ready (unique among the links made).
    token_sha256 = models.CharField(max_length=64, unique=True, null=True, editable=False)  # noqa: DJ001
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="pending"),
                name="privacy_one_pending_export",
            ),
            models.CheckConstraint(
                condition=Q(content__isnull=True) | Q(status="ready"),
                name="privacy_export_content_only_while_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"export for customer {self.customer_id} ({self.status})"


class ErasureRequest(models.Model):
    """A customer's request to be erased; a security officer other than the one who
    recorded it approves (then the erasure runs) or rejects it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a security officer"
        COMPLETED = "completed", "Approved and carried out"
        REJECTED = "rejected", "Rejected"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="erasure_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, editable=False
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_note = models.CharField(max_length=300, blank=True, editable=False)
    pseudonym = models.CharField(
        max_length=64, blank=True, editable=False, help_text="Keyed hash kept for linking."
    )
    summary = models.JSONField(default=dict, editable=False, help_text="What was erased (counts).")

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="pending"),
                name="privacy_one_pending_erasure",
            ),
            models.CheckConstraint(
                condition=~Q(decided_by=F("requested_by")), name="privacy_erasure_four_eyes"
            ),
        ]
        permissions = [("decide_erasure", "Can approve or reject a customer's erasure")]

    def __str__(self) -> str:
        return f"erasure of customer {self.customer_id} ({self.status})"
