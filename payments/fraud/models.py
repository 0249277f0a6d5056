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
