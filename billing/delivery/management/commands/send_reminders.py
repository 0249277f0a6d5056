"""Queue reminders for overdue invoices (also scheduled daily by django-q2)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit import SYSTEM
from billing.delivery import services


class Command(BaseCommand):
    help = "Queue one reminder per overdue invoice not reminded in DELIVERY_REMINDER_DAYS."

    def handle(self, *args: Any, **options: Any) -> None:
        count = services.send_overdue_reminders(by=SYSTEM)
        self.stdout.write(f"{count} reminders queued.")
