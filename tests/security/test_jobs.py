"""The job queue's broker: django-q2's ORM broker with a compiled INSERT."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from security.jobs import CompiledORM

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
