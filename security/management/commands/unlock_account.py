"""manage.py unlock_account NAME: lift a lockout from the server console (audited as system)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from security.services import unlock_account


class Command(BaseCommand):
    help = "Lift the login lockout of a login name (the web page for officers needs step-up)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = unlock_account(username=options["username"], by=SYSTEM, request=None)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Lockout lifted ({count} attempt record(s) cleared).")
