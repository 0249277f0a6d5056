"""Key lifecycle services: data keys (DEKs), card-entry keys, KEK rotation.

Life of a DEK: ACTIVE (encrypts, for VAULT_DEK_ROTATION_HOURS) -> DECRYPT_ONLY
(after rotation) -> its records are re-encrypted under the active DEK ->
DESTROYED (wrapped bytes erased, row kept as evidence). Every step is audited.

Concurrency (PostgreSQL): key-management operations are serialized by one
advisory lock. ``tokenize`` inserts its record with a statement that reads the
active DEK ``FOR SHARE`` (``insert_under_active_key``); a rotation
locks it ``FOR UPDATE``, so it waits for encryptions in flight, and no record
is written under a DEK once its rotation commits. Destruction locks the DEK
row and recounts its records under that lock, so it never erases a key that a
record still needs.
"""

from __future__ import annotations

import datetime
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import SYSTEM, PendingEvent, record, write_with_event
from db.compiled import mark_inserted
from db.dialect import advisory_xact_lock, is_postgresql
from payments.vault import crypto
from payments.vault.exceptions import InvalidCard, KeysUnavailable, KeyUnavailable
from payments.vault.models import DataKey, EntryKey, PaymentMethod
from security.keyring import Keyring, KeyringError, KeyringReadOnly, get_keyring

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
T = TypeVar("T")

# pg_advisory_xact_lock key for key management: "vaultkey" in ASCII.
_KEY_LOCK = 0x7661756C746B6579


def _lock_key_management() -> None:
    """Serialize rotations, re-encryption commits, destruction and rewraps."""
    advisory_xact_lock(_KEY_LOCK)


def _quiet(_: str) -> None:
    return None


# ---------------------------------------------------------------- the keyring


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


# ---------------------------------------------------------------- data keys


def unwrap_data_key(key: DataKey) -> bytes:
    """The DEK's AES key bytes (never stored, never logged)."""
    if key.wrapped_key is None or key.state == DataKey.State.DESTROYED:
        raise KeyUnavailable(f"data key {key.hex_id} was destroyed", field="key_id")
    try:
        return vault_keyring().unwrap(
            bytes(key.wrapped_key), version=key.kek_version, context=key.wrap_context()
        )
    except KeyringError as exc:
        raise KeysUnavailable(
            f"data key {key.hex_id} cannot be unwrapped: {exc}", field="key_id"
        ) from None


def _create_data_key() -> DataKey:
    keyring = vault_keyring()
    key_id = crypto.new_key_id()
    while DataKey.objects.filter(pk=key_id).exists():
        key_id = crypto.new_key_id()
    key = DataKey(id=key_id, state=DataKey.State.ACTIVE, created_at=timezone.now())
    wrapped = keyring.wrap(crypto.new_key(), context=key.wrap_context())
    key.kek_version = wrapped.version
    key.wrapped_key = wrapped.blob
    key.save(force_insert=True)
    return key


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


