"""Verifying the chain and keeping the outcome, whichever path asks for it.

``verify_and_record`` is the one path every verification takes (the admin's background
job, ``manage.py verify_audit``, the scheduled detector, a review being generated): it
writes the ``ChainVerification`` row that every reader takes "the last verification" from
(``audit.selectors.last_chain_verification``) and the ``audit.chain_verified`` event.

From the admin, a verification is queued as a background job, with its progress:

``request_chain_verification`` (a security officer or an auditor, from the checkpoint
page or the dashboard) records the request and queues ``audit.tasks.verify_chain_job``
after commit; the job (``run_chain_verification``) reads the whole chain as
``manage.py verify_audit`` does, writes how far it has read on the
``ChainVerification`` row as it goes, and records the result in the chain itself
(``audit.chain_verified``: intact or the first broken event).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM
from audit.models import AuditEvent, ChainVerification
from audit.services import describe_actor, record_event
from audit.verify import VerificationResult, verify_chain
from db.dialect import is_postgresql

TASK = "audit.tasks.verify_chain_job"
logger = logging.getLogger(__name__)

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
    """Verify the chain for a request queued from the admin (``verify_and_record``). A
    finished one is left as it is (a job run twice does not verify twice)."""
    verification = ChainVerification.objects.get(pk=verification_id)
    if verification.is_finished:
        return verification
    done, _result = verify_and_record(by=SYSTEM, source=verification.source, pending=verification)
    return done


def verify_and_record(
    *,
    by: Any,
    source: str,
    label: str = "",
    pending: ChainVerification | None = None,
    checkpoint_file: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int | None = None,
) -> tuple[ChainVerification, VerificationResult]:
    """Verify the whole chain (streamed) and keep the outcome: the one path every
    verification takes (the admin's job, ``manage.py verify_audit``, the scheduled
    detector, a review being generated). Its ``ChainVerification`` row (``pending``, one
    queued from the admin, else a new one labelled ``label`` or ``by``) shows the progress
    while it runs and the result after; the result joins the chain as an
    ``audit.chain_verified`` event (actor: ``by``). A crash leaves the row as ERROR."""
    total = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    started = {"status": ChainVerification.Status.RUNNING, "started_at": timezone.now()}
    if pending is None:
        pending = ChainVerification.objects.create(
            requested_by=(label or describe_actor(by)[2])[:200],
            source=source,
            events_total=total,
            **started,
        )
    else:
        ChainVerification.objects.filter(pk=pending.pk).update(events_total=total, **started)
    verification_id = pending.pk
    advanced = _ProgressOnRow(verification_id, then=progress)
    try:
        result = verify_chain(
            checkpoint_file=checkpoint_file,
            progress=advanced,
            progress_every=progress_every or max(1000, total // 50),
        )
    except Exception as exc:
        ChainVerification.objects.filter(pk=verification_id).update(
            status=ChainVerification.Status.ERROR,
            finished_at=timezone.now(),
            first_problem=f"{type(exc).__name__}"[:500],
        )
        raise
    finally:
        advanced.close()
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
            actor=by,
            obj=verification,
            request=None,
            details={
                "verification_id": verification.pk,
                "source": verification.source,
                "ok": result.ok,
                "events": result.events,
                "last_seq": result.last_seq,
                "head_hash": result.head_hash,
                "checkpoints": result.checkpoints,
                "exported_checkpoint": result.exported_checkpoint,
                "problems": len(result.problems),
                "first_broken_seq": first.seq if first else None,
                "first_problem": first.kind if first else "",
            },
        )
    return verification, result


class _ProgressOnRow:
    """Writes how far a verification has read onto its row, then calls ``then``.

    On PostgreSQL the chain is streamed on Django's connection inside a transaction: that
    connection is busy until the last row (a query on it would wait for the stream, which
    waits for the query: a hang), and what it wrote would show only at the end. So the
    progress goes through a short-lived connection of its own, in autocommit, where the
    admin's page sees it at once; with a lock timeout, and best effort (progress is not
    the result: a failure to write it is logged and the verification goes on)."""

    def __init__(self, verification_id: int, *, then: Callable[[int], None] | None) -> None:
        self.verification_id = verification_id
        self.then = then
        self.side: Any = None
        self.broken = False

    def __call__(self, count: int) -> None:
        if not is_postgresql():
            ChainVerification.objects.filter(pk=self.verification_id).update(events_checked=count)
        elif not self.broken:
            try:
                if self.side is None:
                    from audit.backups.postgres import connect

                    self.side = connect()
                    self.side.execute("SET lock_timeout = '2s'")
                self.side.execute(
                    "UPDATE audit_chainverification SET events_checked = %s WHERE id = %s",
                    [count, self.verification_id],
                )
            except psycopg.Error:
                logger.warning("could not record the chain verification's progress", exc_info=True)
                self.broken = True
        if self.then is not None:
            self.then(count)

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
            self.side = None
