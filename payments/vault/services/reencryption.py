"""Re-encryption: the records of a decrypt-only data key moved to the active one, in
batches, then the old key destroyed (its wrapped bytes erased, the row kept as
evidence). Run by the job a rotation queues, the hourly schedule and
``manage.py reencrypt_vault``; every batch and every destruction is audited."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import record
from db.routers import vault_alias
from payments.vault import crypto
from payments.vault.keys import lock_key_management, unwrap_data_key
from payments.vault.models import DataKey
from payments.vault.secret_store import lock_secrets_under, secrets_under, write_resealed
from payments.vault.services.key_rotation import Progress, quiet, with_encryption_key
from security.actors import Actor


@dataclass
class ReencryptionReport:
    """What ``reencrypt_vault`` did."""

    reencrypted: int = 0
    destroyed: list[str] = field(default_factory=list)
    still_pending: dict[str, int] = field(default_factory=dict)


def _reencrypt_batch(old: DataKey, *, by: Actor, batch: int) -> int:
    """Move up to ``batch`` records from ``old`` to the active DEK, in one transaction.

    The secrets are locked and rewritten in a transaction on the vault alias, inside the
    one on ``default`` that share-locks the target key (so it is not rotated meanwhile)
    and appends the event. The vault's commits first: an interruption before the
    event's leaves re-encrypted records without their event, never a record lost.
    """

    def work(target: DataKey) -> int:
        with transaction.atomic(using=vault_alias()):
            rows = lock_secrets_under(old, limit=batch)
            if not rows:
                return 0
            old_bytes = unwrap_data_key(old)
            new_bytes = unwrap_data_key(target)
            tokens: list[str] = []
            blobs: list[bytes] = []
            for token, sealed in rows:
                number = crypto.open_sealed(sealed, key=old_bytes, key_id=old.id, token=token)
                tokens.append(token)
                blobs.append(crypto.seal(number, key=new_bytes, key_id=target.id, token=token))
            write_resealed(tokens, blobs, target)
        record(
            "vault.reencrypted",
            actor=by,
            obj=old,
            from_key_id=old.hex_id,
            to_key_id=target.hex_id,
            records=len(tokens),
        )
        return len(tokens)

    return with_encryption_key(work)


def destroy_data_key(key: DataKey, *, by: Actor) -> bool:
    """Erase a decrypt-only DEK's wrapped bytes if no record needs it; audited."""
    with transaction.atomic():
        lock_key_management()
        locked = DataKey.objects.select_for_update().get(pk=key.pk)
        if locked.state != DataKey.State.DECRYPT_ONLY:
            return False
        remaining = secrets_under(locked)
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
        total = secrets_under(old)
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
            left = secrets_under(old)
            report.still_pending[old.hex_id] = left
            progress(f"DEK {old.hex_id}: {left} record(s) busy, kept for the next run")
    return report
