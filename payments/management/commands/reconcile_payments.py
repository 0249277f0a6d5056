"""Settle unknown payments by status lookup at the gateway (also scheduled every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit import SYSTEM
from payments.services import reconcile_payments


class Command(BaseCommand):
    help = "Ask the gateway about unknown and stale pending payments; retry pending refunds."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = reconcile_payments(by=SYSTEM)
        self.stdout.write(
            f"checked {counts['checked']} payment(s), settled {counts['settled']},"
            f" retried {counts['refunds_retried']} refund(s)"
        )
