"""KEK rotation: every live key of both kinds rewrapped under a new KEK version (no card
is decrypted), and KEK versions no live key needs any more retired from the keyring."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from audit import record
from billing.webhooks.selectors import kek_versions_in_use as webhook_kek_versions
from billing.webhooks.services import reseal_webhook_secrets
from payments.vault.keys import lock_key_management, vault_keyring
from payments.vault.services.key_rotation import (
    DATA_KEYS,
    ENTRY_KEYS,
    KEY_KINDS,
    Progress,
    quiet,
)
from security.actors import Actor
from security.keyring import KeyringReadOnly


@dataclass
class KekRotationReport:
    """What ``rotate_kek`` did."""

    kek_version: int
    created: bool
    data_keys: int
    entry_keys: int
    webhook_endpoints: int
    retired_versions: list[int]


def rotate_kek(
    *, by: Actor, retire_old: bool = False, progress: Progress = quiet
) -> KekRotationReport:
    """Rewrap every live DEK and entry key, and seal the webhook endpoints' secrets again,
    under a new KEK version; no card is decrypted.

    With a read-only keyring (environment, KMS) the operator adds the version
    there first; this then rewraps under the keyring's current version.
    """
    keyring = vault_keyring()
    try:
        version = keyring.add_version()
        created = True
        progress(f"created KEK version {version}")
    except KeyringReadOnly:
        version = keyring.current_version()
        created = False
        progress(f"{keyring.name} is managed outside; rewrapping under version {version}")
    with transaction.atomic():
        lock_key_management()
        data_keys = DATA_KEYS.rewrap(keyring, version, progress=progress)
        entry_keys = ENTRY_KEYS.rewrap(keyring, version, progress=progress)
        # Sealed by the same keyring: left under the old version, they would keep it alive.
        webhook_endpoints = reseal_webhook_secrets()
        progress(f"sealed {webhook_endpoints} webhook endpoint(s)' secrets again")
        record(
            "vault.kek_rotated",
            actor=by,
            kek_version=version,
            created=created,
            data_keys=data_keys,
            entry_keys=entry_keys,
            webhook_endpoints=webhook_endpoints,
        )
    retired: list[int] = []
    if retire_old:
        retired = retire_kek_versions(by=by)
        progress(f"retired KEK version(s): {retired or 'none'}")
    return KekRotationReport(
        kek_version=version,
        created=created,
        data_keys=data_keys,
        entry_keys=entry_keys,
        webhook_endpoints=webhook_endpoints,
        retired_versions=retired,
    )


def retire_kek_versions(*, by: Actor) -> list[int]:
    """Forget KEK versions no live key is wrapped under; audited as vault.kek_retired."""
    with transaction.atomic():
        lock_key_management()
        in_use: set[int] = set()
        for kind in KEY_KINDS:
            in_use |= set(kind.live().values_list("kek_version", flat=True))
        in_use |= webhook_kek_versions()  # webhook secrets are sealed by the same keyring
        try:
            retired = vault_keyring().retire_versions(keep=in_use)
        except KeyringReadOnly:
            return []
        if retired:
            record("vault.kek_retired", actor=by, kek_versions=retired)
    return retired
