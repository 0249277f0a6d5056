"""The job queue's enqueue: django-q2's ORM broker writing its row by a compiled INSERT.

Every paid invoice enqueues its receipt job inside the paying transaction, so a card
payment pays for one enqueue. django-q2's ORM broker writes it with ``QuerySet.create``
(the ORM builds the INSERT anew each time); ``CompiledInsertORM`` writes the same row
with ``db.compiled.insert``. ``security.jobs.CompiledORM`` (the configured broker)
builds on it: taking jobs with backoff and keeping every attempt.
"""

from __future__ import annotations

from django.db import close_old_connections, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from db.compiled import insert


class CompiledInsertORM(ORM):
    """django-q2's ORM broker (``Q_CLUSTER["orm"]``) enqueueing by a compiled INSERT."""

    def enqueue(self, task: str) -> int:
        """As the ORM broker does: one OrmQ row, free to take from now."""
        if transaction.get_autocommit(using=Conf.ORM):
            # As the ORM broker's get_connection: a broker thread's stale connection
            # is closed before it is used.
            close_old_connections()
        job = OrmQ(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=timezone.now())
        insert(job, using=Conf.ORM)
        return int(job.pk)