@functools.cache
def _guarded_insert_sql(model: type[models.Model], postgres: bool) -> tuple[str, list[Any]]:
    """The INSERT ... SELECT ... FROM the DEK row statement for ``model`` (built once)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    values = ", ".join(f"%s::{f.db_type(connection)}" if postgres else "%s" for f in fields)
    lock = " FOR SHARE" if postgres else ""  # SQLite serializes writers itself
    # Only model metadata and constants are formatted in; every value is a parameter.
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    pk_column = quote(str(model._meta.pk.column)) if model._meta.pk else "id"
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {values} "  # noqa: S608
        f"FROM {quote(DataKey._meta.db_table)} WHERE {quote('id')} = %s "
        f"AND {quote('state')} = %s{lock} RETURNING {pk_column} AS row_id"
    )
    return sql, fields


def insert_under_active_key(
    record_row: PaymentMethod, key: DataKey, *, event: PendingEvent | None = None
) -> bool:
    """INSERT ``record_row`` only if ``key`` is still the active DEK, with its audit event.

    On PostgreSQL one statement writes the row and appends ``event`` for it
    (``audit.write_with_event``): the key row is read
    ``FOR SHARE`` by the same statement, so a rotation (which locks it ``FOR
    UPDATE``) waits for this transaction, exactly as ``data_key_for_encryption``
    guarantees for batch work; with no open transaction the statement is its
    own, so row and event commit together in one round trip. Elsewhere, the
    insert and the append share a transaction. False (nothing written, no event)
    when the key was retired meanwhile: forget it and take the new one.
    """
    model = type(record_row)
    sql, fields = _guarded_insert_sql(model, is_postgresql())
    params = [f.get_db_prep_save(f.pre_save(record_row, True), connection) for f in fields]
    params += [key.pk, DataKey.State.ACTIVE]
    if event is not None:
        pk = write_with_event(sql, params, event)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        pk = None if row is None else row[0]
    if pk is None:
        forget_encryption_key()
        return False
    mark_inserted(record_row, pk, using=connection.alias)
    return True


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


def rotate_data_key(*, by: Any, only_if_due: bool = False) -> DataKey:
    """Make a new DEK active; the old one turns decrypt-only. Audited as vault.dek_rotated."""
    with transaction.atomic():
        _lock_key_management()
        current = DataKey.objects.select_for_update().filter(state=DataKey.State.ACTIVE).first()
        now = timezone.now()
        if only_if_due and current is not None and now < current.encrypts_until():
            return current
        if current is not None:
            current.state = DataKey.State.DECRYPT_ONLY
            current.retired_at = now
            current.save(update_fields=["state", "retired_at"])
        new = _create_data_key()
        record(
            "vault.dek_rotated",
            actor=by,
            obj=new,
            key_id=new.hex_id,
            previous_key_id=current.hex_id if current else None,
            kek_version=new.kek_version,
            reason="cryptoperiod" if only_if_due else "requested",
        )
        if current is not None:
            transaction.on_commit(_enqueue_reencryption)
    forget_encryption_key()  # this process takes the new key at once; others at their insert
    return new


@dataclass
class ReencryptionReport:
    """What ``reencrypt_vault`` did."""

    reencrypted: int = 0
    destroyed: list[str] = field(default_factory=list)
    still_pending: dict[str, int] = field(default_factory=dict)


def _reencrypt_batch(old: DataKey, *, by: Any, batch: int) -> int:
    """Move up to ``batch`` records from ``old`` to the active DEK, in one transaction."""

    def work(target: DataKey) -> int:
        rows = list(
            PaymentMethod.objects.select_for_update(skip_locked=True)
            .filter(data_key=old, status=PaymentMethod.Status.ACTIVE)
            .order_by("pk")
            .values_list("pk", "token", "ciphertext")[:batch]
        )
        if not rows:
            return 0
        old_bytes = unwrap_data_key(old)
        new_bytes = unwrap_data_key(target)
        ids: list[int] = []
        blobs: list[bytes] = []
        for pk, token, blob in rows:
            sealed = bytes(blob or b"")
            number = crypto.open_sealed(sealed, key=old_bytes, key_id=old.id, token=token)
            ids.append(pk)
            blobs.append(crypto.seal(number, key=new_bytes, key_id=target.id, token=token))
        _write_reencrypted(ids, blobs, target)
        record(
            "vault.reencrypted",
            actor=by,
            obj=old,
            from_key_id=old.hex_id,
            to_key_id=target.hex_id,
            records=len(ids),
        )
        return len(ids)

    return with_encryption_key(work)


def _write_reencrypted(ids: list[int], blobs: list[bytes], target: DataKey) -> None:
    """One UPDATE for the whole batch on PostgreSQL (unnest of arrays); row by row elsewhere."""
    table = PaymentMethod._meta.db_table
    with connection.cursor() as cursor:
        if is_postgresql():
            cursor.execute(
                f"UPDATE {table} AS pm SET ciphertext = v.blob, data_key_id = %s "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bytea[]) AS v(id, blob) WHERE pm.id = v.id",
                [target.id, ids, blobs],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET ciphertext = %s, data_key_id = %s WHERE id = %s",  # noqa: S608
                [(blob, target.id, pk) for pk, blob in zip(ids, blobs, strict=True)],
            )


def destroy_data_key(key: DataKey, *, by: Any) -> bool:
    """Erase a decrypt-only DEK's wrapped bytes if no record needs it; audited."""
    with transaction.atomic():
        _lock_key_management()
        locked = DataKey.objects.select_for_update().get(pk=key.pk)
        if locked.state != DataKey.State.DECRYPT_ONLY:
            return False
        remaining = PaymentMethod.objects.filter(data_key=locked).count()
        if remaining:
            return False
        locked.state = DataKey.State.DESTROYED
        locked.wrapped_key = None
        locked.destroyed_at = timezone.now()
        locked.save(update_fields=["state", "wrapped_key", "destroyed_at"])
        record(
            "vault.dek_destroyed",
            actor=by,
            obj=locked,
            key_id=locked.hex_id,
            active_from=locked.created_at.isoformat(),
            retired_at=locked.retired_at.isoformat() if locked.retired_at else None,
        )
    key.refresh_from_db()
    return True


