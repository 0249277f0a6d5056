"""manage.py rotate_kek: rewrap every data key under a new KEK version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from payments.vault.commands import VaultCommand
from payments.vault.services import rotate_kek


class Command(VaultCommand):
    help = (
        "Create a new KEK version (file keyring) and rewrap every live data key and "
        "card-entry key under it. No card number is decrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--retire-old",
            action="store_true",
            help="afterwards remove KEK versions no key is wrapped under from the keyring",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = rotate_kek(
            by=self.actor(options), retire_old=options["retire_old"], progress=self.progress
        )
        self.stdout.write(
            f"KEK version {report.kek_version} ({'new' if report.created else 'existing'}): "
            f"rewrapped {report.data_keys} data key(s) and {report.entry_keys} card-entry key(s);"
            f" sealed {report.webhook_endpoints} webhook endpoint(s)' secrets again."
        )
        if report.retired_versions:
            self.stdout.write(f"Retired KEK version(s): {report.retired_versions}.")
