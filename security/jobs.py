"""The job queue's broker: django-q2's ORM broker, enqueueing by an INSERT compiled once.

Every paid invoice enqueues its receipt job inside the paying transaction
(``billing.documents.hooks``), so a card payment pays for one enqueue. django-q2's
ORM broker writes it with ``QuerySet.create`` (the ORM builds the INSERT anew each
time); this one writes the same row with ``security.compiled.insert``. Everything
else (dequeue, acknowledge, the cluster) is django-q2's own. It sits in ``security/``
beside ``security.compiled``: every app may import the ground floor.
"""

from __future__ import annotations

from django import db
from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from security.compiled import insert


class CompiledORM(ORM):
    """``Q_CLUSTER["broker_class"]``: the ORM broker of ``Q_CLUSTER["orm"]``."""

    def enqueue(self, task: str) -> int:
        """As the ORM broker does: one OrmQ row, free to take from now."""
        if transaction.get_autocommit(using=Conf.ORM):
            # As the ORM broker's get_connection: a broker thread's stale connection
            # is closed before it is used.
            db.close_old_connections()
        job = OrmQ(key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=timezone.now())
        insert(job, using=Conf.ORM)
        return int(job.pk)
