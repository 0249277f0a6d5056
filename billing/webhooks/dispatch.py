"""When a delivery's POST runs: queued after commit, or at its retry time.

The same modes as every after-commit job of billing (``DOCUMENTS_ON_FINALIZE``):
"async" queues a django-q2 job after the commit, "sync"
posts inline after the commit (the demo and the tests), "off" leaves the delivery
pending for the schedule's safety net. A retry is a one-off django-q2 schedule at its
time (as invoice delivery's retries are); "sync" leaves retries to the safety net.

This is the application's backoff (every attempt a row, up to three days): the job
broker's own retries (``security.jobs``) still cover a worker that dies mid-job.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

TASK = "billing.webhooks.tasks.attempt_webhook_delivery_job"


def enqueue(delivery_id: int, *, eta: datetime.datetime | None = None) -> None:
    """Have the delivery attempted after commit (now, or at ``eta``)."""
    mode = settings.DOCUMENTS_ON_FINALIZE
    if mode == "off":
        return
    if mode == "sync":
        if eta is None:
            job = import_string(TASK)
            transaction.on_commit(lambda: job(delivery_id))
        return
    from django_q.models import Schedule
    from django_q.tasks import async_task, schedule

    if eta is None:
        transaction.on_commit(lambda: async_task(TASK, delivery_id, group="webhooks"))
        return
    transaction.on_commit(
        lambda: schedule(
            TASK,
            delivery_id,
            schedule_type=Schedule.ONCE,
            next_run=eta,
            repeats=1,
            name=f"webhook-{delivery_id}-{int(eta.timestamp())}",
        )
    )
