"""Delivery under a real django-q2 cluster (two workers) and a real, slow SMTP server: one
queued delivery raced for by its own job and the safety net is emailed once; a worker
killed mid-send has its job retried within Q_RETRY, and the retry does not send again."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import pytest
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from audit import SYSTEM
from billing.delivery import services
from billing.delivery.models import Delivery, InvoiceLink
from billing.models import Customer, Invoice
from security.models import JobAttempt
from tests.billing.delivery.conftest import SlowMailbox
from tests.cluster import JobCluster, wait_until

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ATTEMPT = "billing.delivery.tasks.attempt_delivery_job"
SAFETY_NET = "billing.delivery.tasks.send_due_deliveries_job"


@pytest.fixture
def queued(
    default_series: None, make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> Delivery:
    """Alice's invoice, its delivery queued (a single-use link: she has no PGP key)."""
    return services.queue_delivery(make_open_invoice(alice_company), by=SYSTEM)


@pytest.mark.parametrize("slow_smtp_server", [1.5], indirect=True)
def test_two_workers_racing_for_one_delivery_send_one_email(
    queued: Delivery, slow_smtp_server: SlowMailbox, job_cluster: Callable[..., JobCluster]
) -> None:
    # Its own job and the hourly safety net (also due ~30 s after a cluster starts), both
    # waiting when the cluster comes up: each of the two workers takes one.
    async_task(ATTEMPT, queued.pk)
    async_task(SAFETY_NET)

    job_cluster(Q_TIMEOUT="20", Q_RETRY="30")
    finished = wait_until(
        lambda: (
            JobAttempt.objects.filter(outcome=JobAttempt.Outcome.SUCCEEDED).count() == 2
            and list(JobAttempt.objects.all())
        ),
        timeout=60,
        what="both jobs to finish",
    )

    own, net = sorted(finished, key=lambda a: a.func)
    # They ran at the same time: each started before the other's message was answered.
    assert abs((own.started_at - net.started_at).total_seconds()) < slow_smtp_server.delay
    time.sleep(0.5)  # a second message, if any, would have begun by now
    assert len(slow_smtp_server.data_started) == 1
    assert len(slow_smtp_server.messages) == 1
    delivery = Delivery.objects.get(pk=queued.pk)
    assert delivery.status == Delivery.Status.SENT
    assert delivery.attempt_log.count() == 1 and InvoiceLink.objects.count() == 1


@pytest.mark.parametrize("slow_smtp_server", [8.0], indirect=True)
def test_a_worker_killed_mid_send_is_retried_in_time_and_does_not_send_again(
    queued: Delivery, slow_smtp_server: SlowMailbox, job_cluster: Callable[..., JobCluster]
) -> None:
    retry = 5
    async_task(ATTEMPT, queued.pk)
    first = job_cluster(Q_TIMEOUT="4", Q_RETRY=str(retry))
    wait_until(lambda: slow_smtp_server.data_started, timeout=30, what="the message's DATA")

    first.kill()  # the whole cluster dies while the server is still taking the message

    assert Delivery.objects.get(pk=queued.pk).status == Delivery.Status.SENDING
    assert OrmQ.objects.count() == 1  # the job is still queued, locked by the dead cluster
    job_cluster(Q_TIMEOUT="4", Q_RETRY=str(retry))
    lost, retried = wait_until(
        lambda: (
            (attempts := list(JobAttempt.objects.filter(func=ATTEMPT).order_by("attempt")))
            and len(attempts) == 2
            and attempts[1].outcome == JobAttempt.Outcome.SUCCEEDED
            and attempts
        ),
        timeout=30,
        what="the retried attempt",
    )

    assert lost.outcome == JobAttempt.Outcome.LOST and not lost.gave_up
    waited = (retried.started_at - lost.started_at).total_seconds()
    assert retry <= waited < retry + 4  # taken again once its lock passed, not ten minutes on
    assert not OrmQ.objects.exists()
    # The retry found the delivery claimed and left it: nothing sent twice, no new link.
    assert len(slow_smtp_server.data_started) == 1
    assert InvoiceLink.objects.count() == 1
    delivery = Delivery.objects.get(pk=queued.pk)
    assert delivery.status == Delivery.Status.SENDING
    # Only after DELIVERY_SENDING_TIMEOUT_SECONDS is it judged interrupted, and then failed
    # for staff to decide; still not sent again.
    later = timezone.now() + datetime.timedelta(hours=1)
    assert services.send_due_deliveries(by=SYSTEM, now=later) == 0
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error.startswith("interrupted while sending")
    assert len(slow_smtp_server.data_started) == 1
