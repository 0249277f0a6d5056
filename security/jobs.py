"""The job queue's broker: django-q2's ORM broker, enqueueing by an INSERT compiled once
(``db.broker``), taking jobs with backoff and keeping every attempt.

Taking a job (``dequeue``), django-q2 locks its row until "now + retry": a job a dead
cluster had taken, or one that failed, is taken again once the lock has passed. This
broker locks attempt *n* of a job for ``Q_RETRY`` x 2^(n-1) seconds (backoff), and
never less than the job's own time limit plus the margin ``Q_RETRY - Q_TIMEOUT`` (a
long job, enqueued with ``timeout=``, is not taken twice while it runs); it takes a job
at most ``Q_MAX_ATTEMPTS`` times, counting attempts whose cluster died (django-q2
counts only those that reported back). Each attempt is a ``JobAttempt`` row, written
when the job is taken and finished by ``record_outcome`` (the cluster's monitor, on
django-q2's ``post_execute``), so failures stay visible after a later success and a
cluster's death shows as a *lost* attempt.
"""

from __future__ import annotations

import datetime
import json
import logging
from time import sleep
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import BadSignature, SignedPackage

from db.broker import CompiledInsertORM
from security.models import JobAttempt

logger = logging.getLogger(__name__)


def lock_seconds(attempt: int, *, timeout: int | None = None) -> int:
    """How long attempt ``attempt`` (1, 2, ...) of a job holds it: ``Q_RETRY`` doubled for
    each earlier attempt, and never less than the job's time limit plus the margin
    ``Q_RETRY - Q_TIMEOUT`` that django-q2 asks of the defaults."""
    retry, default_timeout = int(settings.Q_RETRY), int(settings.Q_TIMEOUT)
    backoff = retry * 2 ** max(attempt - 1, 0)
    own = int(timeout) if timeout and int(timeout) > 0 else default_timeout
    return max(backoff, own + retry - default_timeout)


def _json_args(args: Any) -> list[Any]:
    """The job's positional arguments as JSON (ids, dates as text); else their repr."""
    try:
        values = list(args or ())
        json.dumps(values)
        return values
    except (TypeError, ValueError):
        return [repr(args)[:200]]


def error_summary(result: Any) -> str:
    """What a failed attempt records: django-q2's result is "message : traceback"; the
    traceback's last line names the exception and its message (no local values)."""
    text = str(result or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[-1] != lines[0]:
        return lines[-1][:500]
    return text.split(" : Traceback", 1)[0].strip()[:500]


class CompiledORM(CompiledInsertORM):
    """``Q_CLUSTER["broker_class"]``: the ORM broker of ``Q_CLUSTER["orm"]``."""

    def dequeue(self) -> list[tuple[int, str]] | None:
        """Take up to ``Q_CLUSTER["bulk"]`` free jobs, each locked by ``lock_seconds``
        for its attempt, and record the attempt; a job out of attempts is dropped."""
        now = timezone.now()
        free = list(self.get_connection().filter(key=self.list_key, lock__lt=now)[: Conf.BULK])
        if not free:
            sleep(Conf.POLL)  # an empty queue: spare the CPU, as django-q2 does
            return None
        taken: list[tuple[int, str]] = []
        for job in free:
            try:
                task = SignedPackage.loads(job.payload)
            except (TypeError, BadSignature):
                # Taken as django-q2 takes it; its pusher logs and drops the package.
                if self._lock(job, now + datetime.timedelta(seconds=int(settings.Q_RETRY))):
                    taken.append((job.pk, job.payload))
                continue
            if self._take(job, task, now):
                taken.append((job.pk, job.payload))
        return taken

    def _lock(self, job: OrmQ, until: datetime.datetime) -> bool:
        """Lock the job's row if no other cluster took it meanwhile."""
        return bool(self.get_connection().filter(id=job.id, lock=job.lock).update(lock=until))

    def _take(self, job: OrmQ, task: dict[str, Any], now: datetime.datetime) -> bool:
        task_id = str(task.get("id", ""))[:32]
        last = (
            JobAttempt.objects.filter(task_id=task_id)
            .order_by("-attempt")
            .values_list("pk", "attempt", "outcome")
            .first()
        )
        earlier = last[1] if last else 0
        if last and last[2] == JobAttempt.Outcome.RUNNING:
            # Taken before and never reported back: its worker or cluster died.
            JobAttempt.objects.filter(pk=last[0], outcome=JobAttempt.Outcome.RUNNING).update(
                outcome=JobAttempt.Outcome.LOST,
                finished_at=now,
                gave_up=earlier >= int(settings.Q_MAX_ATTEMPTS),
            )
        if earlier >= int(settings.Q_MAX_ATTEMPTS):
            if self.get_connection().filter(id=job.id, lock=job.lock).delete()[0]:
                JobAttempt.objects.filter(task_id=task_id, attempt=earlier).update(gave_up=True)
                logger.error(
                    "job %s (%s) dropped after %s attempts", task.get("name"), task_id, earlier
                )
            return False
        attempt = earlier + 1
        retry_at = now + datetime.timedelta(
            seconds=lock_seconds(attempt, timeout=task.get("timeout"))
        )
        if not self._lock(job, retry_at):
            return False  # another cluster took it first
        JobAttempt.objects.create(
            task_id=task_id,
            func=_func_name(task.get("func"))[:200],
            task_name=str(task.get("name", ""))[:100],
            args=_json_args(task.get("args")),
            attempt=attempt,
            started_at=now,
            retry_at=retry_at,
        )
        return True


def _func_name(func: Any) -> str:
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", "")
    name = getattr(func, "__qualname__", repr(func))
    return f"{module}.{name}" if module else name


def record_outcome(task: dict[str, Any]) -> None:
    """Finish the job's running attempt with the cluster's result (the monitor's
    ``post_execute``). A job run without this broker (``sync``) gets its row here."""
    task_id = str(task.get("id", ""))[:32]
    succeeded = bool(task.get("success"))
    finished = task.get("stopped") or timezone.now()
    error = "" if succeeded else error_summary(task.get("result"))
    with transaction.atomic():
        attempt = (
            JobAttempt.objects.select_for_update()
            .filter(task_id=task_id)
            .order_by("-attempt")
            .first()
        )
        if attempt is None or attempt.outcome not in (
            JobAttempt.Outcome.RUNNING,
            JobAttempt.Outcome.LOST,
        ):
            number = attempt.attempt + 1 if attempt else 1
            attempt = JobAttempt(
                task_id=task_id,
                func=_func_name(task.get("func"))[:200],
                task_name=str(task.get("name", ""))[:100],
                args=_json_args(task.get("args")),
                attempt=number,
                started_at=task.get("started") or finished,
            )
        attempt.finished_at = finished
        attempt.outcome = JobAttempt.Outcome.SUCCEEDED if succeeded else JobAttempt.Outcome.FAILED
        attempt.error = error
        attempt.gave_up = not succeeded and attempt.attempt >= int(settings.Q_MAX_ATTEMPTS)
        if succeeded or attempt.gave_up:
            attempt.retry_at = None
        attempt.save()
