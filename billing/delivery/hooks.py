"""The one call billing's settlement makes into delivery.

``invoices_paid`` runs inside the transaction that turns invoices PAID and only
queues work for after the commit (``DOCUMENTS_ON_FINALIZE`` decides: a django-q2
job, written in the transaction with the ORM broker, inline, or nothing), so a
payment's transaction stays short and a rollback sends nothing. One job per call
carries every invoice id (a bank file's batch pays hundreds at once); the job
queues each invoice's receipt notification once.
"""

from __future__ import annotations

from collections.abc import Sequence

from billing.documents.hooks import run_after_commit

TASK = "billing.delivery.tasks.queue_receipts_job"


def invoices_paid(invoice_ids: Sequence[int]) -> None:
    """After commit, have each customer told (by the delivery rules) that the invoice is paid."""
    if invoice_ids:
        run_after_commit(TASK, list(invoice_ids))
