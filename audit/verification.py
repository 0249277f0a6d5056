"""Verifying the chain from the admin: queued as a background job, with its progress.

``request_chain_verification`` (a security officer or an auditor, from the checkpoint
page or the dashboard) records the request and queues ``audit.tasks.verify_chain_job``
after commit; the job (``run_chain_verification``) reads the whole chain as
``manage.py verify_audit`` does, writes how far it has read on the
``ChainVerification`` row as it goes, and records the result in the chain itself
(``audit.chain_verified``: intact or the first broken event).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM
from audit.models import AuditEvent, ChainVerification
from audit.services import describe_actor, record_event
from audit.verify import verify_chain

TASK = "audit.tasks.verify_chain_job"

# A queued or running verification older than this is taken as lost (its job died):
# a new request then starts another instead of waiting for it.
STALE_AFTER = datetime.timedelta(hours=1)


def current_verification() -> ChainVerification | None:
    """The verification queued or running now (not stale), if any."""
    return (
        ChainVerification.objects.filter(
            status__in=[ChainVerification.Status.QUEUED, ChainVerification.Status.RUNNING],
            requested_at__gte=timezone.now() - STALE_AFTER,
        )
        .order_by("-requested_at", "-pk")
        .first()
    )


def request_chain_verification(
    *, by: Any, request: HttpRequest | None = None
) -> tuple[ChainVerification, bool]:
    """Queue a verification of the whole chain, audited; one at a time: while one is
    queued or running it is returned instead (second value False)."""
    with transaction.atomic():
        running = current_verification()
        if running is not None:
            return running, False
        _kind, _ident, label = describe_actor(by)
        verification = ChainVerification.objects.create(requested_by=label[:200])
        record_event(
            "audit.chain_verification_requested",
            actor=by,
            obj=verification,
            request=request,
            details={"verification_id": verification.pk},
        )
        transaction.on_commit(lambda: _enqueue(verification.pk))
    return verification, True


def _enqueue(verification_id: int) -> None:
    from django_q.tasks import async_task

    async_task(TASK, verification_id, timeout=settings.Q_LONG_TIMEOUT, group="audit")


def run_chain_verification(verification_id: int) -> ChainVerification:
    """Verify the chain for a queued request, recording progress on its row and the result
    as an ``audit.chain_verified`` event (actor: the system). A finished one is left as it
    is (a job run twice does not verify twice)."""
    verification = ChainVerification.objects.get(pk=verification_id)
    if verification.is_finished:
        return verification
    total = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    ChainVerification.objects.filter(pk=verification_id).update(
        status=ChainVerification.Status.RUNNING, started_at=timezone.now(), events_total=total
    )

    def progress(count: int) -> None:
        ChainVerification.objects.filter(pk=verification_id).update(events_checked=count)

    try:
        result = verify_chain(progress=progress, progress_every=max(1000, total // 50))
    except Exception as exc:
        ChainVerification.objects.filter(pk=verification_id).update(
            status=ChainVerification.Status.ERROR,
            finished_at=timezone.now(),
            first_problem=f"{type(exc).__name__}"[:500],
        )
        raise
    first = result.first_problem
    with transaction.atomic():
        verification = ChainVerification.objects.select_for_update().get(pk=verification_id)
        verification.status = (
            ChainVerification.Status.PASSED if result.ok else ChainVerification.Status.FAILED
        )
        verification.events_checked = result.events
        verification.last_seq = result.last_seq
        verification.checkpoints = result.checkpoints
        verification.problems = len(result.problems)
        verification.first_problem = str(first)[:500] if first else ""
        verification.finished_at = timezone.now()
        verification.save()
        record_event(
            "audit.chain_verified",
            actor=SYSTEM,
            obj=verification,
            request=None,
            details={
                "verification_id": verification.pk,
                "ok": result.ok,
                "events": result.events,
                "last_seq": result.last_seq,
                "head_hash": result.head_hash,
                "checkpoints": result.checkpoints,
                "problems": len(result.problems),
                "first_broken_seq": first.seq if first else None,
                "first_problem": first.kind if first else "",
            },
        )
    return verification
