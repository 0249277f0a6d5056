"""Export the key material a restore needs, encrypted to BACKUP_KEYS_GPG_RECIPIENTS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import SYSTEM
from audit.backups.services import export_keys
from audit.exceptions import BackupError


class Command(BaseCommand):
    help = (
        "Write the keys (audit signing key and trust list, invoice signing key and"
        " passphrase, vault keyring, PGP home) to their own encrypted file, for recipients"
        " other than the data backup's. Keep it apart from the data backups."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = export_keys(by=SYSTEM, progress=self.stderr.write)
        except BackupError as exc:
            raise CommandError(f"key backup failed: {exc}") from exc
        self.stdout.write(
            f"OK: key backup {run.name} in {run.path} (encrypted to {', '.join(run.recipients)})"
        )
