"""The risk engine's tables: its decisions' vocabulary and the thresholds fraud analysts edit."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskDecision(models.TextChoices):
    """What the risk engine decides for a card payment attempt (``Payment.risk_decision``)."""

    ALLOW = "allow", "Allow"
    REVIEW = "review", "Review (held for a fraud analyst)"
    BLOCK = "block", "Block"


def default_new_card_limits() -> dict[str, int]:
    """Review a new card above 10,000.00 SEK, 1,000.00 EUR or 1,000.00 USD (minor units)."""
    return {"SEK": 1_000_000, "EUR": 100_000, "USD": 100_000}


def default_min_card_amounts() -> dict[str, int]:
    """The smallest card payment: 10.00 SEK, 1.00 EUR, 1.00 USD (minor units), unless it
    pays the whole amount left."""
    return {"SEK": 1_000, "EUR": 100, "USD": 100}


class RiskSettings(models.Model):
    """The risk rules' thresholds: one row (pk 1), changed only through
    ``payments.fraud.services.update_risk_settings`` (validated and audited)."""

    SINGLETON_PK = 1

    max_failed_attempts = models.PositiveSmallIntegerField(
        default=5,
        help_text=(
            "Block a card (by its fingerprint) or a customer with more than this many failed"
            " card payments in the last hour."
        ),
    )
    new_card_limits = models.JSONField(
        default=default_new_card_limits,
        help_text=(
            "Per currency: a payment above this amount on a new card waits for a fraud analyst."
            " A currency without a limit is never held for this reason."
        ),
    )
    max_new_cards_per_customer = models.PositiveSmallIntegerField(
        default=3,
        help_text=(
            "Card testing: more different cards than this added for one customer in the last"
            " hour blocks the attempt and holds the customer's card payments for review."
        ),
    )
    max_new_cards_per_address = models.PositiveSmallIntegerField(
        default=5,
        help_text=(
            "Card testing: more different cards than this paid with from one network address"
            " in the last hour blocks the attempt and holds that address for review."
        ),
    )
    min_card_amounts = models.JSONField(
        default=default_min_card_amounts,
        help_text=(
            "Per currency: the smallest card payment, unless it pays the whole amount left"
            " (card testers try tiny amounts)."
        ),
    )
    updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"

    def __str__(self) -> str:
        return "Risk thresholds"


class RiskHold(models.Model):
    """Card payments of a customer or from a network address held after a card-testing
    burst: every attempt is blocked until a fraud analyst lifts the hold
    (``payments.fraud.services.lift_risk_hold``)."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        ADDRESS = "address", "Network address"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    address = models.CharField(max_length=45, blank=True)
    rule = models.CharField(max_length=40)
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    lift_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(lifted_at__isnull=True, kind="customer"),
                name="payments_riskhold_one_active_per_customer",
            ),
            models.UniqueConstraint(
                fields=["address"],
                condition=models.Q(lifted_at__isnull=True, kind="address"),
                name="payments_riskhold_one_active_per_address",
            ),
        ]

    def __str__(self) -> str:
        held = self.customer if self.kind == self.Kind.CUSTOMER else self.address
        state = "lifted" if self.lifted_at else "active"
        return f"hold on {held} ({self.rule}, {state})"
