"""manage.py disable_dormant_staff: deactivate staff unused for SECURITY_DORMANT_STAFF_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit import SYSTEM
from security.services import disable_dormant_staff


class Command(BaseCommand):
    help = "Deactivate staff accounts with no login for 90 days (runs daily via django-q2)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = disable_dormant_staff(by=SYSTEM)
        self.stdout.write(f"Disabled {count} dormant staff account(s).")
