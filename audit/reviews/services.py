"""Every change of a security review: generating it (sections from live data, the signed
PDF), signing it off (step-up; immutable afterwards, its hash in the audit log), and its
findings (raised, moved, closed; carried into later reviews until closed)."""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, connections, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import SYSTEM, record
from audit.exceptions import AuditError
from audit.models import ChainVerification
from audit.reviews import checks
from audit.reviews import selectors as figures
from audit.reviews.models import ReviewFinding, SecurityReview
from audit.schedules import ensure_schedule
from audit.services import describe_actor

logger = logging.getLogger(__name__)
Actor = Any

GENERATE_PERMISSION = "audit.generate_review"
SIGN_OFF_PERMISSION = "audit.sign_off_review"
FINDING_PERMISSION = "audit.change_reviewfinding"
SCHEDULE_NAME = "reviews.quarterly"


class ReviewRefused(AuditError):
    """A review or finding change is not possible as asked; ``field`` names the input."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message, self.field = message, field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _check_may(by: Actor, permission: str) -> None:
    if by == SYSTEM:
        return
    if not (getattr(by, "is_active", False) and by.has_perm(permission)):
        raise ReviewRefused(_("reviews: needs the Security officer role"), field="user")


def _step_up(by: Actor, request: HttpRequest | None) -> None:
    from security.exceptions import StepUpRequired
    from security.services import require_step_up

    try:
        require_step_up(request, by)
    except StepUpRequired as exc:
        raise ReviewRefused(str(exc), field="step_up") from None


def period_bounds(start: datetime.date, end: datetime.date) -> tuple[datetime.datetime, ...]:
    """``[start 00:00 UTC, the day after end 00:00 UTC)``: the period's moments."""
    return (
        datetime.datetime.combine(start, datetime.time(), tzinfo=datetime.UTC),
        datetime.datetime.combine(
            end + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.UTC
        ),
    )


