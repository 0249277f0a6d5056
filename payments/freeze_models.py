"""The card-payment freeze (an incident's containment): one row per freeze, kept after it is
lifted so the review and the audit log can show when card payments were stopped."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class CardPaymentFreeze(models.Model):
    """While a row is ``active`` (not lifted), no card payment starts (``payments.freeze``)."""

    active = models.BooleanField(default=True, editable=False)
    reason = models.CharField(max_length=300)
    frozen_at = models.DateTimeField()
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-frozen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=Q(active=True),
                name="payments_one_active_card_freeze",
            ),
            models.CheckConstraint(
                condition=Q(active=True, lifted_at__isnull=True)
                | Q(active=False, lifted_at__isnull=False),
                name="payments_card_freeze_lifted_when_inactive",
            ),
        ]

    def __str__(self) -> str:
        state = "lifted" if self.lifted_at else "active"
        return f"card payment freeze of {self.frozen_at:%Y-%m-%d %H:%M} ({state})"
