"""The vault's hourly job: rotate the keys that are due, expire old card-entry keys,
re-encrypt and destroy retired data keys, forget spent card-entry nonces, erase orphan
card secrets."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from payments.vault.models import DataKey, UsedEntryNonce
from payments.vault.services.key_rotation import (
    expire_entry_keys,
    rotate_data_key,
    rotate_entry_key,
)
from payments.vault.services.orphans import purge_orphan_secrets
from payments.vault.services.reencryption import reencrypt_vault
from security.actors import Actor


def _purge_spent_nonces() -> int:
    """Forget spent card-entry nonces older than their lifetime (their signature has
    expired, so they are refused without the row)."""
    cutoff = timezone.now() - datetime.timedelta(seconds=2 * settings.VAULT_ENTRY_NONCE_SECONDS)
    count, _ = UsedEntryNonce.objects.filter(used_at__lt=cutoff).delete()
    return int(count)


def rotate_due_keys(*, by: Actor) -> dict[str, Any]:
    """The hourly job: rotate what is due, expire old entry keys, re-encrypt, destroy."""
    before = DataKey.objects.filter(state=DataKey.State.ACTIVE).values_list("pk", flat=True).first()
    dek = rotate_data_key(by=by, only_if_due=True)
    entry = rotate_entry_key(by=by, only_if_due=True)
    expired = expire_entry_keys(by=by)
    report = reencrypt_vault(by=by)
    _purge_spent_nonces()
    orphans = purge_orphan_secrets(by=by)
    return {
        "dek_rotated": before != dek.pk,
        "active_dek": dek.hex_id,
        "entry_kid": entry.kid,
        "entry_keys_expired": expired,
        "reencrypted": report.reencrypted,
        "destroyed": report.destroyed,
        "orphan_secrets_erased": orphans,
    }
