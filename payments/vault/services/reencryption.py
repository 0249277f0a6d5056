"""Re-encryption: the records of a decrypt-only data key moved to the active one, in
batches, then the old key destroyed (its wrapped bytes erased, the row kept as
evidence). Run by the job a rotation queues, the hourly schedule and
``manage.py reencrypt_vault``; every batch and every destruction is audited."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import record
from db.dialect import is_postgresql
from payments.vault import crypto
from payments.vault.keys import lock_key_management, unwrap_data_key
from payments.vault.models import DataKey, PaymentMethod
from payments.vault.services.key_rotation import Progress, quiet, with_encryption_key
from security.actors import Actor


@dataclass
class ReencryptionReport:
    """What ``reencrypt_vault`` did."""

    reencrypted: int = 0
    destroyed: list[str] = field(default_factory=list)
    still_pending: dict[str, int] = field(default_factory=dict)


def _reencrypt_batch(old: DataKey, *, by: Actor, batch: int) -> int:
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


def destroy_data_key(key: DataKey, *, by: Actor) -> bool:
    """Erase a decrypt-only DEK's wrapped bytes if no record needs it; audited."""
    with transaction.atomic():
        lock_key_management()
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


def reencrypt_vault(*, by: Actor, progress: Progress = quiet) -> ReencryptionReport:
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
