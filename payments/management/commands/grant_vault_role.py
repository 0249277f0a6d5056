"""manage.py grant_vault_role: the card secrets table readable by the vault role only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from payments.vault.grants import grant_vault_role


class Command(BaseCommand):
    help = (
        "Revoke every privilege on the card secrets table from DATABASE_WEB_ROLE and grant"
        " it to VAULT_DATABASE_ROLE (as the migrations do). Run as the tables' owner."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = grant_vault_role(connections[DEFAULT_DB_ALIAS])
        if not report.applied:
            raise CommandError(report.message)
        self.stdout.write(report.message)
