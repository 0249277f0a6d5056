"""The one call billing's settlement makes into delivery.

``invoice_paid`` runs inside the transaction that turns an invoice PAID and only
registers an ``on_commit`` callback (``DOCUMENTS_ON_FINALIZE`` decides: a django-q2
job, inline, or nothing), so a payment's transaction stays short and a rollback
sends nothing. The job queues the receipt notification once per invoice.
"""

from __future__ import annotations

from billing.documents.hooks import run_after_commit
from billing.models import Invoice

TASK = "billing.delivery.tasks.queue_receipt_job"


def invoice_paid(invoice: Invoice) -> None:
    """After commit, have the customer told (by the delivery rules) that the invoice is paid."""
    run_after_commit(TASK, invoice.pk)
