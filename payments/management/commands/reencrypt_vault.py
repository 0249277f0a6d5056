"""manage.py reencrypt_vault: move records off decrypt-only DEKs, then destroy those DEKs."""

from __future__ import annotations

from typing import Any

from payments.vault.commands import VaultCommand
from payments.vault.services import reencrypt_vault


class Command(VaultCommand):
    help = "Re-encrypt records under decrypt-only data keys and destroy those keys."

    def handle(self, *args: Any, **options: Any) -> None:
        report = reencrypt_vault(by=self.actor(options), progress=self.progress)
        destroyed = ", ".join(report.destroyed) or "-"
        self.stdout.write(
            f"Re-encrypted {report.reencrypted} record(s); destroyed "
            f"{len(report.destroyed)} data key(s): {destroyed}."
        )
        for key_id, left in report.still_pending.items():
            self.stdout.write(f"Data key {key_id} kept: {left} record(s) were busy; run again.")
