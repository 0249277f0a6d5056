"""manage.py sync_roles: make the role groups hold exactly the matrix in security/roles.py."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit import SYSTEM
from security.services import sync_roles


class Command(BaseCommand):
    help = "Create the role groups and give each exactly the permissions of security/roles.py."

    def handle(self, *args: Any, **options: Any) -> None:
        report = sync_roles(by=SYSTEM)
        for role, changes in report.items():
            line = f"{role}: +{len(changes['added'])} -{len(changes['removed'])}"
            if changes["missing"]:
                line += f" (skipped, model not installed: {', '.join(changes['missing'])})"
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Roles match the matrix."))