def reencrypt_vault(*, by: Any, progress: Progress = _quiet) -> ReencryptionReport:
    """Re-encrypt every record under a decrypt-only DEK, then destroy that DEK."""
    report = ReencryptionReport()
    batch = settings.VAULT_REENCRYPT_BATCH
    for old in DataKey.objects.filter(state=DataKey.State.DECRYPT_ONLY).order_by("created_at"):
        total = PaymentMethod.objects.filter(data_key=old).count()
        done = 0
        progress(f"DEK {old.hex_id}: {total} record(s) to re-encrypt")
        while True:
            moved = _reencrypt_batch(old, by=by, batch=batch)
            if not moved:
                break
            done += moved
            progress(f"DEK {old.hex_id}: {done}/{total} re-encrypted")
        report.reencrypted += done
        if destroy_data_key(old, by=by):
            report.destroyed.append(old.hex_id)
            progress(f"DEK {old.hex_id}: destroyed (wrapped bytes erased)")
        else:
            left = PaymentMethod.objects.filter(data_key=old).count()
            report.still_pending[old.hex_id] = left
            progress(f"DEK {old.hex_id}: {left} record(s) busy, kept for the next run")
    return report


# ---------------------------------------------------------------- KEK rotation


@dataclass
class KekRotationReport:
    """What ``rotate_kek`` did."""

    kek_version: int
    created: bool
    data_keys: int
    entry_keys: int
    retired_versions: list[int]


