"""Incidents and their timelines (models of the audit app; see audit/models.py)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q


class Incident(models.Model):
    """A security incident from detection to closure (docs/incident-response.md).

    Written only by ``audit.incidents.services``. ``detector_key`` names the detector
    (and what it watched) that opened it: while such an incident is open, the detector
    firing again adds to its timeline instead of opening another.
    """

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        DETECTED = "detected", "Detected"
        TRIAGED = "triaged", "Triaged"
        CONTAINED = "contained", "Contained"
        ERADICATED = "eradicated", "Eradicated"
        RECOVERED = "recovered", "Recovered"
        CLOSED = "closed", "Closed"

    class Kind(models.TextChoices):
        CARD_DATA_EXPOSURE = "card_data_exposure", "Card data exposure"
        ACCOUNT_TAKEOVER = "account_takeover", "Account takeover"
        KEY_COMPROMISE = "key_compromise", "Key compromise"
        FRAUD_WAVE = "fraud_wave", "Fraud wave"
        DATA_LOSS = "data_loss", "Data loss"
        RANSOMWARE = "ransomware", "Ransomware"
        AUDIT_TAMPERING = "audit_tampering", "Audit log tampering"
        OTHER = "other", "Other"

    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices, default=Kind.OTHER)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.DETECTED, editable=False
    )
    detector_key = models.CharField(max_length=100, blank=True, editable=False)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The security officer who leads the response.",
    )
    opened_by = models.CharField(max_length=200, editable=False)
    detected_at = models.DateTimeField(editable=False, db_index=True)
    triaged_at = models.DateTimeField(null=True, blank=True, editable=False)
    contained_at = models.DateTimeField(null=True, blank=True, editable=False)
    eradicated_at = models.DateTimeField(null=True, blank=True, editable=False)
    recovered_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # No foreign-key constraint on the append-only event table: a constraint would make
    # the trigger's own refusals (TRUNCATE) and the verifier's gap reports depend on it.
    audit_events = models.ManyToManyField(
        "audit.AuditEvent",
        blank=True,
        related_name="+",
        db_constraint=False,
        help_text="Evidence in the audit log.",
    )
    affected_customers = models.ManyToManyField("billing.Customer", blank=True, related_name="+")

    class Meta:
        ordering = ["-detected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["detector_key"],
                condition=~Q(status="closed") & ~Q(detector_key=""),
                name="audit_incident_one_open_per_detector",
            )
        ]
        permissions = [
            ("contain_incident", "Can take containment actions (step-up)"),
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk} {self.title}"

    @property
    def time_to_contain(self) -> datetime.timedelta | None:
        return self.contained_at - self.detected_at if self.contained_at else None

    @property
    def time_to_close(self) -> datetime.timedelta | None:
        return self.closed_at - self.detected_at if self.closed_at else None


class IncidentEntry(models.Model):
    """One line of an incident's timeline: a note, a status change, a containment action or
    a detector firing again. Never changed once written."""

    class Kind(models.TextChoices):
        DETECTION = "detection", "Detection"
        NOTE = "note", "Note"
        STATUS = "status", "Status change"
        CONTAINMENT = "containment", "Containment action"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="entries")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField()
    author = models.CharField(max_length=200)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name_plural = "incident entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.text[:60]}"
