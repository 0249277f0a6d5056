"""Background jobs' attempts (``security.JobAttempt``): old ones deleted by a daily job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import SYSTEM, record
from audit.schedules import ensure_schedule
from security.actors import Actor
from security.models import JobAttempt

User = get_user_model()


JOB_ATTEMPTS_SCHEDULE_NAME = "security.purge_job_attempts"


JOB_ATTEMPTS_TASK = "security.tasks.purge_job_attempts_job"


def register_job_attempts_schedule() -> None:
    """Make exactly one daily django-q2 schedule delete old job attempts (idempotent)."""
    from django_q.models import Schedule

    ensure_schedule(
        JOB_ATTEMPTS_SCHEDULE_NAME, func=JOB_ATTEMPTS_TASK, schedule_type=Schedule.DAILY
    )


def purge_job_attempts(*, by: Actor = SYSTEM, now: Any = None) -> int:
    """Delete succeeded job attempts older than Q_ATTEMPTS_KEEP_DAYS and the others older
    than Q_FAILED_ATTEMPTS_KEEP_DAYS; never one still running. The number deleted."""
    now = now or timezone.now()
    succeeded = now - timedelta(days=int(settings.Q_ATTEMPTS_KEEP_DAYS))
    others = now - timedelta(days=int(settings.Q_FAILED_ATTEMPTS_KEEP_DAYS))
    with transaction.atomic():
        old = JobAttempt.objects.filter(
            Q(outcome=JobAttempt.Outcome.SUCCEEDED, started_at__lt=succeeded)
            | Q(
                outcome__in=[JobAttempt.Outcome.FAILED, JobAttempt.Outcome.LOST],
                started_at__lt=others,
            )
        )
        count, _ = old.delete()
        if count:
            record(
                "security.job_attempts_purged",
                actor=by,
                count=count,
                succeeded_before=succeeded.isoformat(),
                others_before=others.isoformat(),
            )
    return count
