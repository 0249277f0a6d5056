"""Rotating the vault's keys: one implementation for both kinds of key.

The vault has two kinds of key with the same life: a data key (``DataKey``, AES-256,
encrypts card numbers) and a card-entry key (``EntryKey``, an RSA key pair the browser
encrypts a typed card to). Each kind has exactly one ACTIVE key; a rotation, under the
key-management lock, turns the active one into its retired state (a data key
DECRYPT_ONLY, an entry key PREVIOUS), creates a new active one wrapped under the
keyring's current KEK version and audits it. ``KeyKind`` says what differs between the
two kinds; ``KeyKind.rotate`` and ``KeyKind.rewrap`` are the one implementation.

A data key's rotation queues the re-encryption of the old key's records
(``reencryption``); an entry key's expires the previous keys past their grace period.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit import SYSTEM, record
from payments.vault import crypto
from payments.vault.exceptions import KeyUnavailable
from payments.vault.keys import (
    RotationDue,
    data_key_for_encryption,
    entry_key_due,
    lock_key_management,
    unwrap_data_key,
    unwrap_entry_private,
    vault_keyring,
)
from payments.vault.models import DataKey, EntryKey
from security.actors import Actor
from security.keyring import Keyring

logger = logging.getLogger(__name__)

K = TypeVar("K", DataKey, EntryKey)
T = TypeVar("T")
Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A ``progress`` that says nothing."""
    return None


class KeyKind(Generic[K]):
    """What differs between the vault's two kinds of key; the rest is shared."""

    model: type[K]  # its State has ACTIVE = "active" (one active key: a unique constraint)
    retired_state: ClassVar[str]  # what the active key becomes on rotation
    dead_state: ClassVar[str]  # its wrapped bytes erased: no longer live
    wrapped_field: ClassVar[str]  # the column holding the KEK-wrapped bytes
    rotated_event: ClassVar[str]
    label: ClassVar[str]

    def due(self, key: K, now: datetime.datetime) -> bool:
        raise NotImplementedError

    def new_key(self) -> tuple[K, bytes]:
        """A new ACTIVE key, unsaved, and the secret its wrapped column is to hold."""
        raise NotImplementedError

    def create(self) -> K:
        """A new ACTIVE key, its secret wrapped under the keyring's current KEK version, saved."""
        key, secret = self.new_key()
        wrapped = vault_keyring().wrap(secret, context=key.wrap_context())
        key.kek_version = wrapped.version
        setattr(key, self.wrapped_field, wrapped.blob)
        key.save(force_insert=True)
        return key

    def unwrap(self, key: K) -> bytes:
        raise NotImplementedError

    def rotated_details(self, new: K, previous: K | None, *, only_if_due: bool) -> dict[str, Any]:
        raise NotImplementedError

    def after_rotation(self, previous: K | None, *, now: datetime.datetime, by: Actor) -> None:
        """In the rotation's transaction, once the new key is written."""

    def live(self) -> models.QuerySet[K]:
        """The keys whose wrapped bytes still exist (every state but the dead one)."""
        return self.model.objects.exclude(state=self.dead_state)

    def rotate(self, *, by: Actor, only_if_due: bool = False) -> K:
        """Make a new key of this kind active; the active one turns retired. Audited.

        ``only_if_due``: keep the active key while it is inside its period (the schedule's
        and the encryptions' call); without it a rotation is always made (an operator's).
        """
        with transaction.atomic():
            lock_key_management()
            now = timezone.now()
            active = (
                self.model.objects.select_for_update().filter(state=self.model.State.ACTIVE).first()
            )
            if only_if_due and active is not None and not self.due(active, now):
                return active
            if active is not None:
                active.state = self.retired_state
                active.retired_at = now
                active.save(update_fields=["state", "retired_at"])
            new = self.create()
            record(
                self.rotated_event,
                actor=by,
                obj=new,
                **self.rotated_details(new, active, only_if_due=only_if_due),
            )
            self.after_rotation(active, now=now, by=by)
        return new

    def rewrap(self, keyring: Keyring, version: int, *, progress: Progress = quiet) -> int:
        """Rewrap every live key of this kind under KEK ``version`` (in the caller's
        transaction, under its key-management lock); the number of live keys."""
        live = list(self.live().select_for_update())
        for index, key in enumerate(live, 1):
            if key.kek_version != version:
                wrapped = keyring.wrap(self.unwrap(key), context=key.wrap_context())
                key.kek_version = wrapped.version
                setattr(key, self.wrapped_field, wrapped.blob)
                key.save(update_fields=["kek_version", self.wrapped_field])
            progress(f"{self.label} {index}/{len(live)} rewrapped")
        return len(live)


