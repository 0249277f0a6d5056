"""Reads of the audit log: heads, checkpoints and what may be published about them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Min

from audit.chain import canonical_time, checkpoint_message
from audit.keys import PublicKeyInfo, current_public_key, describe_public_key
from audit.models import AuditCheckpoint, AuditEvent, ChainVerification
from audit.verify import CHECKPOINT_FILE_FORMAT


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The exportable form of a checkpoint: everything needed to check it, nothing secret."""
    public = describe_public_key(checkpoint.public_key)
    return {
        "format": CHECKPOINT_FILE_FORMAT,
        "algorithm": "Ed25519",
        "seq": checkpoint.seq,
        "hash": checkpoint.head_hash,
        "created_at": canonical_time(checkpoint.created_at),
        "key_id": checkpoint.key_id,
        "public_key": checkpoint.public_key,
        "public_key_pem": public.public_key_pem,
        "signature": checkpoint.signature,
        "signed_message": checkpoint_message(
            seq=checkpoint.seq,
            head_hash=checkpoint.head_hash,
            created_at=checkpoint.created_at,
            key_id=checkpoint.key_id,
        ).decode("utf-8"),
    }


def get_first_checkpoint_covering(seq: int) -> AuditCheckpoint | None:
    """The earliest checkpoint that signs ``seq`` or a later head."""
    return AuditCheckpoint.objects.filter(seq__gte=seq).order_by("seq").first()


def get_published_public_key() -> PublicKeyInfo | None:
    """The checkpoint key's public half for the admin and auditors (None before the first key)."""
    return current_public_key()


@dataclass(frozen=True)
class ChainHealth:
    """The audit chain's state for the dashboards: the last finished verification (from
    the admin), one still running, the last checkpoint and the events after it."""

    last_verification: ChainVerification | None
    running: ChainVerification | None
    last_checkpoint: AuditCheckpoint | None
    head_seq: int

    @property
    def unsigned_events(self) -> int:
        """Events after the last checkpoint (all of them before the first)."""
        signed = self.last_checkpoint.seq if self.last_checkpoint else 0
        return max(self.head_seq - signed, 0)


def chain_health() -> ChainHealth:
    """The chain's health in four small queries, whatever the log's size."""
    finished = [
        ChainVerification.Status.PASSED,
        ChainVerification.Status.FAILED,
        ChainVerification.Status.ERROR,
    ]
    verifications = ChainVerification.objects.order_by("-requested_at", "-pk")
    return ChainHealth(
        last_verification=verifications.filter(status__in=finished).first(),
        running=verifications.exclude(status__in=finished).first(),
        last_checkpoint=AuditCheckpoint.objects.order_by("-seq").first(),
        head_seq=AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0,
    )


LOCKOUT = "security.lockout"
ADDRESS_BLOCKED = "security.address_blocked"


def lockouts_since(since: datetime.datetime) -> int:
    """Account lockouts and blocked addresses since ``since`` (the dashboards' "24 h", the
    review, the detector). The audit log is authoritative: the lockout handler records
    each lockout as it happens, address blocks included (django-axes' failure log knows
    no address blocks, and marks every attempt during a lockout).

    Query: ``SELECT COUNT(*) FROM audit_auditevent WHERE action IN ('security.lockout',
    'security.address_blocked') AND created_at >= since``."""
    return AuditEvent.objects.filter(
        action__in=[LOCKOUT, ADDRESS_BLOCKED], created_at__gte=since
    ).count()


def checkpoint_key_in_use_since() -> tuple[str, datetime.datetime | None]:
    """The current checkpoint signing key's id and when it signed its first checkpoint
    (``("", None)`` before the first key, or when the key cannot be read).

    Query: ``SELECT MIN(created_at) FROM audit_auditcheckpoint WHERE key_id = current``."""
    try:
        public = current_public_key()
    except Exception:  # the dashboards show the key as unknown instead
        public = None
    if public is None:
        return "", None
    first = AuditCheckpoint.objects.filter(key_id=public.key_id).aggregate(first=Min("created_at"))[
        "first"
    ]
    return public.key_id, first
