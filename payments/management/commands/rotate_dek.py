"""manage.py rotate_dek: make a new data key active now; queue re-encryption."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from payments.vault.commands import VaultCommand
from payments.vault.services import reencrypt_vault, rotate_data_key


class Command(VaultCommand):
    help = "Make a new data key (DEK) active; the old one turns decrypt-only."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--reencrypt",
            action="store_true",
            help="also re-encrypt now and destroy the retired key (else the job does it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        by = self.actor(options)
        key = rotate_data_key(by=by)
        self.stdout.write(f"Active data key is now {key.hex_id} (KEK version {key.kek_version}).")
        if options["reencrypt"]:
            report = reencrypt_vault(by=by, progress=self.progress)
            self.stdout.write(
                f"Re-encrypted {report.reencrypted} record(s); destroyed "
                f"{', '.join(report.destroyed) or 'no key'}."
            )
        else:
            self.stdout.write("Re-encryption of older keys' records is queued (reencrypt_vault).")
