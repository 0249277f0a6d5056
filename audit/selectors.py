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


_FINISHED = (
    ChainVerification.Status.PASSED,
    ChainVerification.Status.FAILED,
    ChainVerification.Status.ERROR,
)


def last_chain_verification(before: datetime.datetime | None = None) -> ChainVerification | None:
    """The last finished verification of the whole chain (finished before ``before``),
    whichever path ran it (``ChainVerification.Source``): the one definition of "the last
    chain verification" for the dashboards, the quarterly review and the detectors. Every
    path writes its row through ``audit.verification.verify_and_record``.

    Query: ``SELECT … FROM audit_chainverification WHERE status IN ('passed', 'failed',
    'error') [AND finished_at < before] ORDER BY finished_at DESC, id DESC LIMIT 1``."""
    finished = ChainVerification.objects.filter(status__in=_FINISHED)
    if before is not None:
        finished = finished.filter(finished_at__lt=before)
    return finished.order_by("-finished_at", "-pk").first()


def chain_verification_of_record(
    period_end: datetime.datetime, *, finished_since: datetime.datetime
) -> ChainVerification | None:
    """The last finished verification when it may stand for a period ending at
    ``period_end``: it passed, started at or after the period's end, read the chain up to
    the period's last event or further, and finished at or after ``finished_since``. None
    otherwise: none yet, the last one failed or could not finish (a newer verdict is never
    passed over for an older pass), or it ran too early or too long ago.

    Queries: ``last_chain_verification()``; then ``SELECT seq FROM audit_auditevent WHERE
    created_at < period_end ORDER BY created_at DESC, seq DESC LIMIT 1`` (the period's last
    event: an event appended in the period but committed after the verification started is
    not in what it read)."""
    last = last_chain_verification()
    if (
        last is None
        or last.status != ChainVerification.Status.PASSED
        or last.started_at is None
        or last.finished_at is None
        or last.started_at < period_end
        or last.finished_at < finished_since
    ):
        return None
    period_last_seq = (
        AuditEvent.objects.filter(created_at__lt=period_end)
        .order_by("-created_at", "-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if period_last_seq is not None and (last.last_seq or 0) < period_last_seq:
        return None
    return last


def chain_verifications_between(
    start: datetime.datetime, end: datetime.datetime
) -> list[ChainVerification]:
    """The verifications finished in ``[start, end)``, oldest first (the review's count of
    runs and failures in its period).

    Query: ``SELECT … FROM audit_chainverification WHERE status IN ('passed', 'failed',
    'error') AND finished_at >= start AND finished_at < end ORDER BY finished_at, id``."""
    return list(
        ChainVerification.objects.filter(
            status__in=_FINISHED, finished_at__gte=start, finished_at__lt=end
        ).order_by("finished_at", "pk")
    )


@dataclass(frozen=True)
class ChainHealth:
    """The audit chain's state for the dashboards: the last finished verification
    (``last_chain_verification``), one still running, the last checkpoint and the events
    after it."""

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
    return ChainHealth(
        last_verification=last_chain_verification(),
        running=ChainVerification.objects.exclude(status__in=_FINISHED)
        .order_by("-requested_at", "-pk")
        .first(),
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
