"""Security reviews and their findings (models of the audit app; see audit/models.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SecurityReview(models.Model):
    """One generated review of a period: its sections as computed, its signed PDF and, once
    a security officer signs it off, immutable (``audit.reviews.services``; on PostgreSQL a
    trigger refuses any UPDATE or DELETE of a signed review, migration 0009)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (may be generated again)"
        SIGNED = "signed", "Signed off"

    period_start = models.DateField()
    period_end = models.DateField(help_text="The last day of the period (inclusive).")
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    sections = models.JSONField(default=dict, editable=False)
    generated_at = models.DateTimeField(editable=False)
    generated_by = models.CharField(max_length=200, editable=False)
    pdf = models.BinaryField(editable=False)
    pdf_sha256 = models.CharField(max_length=64, editable=False)
    signed_at = models.DateTimeField(null=True, blank=True, editable=False)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    sign_off_note = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-period_end", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["period_start", "period_end"], name="audit_review_one_per_period"
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")),
                name="audit_review_period_order",
            ),
        ]
        permissions = [
            ("generate_review", "Can generate a security review"),
            ("sign_off_review", "Can sign off a security review (step-up)"),
        ]

    def __str__(self) -> str:
        return f"Security review {self.label}"

    @property
    def label(self) -> str:
        start, end = self.period_start, self.period_end
        quarter = (start.month - 1) // 3 + 1
        if start.day == 1 and start.month == 3 * quarter - 2 and end.year == start.year:
            last = {1: (3, 31), 2: (6, 30), 3: (9, 30), 4: (12, 31)}[quarter]
            if (end.month, end.day) == last:
                return f"{start.year} Q{quarter}"
        return f"{start.isoformat()} to {end.isoformat()}"


class ReviewFinding(models.Model):
    """Something a review found that needs fixing: an owner, a due date, a status. Carried
    into every later review until closed."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        CLOSED = "closed", "Closed"

    review = models.ForeignKey(
        SecurityReview, on_delete=models.PROTECT, related_name="findings", editable=False
    )
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, editable=False
    )
    raised_at = models.DateTimeField(editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["due_date", "pk"]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"
