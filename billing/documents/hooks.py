"""The one call billing's finalization makes into documents.

``invoice_finalized`` runs inside the finalize transaction and only queues work for
after the commit, so finalization stays fast and a rollback renders nothing.
``settings.DOCUMENTS_ON_FINALIZE`` picks what the callback does: enqueue a
django-q2 job ("async"), run the job inline after commit ("sync"), or nothing
("off").
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from billing.models import Invoice

# Sign, then deliver: delivery's job (delivery sends what documents signs). Attempts of
# the job before issue 21 ran under its old path (``document_job_state`` reads both).
TASK = "billing.delivery.tasks.issue_invoice_document"
EARLIER_TASK = "billing.documents.tasks.issue_invoice_document"


def run_after_commit(task: str, *args: Any, timeout: int | None = None) -> bool:
    """After commit, run the job ``task`` (a dotted path) as ``DOCUMENTS_ON_FINALIZE`` says:
    a django-q2 job ("async"), inline ("sync") or not at all ("off", which returns False).
    ``timeout``: the job's own time limit, for one that may run longer than ``Q_TIMEOUT``."""
    mode = settings.DOCUMENTS_ON_FINALIZE
    if mode == "off":
        return False
    if mode == "sync":
        function = import_string(task)
        transaction.on_commit(lambda: function(*args))
        return True
    from django_q.tasks import async_task

    options = {"group": "documents", **({"timeout": timeout} if timeout else {})}
    if _queue_shares_the_database() and transaction.get_connection().in_atomic_block:
        # The ORM broker's queue is a table of this database: the job row goes in with
        # the transaction (a rollback takes it away, and no worker sees it before the
        # commit), instead of in an autocommit INSERT of its own after it. One commit,
        # with its WAL flush, less per paid invoice (docs/decisions.md, 22).
        async_task(task, *args, broker=_broker(), **options)
    else:
        transaction.on_commit(lambda: async_task(task, *args, **options))
    return True


@functools.cache
def _broker() -> Any:
    """This process's broker (``async_task`` would make one per job)."""
    from django_q.brokers import get_broker

    return get_broker()


def _queue_shares_the_database() -> bool:
    orm = settings.Q_CLUSTER.get("orm")
    return bool(orm) and orm == transaction.get_connection().alias


def invoice_finalized(invoice: Invoice) -> None:
    """After commit, have the invoice's PDF rendered, signed and delivered (per setting)."""
    run_after_commit(TASK, invoice.pk)
