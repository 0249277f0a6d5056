"""What the operators' management commands share: the operator named in the audit log
(``--actor USERNAME``, default the system) and progress lines."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM


class OperatorCommand(BaseCommand):
    """Adds ``--actor USERNAME`` (the operator recorded in the audit log; default system)."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            default="",
            help="username of the operator to record in the audit log (default: system)",
        )

    def actor(self, options: dict[str, Any]) -> Any:
        username = options.get("actor") or ""
        if not username:
            return SYSTEM
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--actor: no active user named {username!r}")
        return user

    def progress(self, line: str) -> None:
        self.stdout.write(f"  {line}")
