"""The vault's keys, read: the keyring, a key's bytes unwrapped, the active data key for
an encryption, a card-entry private key. Nothing here writes: creating, rotating,
re-encrypting, rewrapping and destroying keys are the vault's services
(``payments.vault.services``: ``key_rotation``, ``reencryption``, ``kek``).

Life of a DEK: ACTIVE (encrypts, for VAULT_DEK_ROTATION_HOURS) -> DECRYPT_ONLY
(after rotation) -> its records are re-encrypted under the active DEK ->
DESTROYED (wrapped bytes erased, row kept as evidence). Every step is audited.

Concurrency (PostgreSQL): key-management operations are serialized by one
advisory lock (``lock_key_management``). ``tokenize`` inserts its record with a
statement that reads the active DEK ``FOR SHARE`` (``insert_under_active_key``); a
rotation locks it ``FOR UPDATE``, so it waits for encryptions in flight, and no record
is written under a DEK once its rotation commits. Destruction locks the DEK row and
recounts its records under that lock, so it never erases a key that a record still
needs.
"""

from __future__ import annotations

import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from db.dialect import advisory_xact_lock, is_postgresql
from payments.vault.exceptions import InvalidCard, KeysUnavailable, KeyUnavailable
from payments.vault.models import DataKey, EntryKey
from security.keyring import Keyring, KeyringError, get_keyring

# pg_advisory_xact_lock key for key management: "vaultkey" in ASCII.
_KEY_LOCK = 0x7661756C746B6579


def lock_key_management() -> None:
    """Serialize rotations, re-encryption commits, destruction and rewraps (the caller's
    transaction holds the lock until it ends)."""
    advisory_xact_lock(_KEY_LOCK)


def vault_keyring() -> Keyring:
    """The configured keyring; one that cannot be loaded is the vault's KeysUnavailable."""
    try:
        return get_keyring()
    except KeyringError as exc:
        raise KeysUnavailable(str(exc), field="key_id") from None


def keys_in_use() -> str | None:
    """Why a missing keyring file must not be created anew: the database holds keys
    wrapped under its KEKs (``security.keyring`` asks before it creates one), or None."""
    data_keys = DataKey.objects.exclude(state=DataKey.State.DESTROYED).count()
    entry_keys = EntryKey.objects.exclude(state=EntryKey.State.EXPIRED).count()
    if not data_keys and not entry_keys:
        return None
    return (
        f"the database holds {data_keys} data key(s) and {entry_keys} card-entry key(s)"
        " wrapped under its KEKs"
    )


def unwrap_data_key(key: DataKey) -> bytes:
    """The DEK's AES key bytes (never stored, never logged)."""
    if key.wrapped_key is None or key.state == DataKey.State.DESTROYED:
        raise KeyUnavailable(f"data key {key.hex_id} was destroyed", field="key_id")
    return _unwrap(key, key.wrapped_key, f"data key {key.hex_id} cannot be unwrapped")


def unwrap_entry_private(key: EntryKey) -> bytes:
    """The card-entry key's RSA private key (DER; never stored, never logged)."""
    if key.wrapped_private_key is None:
        raise KeyUnavailable(f"card-entry key {key.kid} has expired", field="key_id")
    return _unwrap(key, key.wrapped_private_key, f"card-entry key {key.kid}")


def _unwrap(key: DataKey | EntryKey, wrapped: bytes | memoryview, what: str) -> bytes:
    """Unwrap either kind of key with the KEK version it names; a keyring that cannot is
    the vault's KeysUnavailable, saying ``what`` failed."""
    try:
        return vault_keyring().unwrap(
            bytes(wrapped), version=key.kek_version, context=key.wrap_context()
        )
    except KeyringError as exc:
        raise KeysUnavailable(f"{what}: {exc}", field="key_id") from None


def entry_key_due(key: EntryKey, now: datetime.datetime) -> bool:
    """The card-entry key is past VAULT_ENTRY_KEY_ROTATION_HOURS: a new one is due."""
    age = datetime.timedelta(hours=settings.VAULT_ENTRY_KEY_ROTATION_HOURS)
    return now >= key.created_at + age


def _active_key_shared() -> DataKey | None:
    """The active DEK, share-locked so a rotation waits for this transaction."""
    if is_postgresql():
        table = DataKey._meta.db_table
        rows = list(
            DataKey.objects.raw(
                f"SELECT * FROM {table} WHERE state = %s FOR SHARE",  # noqa: S608
                [DataKey.State.ACTIVE],
            )
        )
        return rows[0] if rows else None
    return DataKey.objects.filter(state=DataKey.State.ACTIVE).first()


class RotationDue(Exception):
    """Internal: the active DEK is missing or past its cryptoperiod."""


def data_key_for_encryption() -> DataKey:
    """The active DEK inside its cryptoperiod, share-locked until the caller commits.

    Raises RotationDue when there is none; ``with_encryption_key`` then rotates
    in a transaction of its own and retries, so no caller ever holds SHARE on a
    key while waiting to UPDATE it (two such callers would deadlock).
    """
    key = _active_key_shared()
    if key is None or timezone.now() >= key.encrypts_until():
        raise RotationDue
    return key


def entry_private_key(kid: str) -> rsa.RSAPrivateKey:
    """The private key for ``kid`` if it is active or within its grace period."""
    key = EntryKey.objects.filter(kid=kid).first() if isinstance(kid, str) else None
    if key is None:
        raise InvalidCard(_("unknown card-entry key; reload the page"), field="key_id")
    grace = datetime.timedelta(minutes=settings.VAULT_ENTRY_KEY_GRACE_MINUTES)
    usable = key.state == EntryKey.State.ACTIVE or (
        key.state == EntryKey.State.PREVIOUS
        and key.retired_at is not None
        and timezone.now() < key.retired_at + grace
    )
    if not usable:
        raise InvalidCard(_("the card-entry key has expired; reload the page"), field="key_id")
    private = serialization.load_der_private_key(unwrap_entry_private(key), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


def entry_oaep_padding(kid: str) -> padding.OAEP:
    """RSA-OAEP with SHA-256 whose label binds the key id (the browser sets the same)."""
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=b"tillit.card-entry.v1|" + kid.encode("ascii"),
    )