class DataKeys(KeyKind[DataKey]):
    model = DataKey
    retired_state = DataKey.State.DECRYPT_ONLY
    dead_state = DataKey.State.DESTROYED
    wrapped_field = "wrapped_key"
    rotated_event = "vault.dek_rotated"
    label = "data key"

    def due(self, key: DataKey, now: datetime.datetime) -> bool:
        return now >= key.encrypts_until()

    def new_key(self) -> tuple[DataKey, bytes]:
        key_id = crypto.new_key_id()
        while DataKey.objects.filter(pk=key_id).exists():
            key_id = crypto.new_key_id()
        key = DataKey(id=key_id, state=DataKey.State.ACTIVE, created_at=timezone.now())
        return key, crypto.new_key()

    def unwrap(self, key: DataKey) -> bytes:
        return unwrap_data_key(key)

    def rotated_details(
        self, new: DataKey, previous: DataKey | None, *, only_if_due: bool
    ) -> dict[str, Any]:
        return {
            "key_id": new.hex_id,
            "previous_key_id": previous.hex_id if previous else None,
            "kek_version": new.kek_version,
            "reason": "cryptoperiod" if only_if_due else "requested",
        }

    def after_rotation(
        self, previous: DataKey | None, *, now: datetime.datetime, by: Actor
    ) -> None:
        if previous is not None:
            transaction.on_commit(_enqueue_reencryption)


class EntryKeys(KeyKind[EntryKey]):
    model = EntryKey
    retired_state = EntryKey.State.PREVIOUS
    dead_state = EntryKey.State.EXPIRED
    wrapped_field = "wrapped_private_key"
    rotated_event = "vault.entry_key_rotated"
    label = "card-entry key"

    def due(self, key: EntryKey, now: datetime.datetime) -> bool:
        return entry_key_due(key, now)

    def new_key(self) -> tuple[EntryKey, bytes]:
        private = rsa.generate_private_key(
            public_exponent=65537, key_size=settings.VAULT_ENTRY_KEY_BITS
        )
        key = EntryKey(kid=f"ek_{secrets.token_hex(8)}", state=EntryKey.State.ACTIVE)
        key.public_key_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key, der

    def unwrap(self, key: EntryKey) -> bytes:
        return unwrap_entry_private(key)

    def rotated_details(
        self, new: EntryKey, previous: EntryKey | None, *, only_if_due: bool
    ) -> dict[str, Any]:
        return {"kid": new.kid, "previous_kid": previous.kid if previous else None}

    def after_rotation(
        self, previous: EntryKey | None, *, now: datetime.datetime, by: Actor
    ) -> None:
        _expire_entry_keys(by=by, now=now)


DATA_KEYS = DataKeys()
ENTRY_KEYS = EntryKeys()
KEY_KINDS: tuple[KeyKind[Any], ...] = (DATA_KEYS, ENTRY_KEYS)


# ---------------------------------------------------------------- data keys


def rotate_data_key(*, by: Actor, only_if_due: bool = False) -> DataKey:
    """Make a new DEK active; the old one turns decrypt-only. Audited as vault.dek_rotated."""
    new = DATA_KEYS.rotate(by=by, only_if_due=only_if_due)
    forget_encryption_key()  # this process takes the new key at once; others at their insert
    return new


