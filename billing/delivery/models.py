"""Delivery records: customers' PGP keys, deliveries with every attempt, single-use links.

A link's token is never stored: only its SHA-256. Deliveries and attempts stay
(failed ones visible and retryable in the admin); state changes go through
``billing.delivery.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice


class CustomerPgpKey(models.Model):
    """A customer's OpenPGP public key: invoices to it go out PGP/MIME encrypted."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="pgp_key")
    fingerprint = models.CharField(max_length=64, editable=False)
    user_ids = models.CharField(max_length=500, blank=True, editable=False)
    public_key = models.TextField(editable=False, help_text="ASCII-armored public key.")
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = "customer PGP key"

    def __str__(self) -> str:
        return f"{self.customer}: {self.fingerprint}"


class Delivery(models.Model):
    """One document (or reminder) to send to one customer, tried until sent or given up."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        REMINDER = "reminder", "Overdue reminder"
        RECEIPT = "receipt", "Payment receipt"
        REFUND = "refund", "Refund receipt"
        REOPENED = "reopened", "Invoice reopened (a payment was reversed)"

    class Channel(models.TextChoices):
        PGP = "pgp", "PGP/MIME email with the signed PDF"
        LINK = "link", "Email with a single-use portal link"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (retry from the admin)"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")
    document = models.ForeignKey(
        InvoiceDocument, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INVOICE)
    channel = models.CharField(max_length=10, choices=Channel.choices, editable=False)
    recipient = models.EmailField(editable=False)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, editable=False
    )
    attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]
        constraints = [
            # A paid invoice's receipt is queued once, however many jobs race to queue it.
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(kind="receipt"), name="delivery_one_receipt"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.invoice} → {self.recipient} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, and what the mail server answered."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    succeeded = models.BooleanField()
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {'sent' if self.succeeded else self.error}"


class InvoiceLinkQuerySet(models.QuerySet["InvoiceLink"]):
    def usable(self, now: object) -> InvoiceLinkQuerySet:
        return self.filter(used_at__isnull=True, expires_at__gt=now)


class InvoiceLink(models.Model):
    """A single-use, expiring link to an invoice in the portal; only the token's hash is kept.

    Opening it still needs the customer's login (and second factor)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="links")
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="links"
    )
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects = InvoiceLinkQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="delivery_link_expires"
            )
        ]

    def __str__(self) -> str:
        return f"link to {self.invoice} (expires {self.expires_at:%Y-%m-%d})"
