"""The one call billing's finalization makes into documents.

``invoice_finalized`` runs inside the finalize transaction and only registers an
``on_commit`` callback, so finalization stays fast and a rollback renders nothing.
``settings.DOCUMENTS_ON_FINALIZE`` picks what the callback does: enqueue a
django-q2 job ("async"), run the job inline after commit ("sync"), or nothing
("off").
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from billing.models import Invoice

TASK = "billing.documents.tasks.issue_invoice_document"


def invoice_finalized(invoice: Invoice) -> None:
    """After commit, have the invoice's PDF rendered, signed and delivered (per setting)."""
    mode = settings.DOCUMENTS_ON_FINALIZE
    if mode == "off":
        return
    invoice_id = invoice.pk
    if mode == "sync":
        from billing.documents.tasks import issue_invoice_document

        transaction.on_commit(lambda: issue_invoice_document(invoice_id))
        return
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(TASK, invoice_id, group="documents"))