def rotate_kek(
    *, by: Any, retire_old: bool = False, progress: Progress = _quiet
) -> KekRotationReport:
    """Rewrap every live DEK and entry key under a new KEK version; no card is decrypted.

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
        _lock_key_management()
        data_keys = list(DataKey.objects.select_for_update().exclude(state=DataKey.State.DESTROYED))
        for index, key in enumerate(data_keys, 1):
            if key.kek_version != version:
                raw = unwrap_data_key(key)
                wrapped = keyring.wrap(raw, context=key.wrap_context())
                key.kek_version, key.wrapped_key = wrapped.version, wrapped.blob
                key.save(update_fields=["kek_version", "wrapped_key"])
            progress(f"data key {index}/{len(data_keys)} rewrapped")
        entry_keys = list(
            EntryKey.objects.select_for_update().exclude(state=EntryKey.State.EXPIRED)
        )
        for entry in entry_keys:
            if entry.kek_version != version:
                raw = _unwrap_entry_private(entry)
                wrapped = keyring.wrap(raw, context=entry.wrap_context())
                entry.kek_version, entry.wrapped_private_key = wrapped.version, wrapped.blob
                entry.save(update_fields=["kek_version", "wrapped_private_key"])
        progress(f"{len(entry_keys)} card-entry key(s) rewrapped")
        record(
            "vault.kek_rotated",
            actor=by,
            kek_version=version,
            created=created,
            data_keys=len(data_keys),
            entry_keys=len(entry_keys),
        )
    retired: list[int] = []
    if retire_old:
        retired = retire_kek_versions(by=by)
        progress(f"retired KEK version(s): {retired or 'none'}")
    return KekRotationReport(
        kek_version=version,
        created=created,
        data_keys=len(data_keys),
        entry_keys=len(entry_keys),
        retired_versions=retired,
    )


def retire_kek_versions(*, by: Any) -> list[int]:
    """Forget KEK versions no live key is wrapped under; audited as vault.kek_retired."""
    with transaction.atomic():
        _lock_key_management()
        in_use = set(
            DataKey.objects.exclude(state=DataKey.State.DESTROYED).values_list(
                "kek_version", flat=True
            )
        ) | set(
            EntryKey.objects.exclude(state=EntryKey.State.EXPIRED).values_list(
                "kek_version", flat=True
            )
        )
        try:
            retired = vault_keyring().retire_versions(keep=in_use)
        except KeyringReadOnly:
            return []
        if retired:
            record("vault.kek_retired", actor=by, kek_versions=retired)
    return retired


# ---------------------------------------------------------------- card-entry keys


def _unwrap_entry_private(key: EntryKey) -> bytes:
    if key.wrapped_private_key is None:
        raise KeyUnavailable(f"card-entry key {key.kid} has expired", field="key_id")
    try:
        return vault_keyring().unwrap(
            bytes(key.wrapped_private_key), version=key.kek_version, context=key.wrap_context()
        )
    except KeyringError as exc:
        raise KeysUnavailable(f"card-entry key {key.kid}: {exc}", field="key_id") from None


def _create_entry_key() -> EntryKey:
    private = rsa.generate_private_key(
        public_exponent=65537, key_size=settings.VAULT_ENTRY_KEY_BITS
    )
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = EntryKey(kid=f"ek_{secrets.token_hex(8)}", state=EntryKey.State.ACTIVE)
    wrapped = vault_keyring().wrap(der, context=key.wrap_context())
    key.kek_version = wrapped.version
    key.wrapped_private_key = wrapped.blob
    key.public_key_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key.save(force_insert=True)
    return key


def _entry_key_due(key: EntryKey, now: datetime.datetime) -> bool:
    age = datetime.timedelta(hours=settings.VAULT_ENTRY_KEY_ROTATION_HOURS)
    return now >= key.created_at + age


def rotate_entry_key(*, by: Any, only_if_due: bool = False) -> EntryKey:
    """New card-entry key pair; the old one is accepted for the grace period only."""
    with transaction.atomic():
        _lock_key_management()
        now = timezone.now()
        current = EntryKey.objects.select_for_update().filter(state=EntryKey.State.ACTIVE).first()
        if only_if_due and current is not None and not _entry_key_due(current, now):
            return current
        if current is not None:
            current.state = EntryKey.State.PREVIOUS
            current.retired_at = now
            current.save(update_fields=["state", "retired_at"])
        new = _create_entry_key()
        record(
            "vault.entry_key_rotated",
            actor=by,
            obj=new,
            kid=new.kid,
            previous_kid=current.kid if current else None,
        )
        _expire_entry_keys(by=by, now=now)
    return new


def _expire_entry_keys(*, by: Any, now: datetime.datetime) -> int:
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


def expire_entry_keys(*, by: Any) -> int:
    """Erase the private half of card-entry keys past their grace period; audited."""
    with transaction.atomic():
        _lock_key_management()
        return _expire_entry_keys(by=by, now=timezone.now())


def current_entry_key() -> EntryKey:
    """The entry key a card form should use now (rotating first if due or missing)."""
    key = EntryKey.objects.filter(state=EntryKey.State.ACTIVE).first()
    if key is not None and not _entry_key_due(key, timezone.now()):
        return key
    return rotate_entry_key(by=SYSTEM, only_if_due=True)


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
    private = serialization.load_der_private_key(_unwrap_entry_private(key), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


def entry_oaep_padding(kid: str) -> padding.OAEP:
    """RSA-OAEP with SHA-256 whose label binds the key id (the browser sets the same)."""
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=b"tillit.card-entry.v1|" + kid.encode("ascii"),
    )


# ---------------------------------------------------------------- schedule


def _purge_spent_nonces() -> int:
    """Forget spent card-entry nonces older than their lifetime (their signature has
    expired, so they are refused without the row)."""
    from payments.vault.models import UsedEntryNonce

    cutoff = timezone.now() - datetime.timedelta(seconds=2 * settings.VAULT_ENTRY_NONCE_SECONDS)
    count, _ = UsedEntryNonce.objects.filter(used_at__lt=cutoff).delete()
    return int(count)


def rotate_due_keys(*, by: Any) -> dict[str, Any]:
    """The hourly job: rotate what is due, expire old entry keys, re-encrypt, destroy."""
    before = DataKey.objects.filter(state=DataKey.State.ACTIVE).values_list("pk", flat=True).first()
    dek = rotate_data_key(by=by, only_if_due=True)
    entry = rotate_entry_key(by=by, only_if_due=True)
    expired = expire_entry_keys(by=by)
    report = reencrypt_vault(by=by)
    _purge_spent_nonces()
    return {
        "dek_rotated": before != dek.pk,
        "active_dek": dek.hex_id,
        "entry_kid": entry.kid,
        "entry_keys_expired": expired,
        "reencrypted": report.reencrypted,
        "destroyed": report.destroyed,
    }
