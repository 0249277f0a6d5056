"""Webhook records: endpoints staff register, the event log, deliveries with every attempt.

An endpoint's signing secret is never stored in clear: it is sealed with the platform's
keyring (AES-256-GCM under a KEK kept outside the database, the endpoint's id bound as
associated data; ``billing.webhooks.keys``). During a roll the previous secret stays,
sealed too, until ``previous_secret_expires_at``. State changes go through
``billing.webhooks.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from billing.models import Customer


class WebhookEndpoint(models.Model):
    """A receiver's URL and the event types it wants, signed with its own secret."""

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types sent to this URL.")
    active = models.BooleanField(default=True)
    # The secret sealed by the keyring: KEK version and nonce || ciphertext || tag.
    secret_kek_version = models.PositiveIntegerField(editable=False)
    secret_sealed = models.BinaryField(editable=False)
    secret_created_at = models.DateTimeField(editable=False)
    previous_secret_kek_version = models.PositiveIntegerField(null=True, editable=False)
    previous_secret_sealed = models.BinaryField(null=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook endpoint"
        permissions = [("roll_webhook_secret", "Can roll a webhook endpoint's secret")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"


class Event(models.Model):
    """Something that happened to a customer's invoice or payment, as a JSON snapshot
    (ids, numbers, amounts, states; never a card number or a secret)."""

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    type = models.CharField(max_length=60, editable=False)
    created_at = models.DateTimeField(editable=False)
    customer = models.ForeignKey(
        Customer, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    object_id = models.CharField(max_length=60, editable=False)
    data = models.JSONField(editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["customer", "-id"], name="webhooks_event_customer")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class WebhookDelivery(models.Model):
    """One event sent to one endpoint, tried with backoff until a 2xx or given up."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        # Claimed by one worker, which is posting it now (services.attempt_webhook_delivery).
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed (given up)"

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        permissions = [("replay_webhook_delivery", "Can send a webhook delivery again")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhooks_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: the receiver's status code (or the error), how long it took,
    and the start of its answer (truncated; shown escaped)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_body = models.CharField(max_length=1000, blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
