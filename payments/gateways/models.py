"""The sandbox acquirer's own ledger: what it charged, keyed by the idempotency key.

This table belongs to the acquirer, not to the platform: the platform never
writes it. Only ``payments.gateways.sandbox`` does, in its own transactions, as
a real acquirer would on its side. That is how a status lookup can find a
charge the platform never heard about (the timeout card).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SandboxCharge(models.Model):
    """One charge at the sandbox acquirer."""

    class Outcome(models.TextChoices):
        CAPTURED = "captured", "Captured"
        DECLINED = "declined", "Declined"

    # Unique by constraints below (no unused LIKE index twins on random keys).
    idempotency_key = models.CharField(max_length=100)
    reference = models.CharField(max_length=40)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    card_last4 = models.CharField(max_length=4)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    decline_code = models.CharField(max_length=40, blank=True)
    refunded_amount = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sandbox acquirer charge"
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="payments_sbxcharge_key_uniq"),
            models.UniqueConstraint(fields=["reference"], name="payments_sbxcharge_ref_uniq"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="payments_sandboxcharge_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.outcome})"


class SandboxRefund(models.Model):
    """One refund at the sandbox acquirer, keyed by its idempotency key."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    charge = models.ForeignKey(SandboxCharge, on_delete=models.PROTECT, related_name="refunds")
    reference = models.CharField(max_length=40, unique=True)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sandbox acquirer refund"

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"
