"""Is the vault readable after a restore? One card per data key in use, opened in memory.

Called by the backup restore test (``audit.backups``) in the process that runs on the
restored database with the restored keyring. Nothing is written, logged or returned of
a card: only whether it opened and, if not, which data key failed.
"""

from __future__ import annotations

from payments.vault import crypto
from payments.vault.exceptions import VaultError
from payments.vault.keys import unwrap_data_key
from payments.vault.models import DataKey
from payments.vault.secret_store import one_secret_under


def stored_cards_open() -> tuple[bool, str]:
    """(True, summary) when one stored card per data key in use decrypts with the keyring."""
    opened = 0
    for key in DataKey.objects.exclude(state=DataKey.State.DESTROYED):
        secret = one_secret_under(key)
        if secret is None:
            continue
        try:
            crypto.open_sealed(
                secret.sealed(), key=unwrap_data_key(key), key_id=key.id, token=secret.token
            )
        except VaultError as exc:
            return False, f"data key {key.hex_id}: {exc}"
        opened += 1
    return True, f"{opened} data key(s) in use, one card each opened"


def register() -> None:
    """The vault's part of the backup restore test (audit.backups.probes)."""
    from audit.backups.probes import register_probe

    register_probe("stored cards decrypt", check=lambda _: stored_cards_open())