def _enqueue_reencryption() -> None:
    try:
        from django_q.tasks import async_task

        async_task(
            "payments.vault.tasks.reencrypt_vault_task",
            task_name="vault.reencrypt",
            timeout=settings.Q_LONG_TIMEOUT,  # every record of the retired key: a long job
        )
    except Exception:  # the hourly schedule catches up if the broker is down
        logger.warning("vault: could not enqueue re-encryption; the schedule will run it")


def with_encryption_key(work: Callable[[DataKey], T]) -> T:
    """Run ``work(active_dek)`` in one transaction; rotate first when the DEK is due."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return work(data_key_for_encryption())
        except RotationDue:
            rotate_data_key(by=SYSTEM, only_if_due=True)
    raise KeyUnavailable("no active data key could be obtained", field="key_id")


# The active DEK and its unwrapped bytes, per process, so that a tokenize costs
# no key lookup: (loaded at, key, bytes). Held at most VAULT_DEK_CACHE_SECONDS,
# dropped at once when this process rotates or an insert finds the key retired.
_encrypting: dict[str, tuple[float, DataKey, bytes]] = {}


def forget_encryption_key() -> None:
    """Drop this process's cached active DEK (the next encryption reloads it)."""
    _encrypting.pop("active", None)


def encryption_key() -> tuple[DataKey, bytes]:
    """The active DEK inside its cryptoperiod and its bytes; rotates first when it is due.

    Cached per process; the record written with it is inserted by
    ``insert_under_active_key``, which re-checks (and share-locks) the key in
    the same statement, so a stale cache never writes under a retired key.
    """
    now = timezone.now()
    cached = _encrypting.get("active")
    if (
        cached is not None
        and time.monotonic() - cached[0] < settings.VAULT_DEK_CACHE_SECONDS
        and now < cached[1].encrypts_until()
    ):
        return cached[1], cached[2]
    for _attempt in range(3):
        key = DataKey.objects.filter(state=DataKey.State.ACTIVE).first()
        if key is not None and now < key.encrypts_until():
            loaded = (time.monotonic(), key, unwrap_data_key(key))
            _encrypting["active"] = loaded
            return key, loaded[2]
        rotate_data_key(by=SYSTEM, only_if_due=True)
    raise KeyUnavailable("no active data key could be obtained", field="key_id")


# ---------------------------------------------------------------- card-entry keys


def rotate_entry_key(*, by: Actor, only_if_due: bool = False) -> EntryKey:
    """New card-entry key pair; the old one is accepted for the grace period only."""
    return ENTRY_KEYS.rotate(by=by, only_if_due=only_if_due)


def _expire_entry_keys(*, by: Actor, now: datetime.datetime) -> int:
    grace = datetime.timedelta(minutes=settings.VAULT_ENTRY_KEY_GRACE_MINUTES)
    stale = EntryKey.objects.select_for_update().filter(
        state=EntryKey.State.PREVIOUS, retired_at__lte=now - grace
    )
    count = 0
    for key in stale:
        key.state = EntryKey.State.EXPIRED
        key.wrapped_private_key = None
        key.expired_at = now
        key.save(update_fields=["state", "wrapped_private_key", "expired_at"])
        record("vault.entry_key_expired", actor=by, obj=key, kid=key.kid)
        count += 1
    return count


def expire_entry_keys(*, by: Actor) -> int:
    """Erase the private half of card-entry keys past their grace period; audited."""
    with transaction.atomic():
        lock_key_management()
        return _expire_entry_keys(by=by, now=timezone.now())


def current_entry_key() -> EntryKey:
    """The entry key a card form should use now (rotating first if due or missing)."""
    key = EntryKey.objects.filter(state=EntryKey.State.ACTIVE).first()
    if key is not None and not entry_key_due(key, timezone.now()):
        return key
    return rotate_entry_key(by=SYSTEM, only_if_due=True)
