"""The job queue's broker: django-q2's ORM broker with a compiled INSERT, taking jobs with
backoff and keeping every attempt."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from audit.models import AuditEvent
from security.jobs import CompiledORM
from security.models import JobAttempt

pytestmark = pytest.mark.django_db


def test_the_configured_broker_is_the_compiled_orm_broker() -> None:
    assert isinstance(get_broker(), CompiledORM)


def test_an_enqueued_job_is_one_insert_and_the_cluster_dequeues_it() -> None:
    OrmQ.objects.all().delete()
    broker = get_broker()

    with CaptureQueriesContext(connection) as queries:
        task_id = async_task("billing.delivery.tasks.queue_receipts_job", [7], broker=broker)

    assert [q["sql"].split(" ", 1)[0] for q in queries] == ["INSERT"]
    [(package_id, package)] = broker.dequeue()
    task = SignedPackage.loads(package)
    assert (task["id"], task["func"], task["args"]) == (
        task_id,
        "billing.delivery.tasks.queue_receipts_job",
        ([7],),
    )
    broker.acknowledge(package_id)
    assert not OrmQ.objects.exists()


# --- taking jobs: backoff, attempts kept, lost attempts, giving up --------------------


def _take(broker: CompiledORM) -> list[tuple[int, str]]:
    taken = broker.dequeue()
    return taken or []


def test_each_attempt_holds_the_job_longer_and_is_kept(settings: Any) -> None:
    settings.Q_RETRY, settings.Q_TIMEOUT, settings.Q_MAX_ATTEMPTS = 60, 45, 4
    OrmQ.objects.all().delete()
    broker = get_broker()
    start = timezone.now()
    task_id = async_task("billing.delivery.tasks.queue_receipts_job", [7], broker=broker)

    held: list[float] = []
    clock = start
    for attempt in range(1, 5):
        # Nobody reports back: the worker died each time, so the job comes back when its
        # lock has passed, held twice as long each time.
        clock += datetime.timedelta(seconds=(held[-1] if held else 0) + 1)
        with time_machine.travel(clock, tick=False):
            [(package_id, _)] = _take(broker)
            assert _take(broker) == []  # locked: no second cluster takes it meanwhile
        row = JobAttempt.objects.get(task_id=task_id, attempt=attempt)
        assert row.retry_at is not None
        held.append((row.retry_at - row.started_at).total_seconds())

    assert held == [60, 120, 240, 480]
    attempts = list(JobAttempt.objects.filter(task_id=task_id).order_by("attempt"))
    assert [a.outcome for a in attempts] == ["lost", "lost", "lost", "running"]
    assert (attempts[0].func, attempts[0].args) == (
        "billing.delivery.tasks.queue_receipts_job",
        [[7]],
    )

    # Out of attempts: the next time it comes free it is dropped, and says so.
    with time_machine.travel(clock + datetime.timedelta(seconds=held[-1] + 1), tick=False):
        assert _take(broker) == []
    assert not OrmQ.objects.filter(pk=package_id).exists()
    last = JobAttempt.objects.get(task_id=task_id, attempt=4)
    assert (last.outcome, last.gave_up) == ("lost", True)


def test_a_long_job_is_held_for_its_own_time_limit(settings: Any) -> None:
    from security.jobs import lock_seconds

    settings.Q_RETRY, settings.Q_TIMEOUT = 60, 45
    assert lock_seconds(1) == 60 and lock_seconds(3) == 240
    assert lock_seconds(1, timeout=1800) == 1815  # its limit and the 15 s margin
    assert lock_seconds(6, timeout=1800) == 60 * 32


def test_a_failure_stays_visible_after_the_retry_succeeds() -> None:
    from security.jobs import record_outcome

    OrmQ.objects.all().delete()
    broker = get_broker()
    task_id = async_task("payments.tasks.reconcile_payments_task", broker=broker)
    _take(broker)
    now = timezone.now()
    record_outcome(
        {
            "id": task_id,
            "success": False,
            "stopped": now,
            "result": "gateway down : Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n'
            "payments.gateways.GatewayError: gateway down\n",
        }
    )
    with time_machine.travel(now + datetime.timedelta(seconds=120), tick=False):
        _take(broker)
        record_outcome({"id": task_id, "success": True, "stopped": timezone.now(), "result": 0})

    attempts = list(JobAttempt.objects.filter(task_id=task_id).order_by("attempt"))
    assert [(a.outcome, a.error) for a in attempts] == [
        ("failed", "payments.gateways.GatewayError: gateway down"),
        ("succeeded", ""),
    ]


def test_the_last_failed_attempt_gives_up(settings: Any) -> None:
    from security.jobs import record_outcome

    settings.Q_MAX_ATTEMPTS = 1
    OrmQ.objects.all().delete()
    task_id = async_task("payments.tasks.reconcile_payments_task", broker=get_broker())
    _take(get_broker())

    record_outcome({"id": task_id, "success": False, "stopped": timezone.now(), "result": "x"})

    attempt = JobAttempt.objects.get(task_id=task_id)
    assert (attempt.outcome, attempt.gave_up, attempt.retry_at) == ("failed", True, None)


def test_old_attempts_are_purged_by_outcome_and_running_ones_kept(settings: Any) -> None:
    from django_q.models import Schedule

    from security.services import purge_job_attempts

    settings.Q_ATTEMPTS_KEEP_DAYS, settings.Q_FAILED_ATTEMPTS_KEEP_DAYS = 30, 180
    now = timezone.now()

    def attempt(n: int, outcome: str, days: int) -> None:
        JobAttempt.objects.create(
            task_id=f"t{n}",
            func="f",
            task_name="n",
            attempt=1,
            outcome=outcome,
            started_at=now - datetime.timedelta(days=days),
        )

    attempt(1, "succeeded", 31)  # gone
    attempt(2, "succeeded", 29)
    attempt(3, "failed", 31)
    attempt(4, "failed", 181)  # gone
    attempt(5, "lost", 181)  # gone
    attempt(6, "running", 400)

    assert purge_job_attempts(now=now) == 3

    assert sorted(JobAttempt.objects.values_list("task_id", flat=True)) == ["t2", "t3", "t6"]
    [event] = AuditEvent.objects.filter(action="security.job_attempts_purged")
    assert event.details["count"] == 3
    assert Schedule.objects.filter(name="security.purge_job_attempts").count() == 1