def quarter_of(day: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last day of the calendar quarter holding ``day``."""
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = datetime.date(day.year, first_month, 1)
    next_start = (
        datetime.date(day.year + 1, 1, 1)
        if first_month == 10
        else datetime.date(day.year, first_month + 3, 1)
    )
    return start, next_start - datetime.timedelta(days=1)


# A verification of record older than this is not stated: the daily scheduled check
# (``audit.incidents``) leaves one at most a day old, with two hours to spare for a slow run.
VERIFICATION_OF_RECORD_MAX_AGE = datetime.timedelta(hours=26)


def _chain_verification(until: datetime.datetime, by: Actor) -> dict[str, Any]:
    """The chain verification the review states (decision 76): the verification of record
    when one may stand for the period (passed, started after the period's end, read its
    last event, at most ``VERIFICATION_OF_RECORD_MAX_AGE`` old:
    ``audit.selectors.chain_verification_of_record``); otherwise a fresh verification of the
    whole chain (streamed), kept as every verification is (``verify_and_record``, source
    "review"), a broken chain opening its incident (``audit.incidents.detectors``)."""
    from audit.evidence import verification_summary
    from audit.incidents.detectors import report_broken_chain
    from audit.selectors import chain_verification_of_record
    from audit.verification import verify_and_record

    record = chain_verification_of_record(
        until, finished_since=timezone.now() - VERIFICATION_OF_RECORD_MAX_AGE
    )
    if record is not None:
        return {**verification_summary(record), "of_record": True}
    verification, result = verify_and_record(by=by, source=ChainVerification.Source.REVIEW)
    report_broken_chain(result, by=by)
    return {**verification_summary(verification), "of_record": False}


def _check_exported_copies(by: Actor) -> list[dict[str, Any]]:
    """Every exported copy of the chain within reach, checked against the live chain; one
    that does not match opens its incident (``audit.incidents.detectors``)."""
    from audit.incidents.detectors import check_exported_copies

    return [check.as_json() for check in check_exported_copies(by=by)]


def _on_a_connection_of_its_own(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    finally:
        connections.close_all()  # this thread's connections; the thread ends with the review


def _apart(pool: ThreadPoolExecutor, function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """``function(*args)`` started in ``pool``'s thread, on a database connection of its
    own; call what this returns to wait for its result. Inside a transaction (the caller's
    atomic block, a test's) it runs in this thread when called instead: another
    connection would not see the transaction's rows."""
    if connection.in_atomic_block:
        return functools.partial(function, *args)
    return pool.submit(_on_a_connection_of_its_own, function, *args).result


def compute_sections(
    start: datetime.date,
    end: datetime.date,
    *,
    by: Actor = SYSTEM,
    scanners: bool = True,
    review_id: int | None = None,
) -> dict[str, Any]:
    """Every section of the review of ``[start, end]`` from live data (no writes but the
    chain verification's own event)."""
    begin, until = period_bounds(start, end)
    now = min(until, timezone.now())
    # The payments section's queries (the quarter's payments by week and outcome, the
    # fraud report) take about as long as all the others together: they run on a second
    # connection meanwhile. Each query already sees its own snapshot (autocommit), so
    # the sections are as consistent with each other as before.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-payments") as pool:
        payments = _apart(pool, figures.payments_and_fraud, begin, until)
        sections: dict[str, Any] = {
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "access": figures.access_review(begin, until),
            "authentication": figures.authentication(begin, until),
            "keys": figures.keys(begin, until, now),
            "integrity": figures.audit_integrity(
                begin, until, _chain_verification(until, by), _check_exported_copies(by)
            ),
            "backups": figures.backup_runs(begin, until),
            "incidents": figures.incidents(begin, until),
            "technical": checks.technical_checks(scanners=scanners),
            "findings": figures.findings_for(until, review_id),
        }
        sections["payments"] = payments()
    sections["pci"] = checks.pci_checklist(sections)
    return sections


def generate_review(
    *,
    period_start: datetime.date,
    period_end: datetime.date,
    by: Actor,
    request: HttpRequest | None = None,
    scanners: bool = True,
) -> SecurityReview:
    """Generate (or generate again, while a draft) the review of ``[period_start,
    period_end]``: its sections, charts and signed PDF; audited ``review.generated`` with
    the PDF's SHA-256. A signed review of that period is never replaced."""
    from audit.reviews.document import render_review_pdf

    _check_may(by, GENERATE_PERMISSION)
    if not isinstance(period_start, datetime.date) or not isinstance(period_end, datetime.date):
        raise ReviewRefused(_("give the period as two dates"), field="period_start")
    if period_end < period_start:
        raise ReviewRefused(_("the period ends before it starts"), field="period_end")
    if period_end > timezone.now().date():
        raise ReviewRefused(_("the period ends in the future"), field="period_end")
    existing = SecurityReview.objects.filter(
        period_start=period_start, period_end=period_end
    ).first()
    if existing is not None and existing.status == SecurityReview.Status.SIGNED:
        raise ReviewRefused(_("the review of this period is signed off"), field="period_end")
    sections = compute_sections(
        period_start,
        period_end,
        by=by,
        scanners=scanners,
        review_id=existing.pk if existing else None,
    )
    draft = existing or SecurityReview(period_start=period_start, period_end=period_end)
    pdf = render_review_pdf(draft, sections)
    digest = hashlib.sha256(pdf).hexdigest()
    with transaction.atomic():
        if existing is not None:
            review = SecurityReview.objects.select_for_update().get(pk=existing.pk)
            if review.status == SecurityReview.Status.SIGNED:  # signed while we computed
                raise ReviewRefused(
                    _("the review of this period is signed off"), field="period_end"
                )
        else:
            review = SecurityReview(period_start=period_start, period_end=period_end)
        review.sections = sections
        review.generated_at = timezone.now()
        review.generated_by = describe_actor(by)[2]
        review.pdf, review.pdf_sha256 = pdf, digest
        review.save()
        record(
            "review.generated",
            actor=by,
            obj=review,
            request=request,
            period_start=period_start.isoformat(),
            period_end=period_end.isoformat(),
            pdf_sha256=digest,
            chain_ok=sections["integrity"]["ok"],
        )
    return review


def sign_off_review(
    review: SecurityReview, *, note: str, by: Actor, request: HttpRequest | None
) -> SecurityReview:
    """A security officer signs the review off with a fresh second factor: the PDF is
    rendered a last time with the findings as they stand and the sign-off, signed, and
    its SHA-256 goes into the audit log (``review.signed_off``). Immutable afterwards."""
    from audit.reviews.document import render_review_pdf

    if by == SYSTEM:
        raise ReviewRefused(_("a person signs a review off"), field="user")
    _check_may(by, SIGN_OFF_PERMISSION)
    _step_up(by, request)
    note = (note or "").strip()
    if len(note) > 2000:
        raise ReviewRefused(_("at most %(limit)s characters") % {"limit": 2000}, field="note")
    with transaction.atomic():
        locked = SecurityReview.objects.select_for_update().get(pk=review.pk)
        if locked.status == SecurityReview.Status.SIGNED:
            raise ReviewRefused(_("this review is already signed off"), field="review")
        until = period_bounds(locked.period_start, locked.period_end)[1]
        sections = dict(locked.sections)
        sections["findings"] = figures.findings_for(until, locked.pk)
        locked.status = SecurityReview.Status.SIGNED
        locked.signed_at, locked.signed_by, locked.sign_off_note = timezone.now(), by, note
        locked.sections = sections
        locked.pdf = render_review_pdf(locked, sections)
        locked.pdf_sha256 = hashlib.sha256(locked.pdf).hexdigest()
        locked.save()
        record(
            "review.signed_off",
            actor=by,
            obj=locked,
            request=request,
            period_start=locked.period_start.isoformat(),
            period_end=locked.period_end.isoformat(),
            pdf_sha256=locked.pdf_sha256,
            findings=len(sections["findings"]),
        )
    return locked


def raise_finding(
    review: SecurityReview,
    *,
    title: str,
    detail: str = "",
    owner: Any,
    due_date: datetime.date,
    by: Actor,
    request: HttpRequest | None = None,
) -> ReviewFinding:
    """A finding of a review, with its owner (an active staff account) and due date;
    shown in every later review until closed. Audited."""
    _check_may(by, FINDING_PERMISSION)
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise ReviewRefused(_("give a title of at most 200 characters"), field="title")
    if owner is None or not (owner.is_active and owner.is_staff):
        raise ReviewRefused(_("choose an active staff account"), field="owner")
    if not isinstance(due_date, datetime.date):
        raise ReviewRefused(_("give a due date"), field="due_date")
    with transaction.atomic():
        finding = ReviewFinding.objects.create(
            review=review,
            title=title,
            detail=(detail or "").strip()[:5000],
            owner=owner,
            due_date=due_date,
            raised_at=timezone.now(),
        )
        record(
            "review.finding_raised",
            actor=by,
            obj=finding,
            request=request,
            review_id=review.pk,
            owner=owner.get_username(),
            due_date=due_date.isoformat(),
        )
    return finding


def set_finding_status(
    finding: ReviewFinding, *, status: str, by: Actor, request: HttpRequest | None = None
) -> ReviewFinding:
    """Move a finding (open, in progress, closed); closing stamps when. Audited."""
    _check_may(by, FINDING_PERMISSION)
    if status not in ReviewFinding.Status.values:
        raise ReviewRefused(
            _("choose one of: %(choices)s") % {"choices": ", ".join(ReviewFinding.Status.values)},
            field="status",
        )
    with transaction.atomic():
        locked = ReviewFinding.objects.select_for_update().get(pk=finding.pk)
        if locked.status == status:
            return locked
        previous = locked.status
        locked.status = status
        locked.closed_at = timezone.now() if status == ReviewFinding.Status.CLOSED else None
        locked.save(update_fields=["status", "closed_at"])
        record(
            "review.finding_status_changed",
            actor=by,
            obj=locked,
            request=request,
            previous=previous,
            status=status,
        )
    return locked


def generate_due_review(*, today: datetime.date | None = None) -> SecurityReview | None:
    """The scheduled job's work: once a quarter has ended, its review (if none exists yet)."""
    today = today or timezone.now().date()
    start = quarter_of(today)[0]
    last_start, last_end = quarter_of(start - datetime.timedelta(days=1))
    if SecurityReview.objects.filter(period_start=last_start, period_end=last_end).exists():
        return None
    return generate_review(period_start=last_start, period_end=last_end, by=SYSTEM)


def register_review_schedule() -> None:
    """Daily, generate the last quarter's review once it has ended (idempotent: only when
    missing), so a quarter end is never missed by a cluster that was down that day."""
    from django.conf import settings
    from django_q.models import Schedule

    ensure_schedule(
        SCHEDULE_NAME,
        func="audit.reviews.tasks.generate_due_review_job",
        schedule_type=Schedule.DAILY,
        timeout=settings.Q_LONG_TIMEOUT,
    )
